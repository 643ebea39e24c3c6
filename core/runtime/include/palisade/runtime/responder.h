// What the node agent and the hypervisor monitor share when a rule asks for a response: one
// budget (at most N responses a minute, so that a runaway rule cannot kill every process on a
// node or snapshot every VM of a host), one way to complete the audit record (an OCSF
// Remediation Activity) and log it, and one set of counters for the status.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace palisade::runtime {

struct ResponseOutcome {
  bool ok = false;
  std::string detail;    // what was done, or why not
  bool refused = false;  // not attempted: over the budget, a cooldown, a full queue
};

class Responder {
 public:
  using Clock = std::chrono::steady_clock;
  // `actor` names the producer in audit records and logs ("palisade agent", "palisade hv").
  Responder(std::string actor, uint32_t max_per_minute);

  // Takes one response from this minute's budget. Nullopt: go ahead. Otherwise the refusal,
  // to audit as a refused outcome.
  std::optional<ResponseOutcome> admit(Clock::time_point now = Clock::now());

  // Who asked, for the record: "<actor>: rule <rule>" and the finding's message.
  nlohmann::json requester(const std::string& rule, const std::string& reason) const;

  // Completes the record (status, detail, rule, response), counts the outcome and logs it;
  // the caller writes the record where its audit records go.
  nlohmann::json audit(nlohmann::json record, const ResponseOutcome& outcome,
                       const std::string& rule, std::string_view response);

  // carried_out, failed (every response not carried out, refused ones included), refused.
  nlohmann::json status() const;

 private:
  const std::string actor_;
  const uint32_t max_per_minute_;
  mutable std::mutex mutex_;
  Clock::time_point window_start_{};
  uint32_t in_window_ = 0;
  uint64_t carried_out_ = 0;
  uint64_t failed_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace palisade::runtime
