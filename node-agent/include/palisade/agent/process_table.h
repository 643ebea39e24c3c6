// The agent's view of every process on the host, kept from fork/exec/exit events and seeded from
// /proc, so that each event can carry its full ancestry. Memory is bounded: a hard cap on entries
// and bytes, exited processes linger only while a descendant or the linger window needs them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "palisade/model/event.h"

namespace palisade::agent {

struct ProcessTableLimits {
  size_t max_entries = 65536;
  size_t max_bytes = 48U << 20;
  uint64_t linger_ns = 5'000'000'000ULL;  // exited processes kept this long for late lookups
  size_t max_lineage = 64;
};

struct ProcessTableStats {
  size_t entries = 0;
  size_t bytes = 0;
  uint64_t inserted = 0;
  uint64_t evicted_exited = 0;
  uint64_t evicted_forced = 0;  // removed by the hard cap while still useful: ancestry may be cut
  uint64_t placeholders = 0;    // processes first seen by a non-lifecycle event
};

class ProcessTable {
 public:
  explicit ProcessTable(ProcessTableLimits limits = {});

  // Updates the table from a lifecycle event and fills the event's process, parent and lineage.
  void apply(Event& event);

  size_t size() const { return entries_.size(); }
  ProcessTableStats stats() const;
  // Looks a live or lingering process up by tgid; nullptr when unknown.
  ProcessRef find(uint32_t tgid) const;

 private:
  struct Entry {
    std::shared_ptr<ProcessView> view;  // shared with events; copied before a change if shared
    bool exited = false;
    uint64_t exit_mono_ns = 0;
    uint32_t children = 0;  // entries naming this one as parent
    size_t bytes = 0;
  };

  Entry& upsert_from_task(const TaskIdentity& task, uint64_t now);
  Entry& insert(uint32_t pid, uint32_t ppid, uint64_t start_ns, uint64_t now);
  void erase(uint32_t pid);
  Entry* parent_of(const Entry& child);
  static ProcessView& mutable_view(Entry& entry);
  void update_bytes(Entry& entry);
  void collect(uint64_t now);
  void enforce_limits(uint32_t keep);  // never evicts `keep`, the entry being inserted
  void fill(Event& event, const Entry& subject);

  ProcessTableLimits limits_;
  std::unordered_map<uint32_t, Entry> entries_;
  std::deque<std::pair<uint32_t, uint64_t>> exited_;  // (pid, start_ns) in exit order
  size_t bytes_ = 0;
  ProcessTableStats counters_;
};

}  // namespace palisade::agent
