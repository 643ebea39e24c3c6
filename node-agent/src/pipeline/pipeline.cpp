#include "palisade/agent/pipeline.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include "decode/decoder.h"

namespace palisade::agent {

struct Pipeline::DecoderHolder {
  DecoderTable table;
};

namespace {

bool has_prefix(const std::string& path, const std::string& prefix) {
  return path.compare(0, prefix.size(), prefix) == 0;
}

bool path_reported(const PathRules& rules, const std::string& path) {
  for (const auto& prefix : rules.exclude) {
    if (has_prefix(path, prefix)) return false;
  }
  if (rules.include.empty()) return true;
  for (const auto& prefix : rules.include) {
    if (has_prefix(path, prefix)) return true;
  }
  return false;
}

}  // namespace

bool PathRules::reports(const Event& event) const {
  if (class_of(event.kind) != EventClass::kFile) return true;
  if (path_reported(*this, event.path)) return true;
  return !event.path2.empty() && path_reported(*this, event.path2);
}

Pipeline::Pipeline(ProcessTable& table, std::vector<runtime::EventSink*> sinks)
    : decoder_(std::make_unique<DecoderHolder>()), table_(table), sinks_(std::move(sinks)) {}

Pipeline::~Pipeline() = default;

void Pipeline::account(const Event& event) {
  // Synthesized in user space (the /proc snapshot, exec guard denials): not numbered.
  if (event.kind == EventKind::kProcessSnapshot || event.seq == 0) return;
  auto cls = static_cast<size_t>(class_of(event.kind));
  ClassCounters& counters = stats_.classes[cls];
  counters.received++;
  if (event.cpu >= last_seq_.size()) last_seq_.resize(event.cpu + 1U);
  uint64_t& last = last_seq_[event.cpu][cls];
  // The sensor's counters start at 1 when it loads, so any gap, including one before the first
  // record seen, is events the kernel numbered but could not deliver.
  if (event.seq > last + 1) {
    counters.lost += event.seq - last - 1;
    counters.last_loss_wall_ns = event.wall_ns;
  }
  last = event.seq;
}

void Pipeline::handle(RecordView record) {
  if (tap_ != nullptr) tap_->record(record);
  if (auto error = decoder_->table.decode(record, event_)) {
    stats_.malformed++;
    spdlog::warn("dropping malformed sensor record: {}", *error);
    return;
  }
  event_.wall_ns = static_cast<uint64_t>(static_cast<int64_t>(event_.mono_ns) + wall_offset_ns_);
  account(event_);
  table_.apply(event_);  // lifecycle state must see every event, reported or not
  if (!rules_.reports(event_)) {
    stats_.filtered++;
    return;
  }
  if (containers_ != nullptr &&
      containers_->resolve(event_.task, event_.container, event_.container_unresolved) ==
          Attribution::kUnresolved &&
      event_.container_unresolved.empty()) {
    event_.container_unresolved.push_back('-');  // (not = "-": a GCC 12 -Wrestrict false alarm)
  }
  if (cgroup_names_ != nullptr) {
    if (const std::string* path = cgroup_names_->path_of(event_.task.cgroup_id)) {
      event_.cgroup_path = *path;
    }
  }
  json_.clear();
  if (formatter_) formatter_->format(event_, json_);
  for (runtime::EventSink* sink : sinks_) sink->consume(event_, json_);
  stats_.delivered++;
}

void Pipeline::flush() {
  for (runtime::EventSink* sink : sinks_) sink->flush();
}

}  // namespace palisade::agent
