// One output of a producer: an event sink that also takes records made outside the pipeline
// and reports its counters. outputs.h builds them by name from the configuration.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "palisade/metrics/metrics.h"
#include "palisade/runtime/event_sink.h"

namespace palisade::runtime {

// A record that did not come through the pipeline: a response's audit record or the producer's
// own status event. Audit records are kept wherever events are; status events are not stored.
struct OutOfBandRecord {
  enum class Kind { kAudit, kStatus };
  Kind kind = Kind::kAudit;
  std::string_view json;
  int class_uid = 0;
  int64_t time_ms = 0;
  uint32_t pid = 0;  // the process acted on, for the store's index
  std::string_view exe;
  uint32_t uid = 0;  // who asked for the action
};

// One output: an event sink that also takes out-of-band records and reports its counters.
class Output : public EventSink {
 public:
  // Written at once, not held for the next flush(): such records are rare and are often the
  // answer an operator is waiting for.
  virtual void write_record(const OutOfBandRecord& record) = 0;
  // Counters for the status; null when the output has none.
  virtual nlohmann::json status() const { return nullptr; }
  // The same counters as Prometheus metrics (docs/metrics.md), labelled output="<its kind>".
  virtual void add_metrics(metrics::Snapshot& snapshot, const std::string& name) const {
    (void)snapshot;
    (void)name;
  }
  // Blocks until everything accepted so far is written (the store's writer thread).
  virtual void drain() {}
  // Reopens what the output writes to by path (log rotation: on reload).
  virtual void reopen() {}
};

}  // namespace palisade::runtime
