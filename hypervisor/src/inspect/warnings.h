// What an inspection could not do, kept for the report: the first kMaxWarnings verbatim, the rest
// counted in a last line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace palisade::hypervisor::inspect {

class Warnings {
 public:
  static constexpr size_t kMaxWarnings = 200;

  void add(std::string warning) {
    if (kept_.size() < kMaxWarnings) {
      kept_.push_back(std::move(warning));
    } else {
      ++dropped_;
    }
  }
  std::vector<std::string> take() {
    std::vector<std::string> out = std::move(kept_);
    if (dropped_ > 0) out.push_back(std::to_string(dropped_) + " more warnings not kept");
    kept_.clear();
    dropped_ = 0;
    return out;
  }

 private:
  std::vector<std::string> kept_;
  uint64_t dropped_ = 0;
};

}  // namespace palisade::hypervisor::inspect
