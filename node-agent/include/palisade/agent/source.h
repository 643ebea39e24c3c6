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
#include <vector>

#include "palisade/model/event.h"

namespace palisade::agent {

// One raw record in the sensor's ABI (node-agent/src/sensor/sensor_abi.h).
using RecordView = std::span<const std::byte>;
using RecordCallback = std::function<void(RecordView)>;

// The kernel's accounting of one eBPF program: how often it ran and for how long. The kernel
// keeps it only while BPF statistics are on (sensor.kernel_time_stats, or the
// kernel.bpf_stats_enabled sysctl); otherwise both stay 0.
struct ProgramRunStats {
  std::string name;
  uint64_t runs = 0;
  uint64_t run_time_ns = 0;
};

// Counters a source keeps below user space: records the kernel could not queue, and the
// programs' run time.
struct SourceCounters {
  std::array<uint64_t, kEventClassCount> kernel_drops{};
  bool kernel_time_enabled = false;
  std::vector<ProgramRunStats> programs;  // every loaded program, in load order
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
