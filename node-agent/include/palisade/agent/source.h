// The seam between where events come from and what the agent does with them. The live eBPF sensor
// and the capture-file reader both implement Source, so tests, benchmarks and replays run the same
// pipeline as production (see docs/architecture.md).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "palisade/model/event.h"

namespace palisade::agent {

// One raw record in the sensor's ABI (node-agent/src/sensor/sensor_abi.h).
using RecordView = std::span<const std::byte>;
using RecordCallback = std::function<void(RecordView)>;

// Counters a source keeps below user space: records the kernel could not queue.
struct SourceCounters {
  std::array<uint64_t, kEventClassCount> kernel_drops{};
};

class Source {
 public:
  virtual ~Source() = default;

  // Hands every available record to `deliver`, waiting up to `timeout` for the first one.
  // Returns false when the source has nothing more to give (end of a capture file).
  virtual bool poll(std::chrono::milliseconds timeout, const RecordCallback& deliver) = 0;

  virtual SourceCounters counters() const = 0;
  virtual std::string describe() const = 0;
};

}  // namespace palisade::agent
