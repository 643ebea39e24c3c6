// A token bucket: `rate` tokens a second, at most `burst` saved up; one token per item. Plain
// data, so that many buckets can share one rate (one per pod, say) without each storing it.
#pragma once

#include <algorithm>
#include <chrono>

namespace palisade::base {

struct TokenBucket {
  double tokens = 0;
  std::chrono::steady_clock::time_point updated{};

  static TokenBucket full(
      double burst, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    return {burst, now};
  }
  // False (and nothing taken) when the bucket is empty.
  bool take(double rate, double burst,
            std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    const double elapsed = std::chrono::duration<double>(now - updated).count();
    tokens = std::min(burst, tokens + elapsed * rate);
    updated = now;
    if (tokens < 1.0) return false;
    tokens -= 1.0;
    return true;
  }
};

}  // namespace palisade::base
