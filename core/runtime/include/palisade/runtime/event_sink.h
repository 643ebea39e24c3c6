// Where events go once they are attributed: outputs, the store, the detector, exporters. Every
// producer (the node agent's pipeline, the hypervisor monitor) hands its events to sinks.
#pragma once

#include <string_view>

#include "palisade/model/event.h"

namespace palisade::runtime {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // `ocsf` is the event rendered as OCSF JSON once by the pipeline (empty when the pipeline has
  // no formatter), so that several outputs do not each format the same event.
  virtual void consume(const Event& event, std::string_view ocsf) = 0;
  // A Detection Finding (OCSF 2004) raised by the policy engine for `trigger`.
  virtual void consume_finding(std::string_view ocsf_finding, const Event& trigger) {
    (void)ocsf_finding;
    (void)trigger;
  }
  virtual void flush() {}
};

}  // namespace palisade::runtime
