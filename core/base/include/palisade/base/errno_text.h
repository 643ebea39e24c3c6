// The text of an errno value, for messages that say what the environment refused.
#pragma once

#include <string>

namespace palisade::base {

// Accepts libbpf's negative codes as well as errno values.
std::string errno_text(int error);

}  // namespace palisade::base
