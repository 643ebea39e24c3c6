// Wall-clock readings, in the units events, records and stores use.
#pragma once

#include <time.h>

#include <cstdint>

namespace palisade::base {

int64_t wall_now_ms();
uint64_t wall_now_ns();
// A timespec (stat times, clock readings) in nanoseconds.
int64_t timespec_ns(const struct timespec& ts);
// Realtime minus monotonic, now: converts the sensor's monotonic stamps to wall time.
int64_t current_wall_offset_ns();

}  // namespace palisade::base
