// Wall-clock readings, in the units events, records and stores use.
#pragma once

#include <cstdint>

namespace palisade::base {

int64_t wall_now_ms();
uint64_t wall_now_ns();

}  // namespace palisade::base
