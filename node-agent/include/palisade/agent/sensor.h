// The live eBPF sensor: probes the kernel, loads and attaches the CO-RE programs, seeds the process
// table from /proc and delivers ring-buffer records through the Source interface.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "palisade/agent/pipeline.h"
#include "palisade/agent/source.h"
#include "palisade/base/error.h"

namespace palisade::agent {

struct SensorOptions {
  uint32_t ring_buffer_bytes = 16U << 20;
  uint32_t argv_max_bytes = 4096;
  uint64_t wakeup_bytes = 256U << 10;  // the reader is woken once this much is queued
  uint32_t max_latency_ms = 50;        // and otherwise drains at this interval
  PathRules file_rules;
  bool seed_from_proc = true;
  // Turn on the kernel's per-program run-time accounting while the sensor runs (costs two clock
  // reads per program run; off by default, on for profiling).
  bool kernel_time_stats = false;
};

struct HookStatus {
  std::string name;  // e.g. "tracepoint/syscalls/sys_enter_openat"
  std::string sees;  // what it observes, e.g. "file open"
  bool attached = false;
  std::string detail;  // why not, when not
};

// What the sensor could and could not hook, printed at start-up and kept in the agent status.
struct CapabilityReport {
  std::string kernel_release;
  bool btf = false;
  bool tracefs = false;
  std::string tracefs_detail;
  std::string bpf_lsm;  // "active", "unavailable: ..." (used for enforcement, see issue 5)
  std::vector<HookStatus> hooks;
  std::vector<std::string> blind_spots;  // what is not being seen and why

  std::string to_text() const;
  std::string to_json() const;
};

// An essential kernel feature is missing; the message names it.
class SensorError : public EnvironmentError {
 public:
  using EnvironmentError::EnvironmentError;
};

class LiveSensor : public Source {
 public:
  // Probes, loads and attaches. Throws SensorError when something essential cannot load.
  static std::unique_ptr<LiveSensor> start(const SensorOptions& options);
  ~LiveSensor() override;

  bool poll(std::chrono::milliseconds timeout, const RecordCallback& deliver) override;
  SourceCounters counters() const override;
  std::string describe() const override { return "live eBPF sensor"; }

  const CapabilityReport& capabilities() const { return report_; }
  // Replaces the in-kernel file path rules (configuration reload).
  void set_file_rules(const PathRules& rules);

 private:
  struct Impl;
  explicit LiveSensor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  CapabilityReport report_;
};

// Kernel-independent helpers, exposed for tests.
bool ensure_tracefs(std::string& detail);
std::string probe_bpf_lsm();

// Builds PAL_PROC_SNAPSHOT records for every process in /proc.
std::vector<std::vector<std::byte>> snapshot_processes();

}  // namespace palisade::agent
