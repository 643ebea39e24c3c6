// Renders docs/events.md from the event-kind table and the OCSF mapping, so the documentation
// cannot disagree with the code (a unit test compares the checked-in file with this output).
#pragma once

#include <string>

namespace palisade::ocsf {

std::string render_events_markdown();

}  // namespace palisade::ocsf
