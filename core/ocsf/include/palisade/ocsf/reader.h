// Reads the agent's own OCSF JSON back into Events, so that event logs written by
// `palisade agent --json` can be replayed through policies (`palisade policy test --events`).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "palisade/model/event.h"

namespace palisade::ocsf {

// Rebuilds the event (kind, task identity, enrichment and the kind's own fields). Returns
// nullopt for lines that are not palisade events (status, findings); throws std::runtime_error
// for a line that claims to be one but is malformed.
std::optional<Event> event_from_ocsf(const nlohmann::json& ocsf);

}  // namespace palisade::ocsf
