// Where records become attributed events: decode, account for losses, filter, enrich with the
// process table, hand to sinks. Sources and sinks are interchangeable; the pipeline is the same
// for the live sensor, capture replays, tests and benchmarks.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "palisade/agent/container.h"
#include "palisade/agent/process_table.h"
#include "palisade/agent/source.h"
#include "palisade/model/event.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/runtime/event_sink.h"

namespace palisade::agent {

// Sees raw records before decoding (the capture writer).
class RecordTap {
 public:
  virtual ~RecordTap() = default;
  virtual void record(RecordView bytes) = 0;
};

struct ClassCounters {
  uint64_t received = 0;
  uint64_t lost = 0;  // gaps in the per-CPU sequence numbers
  uint64_t last_loss_wall_ns = 0;
};

struct PipelineStats {
  std::array<ClassCounters, kEventClassCount> classes{};
  uint64_t malformed = 0;
  uint64_t filtered = 0;
  uint64_t delivered = 0;
};

// Prefix rules applied to file events (the sensor applies the same rules in the kernel; this
// pass sees normalized paths, so "./" and ".." tricks cannot slip past it).
struct PathRules {
  std::vector<std::string> exclude;
  std::vector<std::string> include;  // when non-empty, only these prefixes are reported
  bool reports(const Event& event) const;
};

// Names cgroups by id, for policies that select by cgroup path (the enforcer knows them).
class CgroupNames {
 public:
  virtual ~CgroupNames() = default;
  virtual const std::string* path_of(uint64_t cgroup_id) const = 0;
};

class Pipeline {
 public:
  Pipeline(ProcessTable& table, std::vector<runtime::EventSink*> sinks);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  void handle(RecordView record);
  void set_tap(RecordTap* tap) { tap_ = tap; }
  void set_path_rules(PathRules rules) { rules_ = std::move(rules); }
  void set_formatter(std::shared_ptr<ocsf::Formatter> formatter) {
    formatter_ = std::move(formatter);
  }
  // Attributes reported events to containers (none: every event is a host event).
  void set_container_resolver(ContainerResolver* resolver) { containers_ = resolver; }
  void set_cgroup_names(const CgroupNames* names) { cgroup_names_ = names; }
  // Wall clock = monotonic + offset; captured at start (and stored in capture files).
  void set_wall_offset_ns(int64_t offset) { wall_offset_ns_ = offset; }
  int64_t wall_offset_ns() const { return wall_offset_ns_; }
  void flush();
  PipelineStats stats() const { return stats_; }

 private:
  void account(const Event& event);

  struct DecoderHolder;
  std::unique_ptr<DecoderHolder> decoder_;
  ProcessTable& table_;
  std::vector<runtime::EventSink*> sinks_;
  RecordTap* tap_ = nullptr;
  ContainerResolver* containers_ = nullptr;
  const CgroupNames* cgroup_names_ = nullptr;
  PathRules rules_;
  int64_t wall_offset_ns_ = 0;
  Event event_;       // reused: no per-event allocation once strings have grown
  std::string json_;  // likewise for its rendering
  std::shared_ptr<ocsf::Formatter> formatter_;
  PipelineStats stats_;
  // Last sequence number seen per (cpu, class); grows with the CPU count only.
  std::vector<std::array<uint64_t, kEventClassCount>> last_seq_;
};

}  // namespace palisade::agent
