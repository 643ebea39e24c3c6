// The hypervisor monitor behind `palisade hv`: follows every VM of one or more libvirt hosts
// (inventory, lifecycle, bulk stats), judges them with the policy engine (detection rules on VM
// events, VirtualMachinePolicy behaviour detections, guest-disk inspections) and carries out the
// responses findings ask for. Its events and findings go to the same outputs as the node
// agent's (OCSF JSON lines, the SQLite store).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "palisade/hypervisor/vm_responses.h"
#include "palisade/metrics/metrics.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/policies/policy_set.h"
#include "palisade/runtime/event_sink.h"

namespace palisade::hypervisor {

struct InspectionSettings {
  unsigned parallelism = 1;  // inspections at once (each boots a libguestfs appliance)
  size_t max_pending = 64;   // inspections waiting for a worker; more are skipped, counted
  std::string store_path = "/var/lib/palisade/hv-inspections.db";
  std::string overlay_directory = "/var/lib/palisade/hv-overlays";  // snapshot method's overlays
  std::string backend;                        // libguestfs backend ("" = its default / env)
  std::vector<std::string> backend_settings;  // e.g. force_tcg where KVM cannot be used
};

struct MonitorOptions {
  std::vector<std::string> uris;
  bool read_only = false;  // enough to watch; responses and snapshot inspections need read-write
  uint32_t stats_interval_ms = 10000;
  bool emit_stats = false;  // also write every stats sample to the outputs
  uint32_t backoff_min_ms = 1000;
  uint32_t backoff_max_ms = 60000;
  size_t inbox_capacity = 65536;
  size_t max_domains = 10000;  // per host; beyond it VMs are followed but not cached (counted)
  bool responses = true;
  uint32_t max_responses_per_minute = 30;
  ResponseOptions response;
  InspectionSettings inspection;
  uint32_t status_interval_ms = 30000;
  std::string status_file;  // "" = none
};

// Where the monitor's output goes. Sinks see every event (and findings); audit records
// (responses) are written by `audit`.
struct MonitorOutputs {
  std::vector<runtime::EventSink*> sinks;
  std::function<void(const nlohmann::json& record)> audit;
  // When set, the monitor publishes its metrics there about once a second, from its own thread
  // (which also writes the outputs, so `output_metrics` reads their counters safely).
  metrics::Endpoint* metrics = nullptr;
  std::function<void(metrics::Snapshot&)> output_metrics{};
};

// Stamps VM events (sequence, times), renders them once and hands them to the outputs and the
// detector: the monitor's path, and `palisade hv inspect`'s.
class VmEventEmitter {
 public:
  VmEventEmitter(std::shared_ptr<ocsf::Formatter> formatter, std::vector<runtime::EventSink*> sinks,
                 runtime::EventSink* detector);
  // `to_outputs` false: the detector alone sees it (stats samples unless emitted).
  void emit(Event& event, bool to_outputs = true);
  uint64_t count() const { return seq_; }

 private:
  std::shared_ptr<ocsf::Formatter> formatter_;
  std::vector<runtime::EventSink*> sinks_;
  runtime::EventSink* detector_;
  std::string json_;
  uint64_t seq_ = 0;
  int64_t wall_offset_ns_ = 0;
};

class Monitor {
 public:
  Monitor(MonitorOptions options, std::shared_ptr<ocsf::Formatter> formatter,
          MonitorOutputs outputs);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // Safe from any thread: while running, the set is applied by the monitor between two events.
  void set_policy(std::shared_ptr<policies::PolicySet> policy);
  // Runs until `stop` is set; connects to every host first.
  void run(const std::atomic<bool>& stop);
  // Counters, hosts and VMs, as `palisade hv` writes them to its status file.
  nlohmann::json status() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace palisade::hypervisor
