#include "palisade/runtime/responder.h"

#include <spdlog/spdlog.h>

#include "palisade/ocsf/remediation.h"

namespace palisade::runtime {

Responder::Responder(std::string actor, uint32_t max_per_minute)
    : actor_(std::move(actor)), max_per_minute_(max_per_minute) {}

std::optional<ResponseOutcome> Responder::admit(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (window_start_ == Clock::time_point{} || now - window_start_ > std::chrono::minutes(1)) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (++in_window_ <= max_per_minute_) return std::nullopt;
  return ResponseOutcome{
      false, "refused: more than " + std::to_string(max_per_minute_) + " responses in a minute",
      true};
}

nlohmann::json Responder::requester(const std::string& rule, const std::string& reason) const {
  return ocsf::requester(actor_ + ": rule " + rule, reason);
}

nlohmann::json Responder::audit(nlohmann::json record, const ResponseOutcome& outcome,
                                const std::string& rule, std::string_view response) {
  {
    std::lock_guard lock(mutex_);
    (outcome.ok ? carried_out_ : failed_)++;
    if (outcome.refused) refused_++;
  }
  record["status_id"] = outcome.ok ? 1 : 2;
  record["status"] = outcome.ok ? "Success" : "Failure";
  record["status_detail"] = outcome.detail;
  record["unmapped"]["palisade"]["rule"] = rule;
  record["unmapped"]["palisade"]["response"] = response;
  spdlog::info("{}: response {} for rule {}: {}", actor_, response, rule, outcome.detail);
  return record;
}

nlohmann::json Responder::status() const {
  std::lock_guard lock(mutex_);
  return {{"carried_out", carried_out_}, {"failed", failed_}, {"refused", refused_}};
}

}  // namespace palisade::runtime
