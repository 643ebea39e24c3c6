#include "palisade/agent/process_table.h"

#include <string_view>

namespace palisade::agent {
namespace {

// /proc reports start times in clock ticks; compare at that granularity so that seeded entries
// and kernel events agree on who is whose parent.
constexpr uint64_t kTickNs = 10'000'000;

bool started_no_later(uint64_t parent_start, uint64_t child_start) {
  return parent_start / kTickNs <= child_start / kTickNs;
}

std::string join_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += ' ';
    out += arg;
  }
  return out;
}

// Hash node, control block, allocator slack, and the formatter's cached rendering of the view.
constexpr size_t kEntryOverhead = 96 + 512;

}  // namespace

ProcessTable::ProcessTable(ProcessTableLimits limits) : limits_(limits) {}

ProcessTableStats ProcessTable::stats() const {
  ProcessTableStats s = counters_;
  s.entries = entries_.size();
  s.bytes = bytes_;
  return s;
}

ProcessRef ProcessTable::find(uint32_t tgid) const {
  auto it = entries_.find(tgid);
  return it == entries_.end() ? nullptr : it->second.view;
}

ProcessView& ProcessTable::mutable_view(Entry& entry) {
  // Events already handed out keep the view they were given.
  if (entry.view.use_count() > 1) entry.view = std::make_shared<ProcessView>(*entry.view);
  entry.view->json_members.clear();  // the rendering no longer matches
  entry.view->json_exe.clear();
  return *entry.view;
}

void ProcessTable::update_bytes(Entry& entry) {
  const ProcessView& v = *entry.view;
  size_t now = sizeof(Entry) + sizeof(ProcessView) + kEntryOverhead + v.exe.capacity() +
               v.cmdline.capacity() + v.cwd.capacity() + v.comm.capacity();
  bytes_ = bytes_ - entry.bytes + now;
  entry.bytes = now;
}

ProcessTable::Entry* ProcessTable::parent_of(const Entry& child) {
  const ProcessView& c = *child.view;
  if (c.ppid == 0 || c.ppid == c.pid) return nullptr;
  auto it = entries_.find(c.ppid);
  if (it == entries_.end()) return nullptr;
  // A parent must have started before its child; otherwise the pid was reused.
  if (!started_no_later(it->second.view->start_ns, c.start_ns)) return nullptr;
  return &it->second;
}

ProcessTable::Entry& ProcessTable::insert(uint32_t pid, uint32_t ppid, uint64_t start_ns,
                                          uint64_t now) {
  if (entries_.count(pid) != 0) erase(pid);  // pid reuse: the old process is gone
  Entry& entry = entries_[pid];
  entry.view = std::make_shared<ProcessView>();
  entry.view->pid = pid;
  entry.view->ppid = ppid;
  entry.view->start_ns = start_ns;
  if (Entry* parent = parent_of(entry)) parent->children++;
  update_bytes(entry);
  counters_.inserted++;
  collect(now);
  enforce_limits(pid);
  return entries_.at(pid);
}

void ProcessTable::erase(uint32_t pid) {
  auto it = entries_.find(pid);
  if (it == entries_.end()) return;
  Entry* parent = parent_of(it->second);
  bytes_ -= it->second.bytes;
  entries_.erase(it);
  // A lingering parent whose last descendant went away can go too.
  if (parent != nullptr && parent->children > 0 && --parent->children == 0 && parent->exited) {
    exited_.emplace_back(parent->view->pid, parent->view->start_ns);
  }
}

void ProcessTable::collect(uint64_t now) {
  while (!exited_.empty()) {
    auto [pid, start] = exited_.front();
    auto it = entries_.find(pid);
    if (it == entries_.end() || it->second.view->start_ns != start || !it->second.exited) {
      exited_.pop_front();  // already gone or replaced
      continue;
    }
    if (it->second.exit_mono_ns + limits_.linger_ns > now) break;
    exited_.pop_front();
    if (it->second.children > 0) continue;  // re-queued by erase() when the last child leaves
    erase(pid);
    counters_.evicted_exited++;
  }
}

void ProcessTable::enforce_limits(uint32_t keep) {
  while (entries_.size() > limits_.max_entries || bytes_ > limits_.max_bytes) {
    uint32_t victim = 0;
    while (!exited_.empty() && victim == 0) {
      auto [pid, start] = exited_.front();
      exited_.pop_front();
      auto it = entries_.find(pid);
      if (it != entries_.end() && it->second.exited && it->second.view->start_ns == start &&
          pid != keep) {
        victim = pid;
      }
    }
    if (victim == 0) {
      for (const auto& [pid, entry] : entries_) {
        if (pid != keep && pid != 1) {
          victim = pid;
          break;
        }
      }
    }
    if (victim == 0) return;
    erase(victim);
    counters_.evicted_forced++;
  }
}

ProcessTable::Entry& ProcessTable::upsert_from_task(const TaskIdentity& task, uint64_t now) {
  auto it = entries_.find(task.tgid);
  if (it != entries_.end() && it->second.view->start_ns / kTickNs == task.start_ns / kTickNs) {
    return it->second;
  }
  Entry& entry = insert(task.tgid, task.ppid, task.start_ns, now);
  entry.view->comm = task.comm;
  entry.view->uid = task.uid;
  entry.view->auid = task.auid;
  update_bytes(entry);
  counters_.placeholders++;
  return entry;
}

void ProcessTable::fill(Event& event, const Entry& subject) {
  event.process = subject.view;
  event.lineage.clear();
  event.lineage_complete = false;
  const Entry* current = &subject;
  for (size_t depth = 0; depth < limits_.max_lineage; ++depth) {
    if (current->view->pid == 1 || current->view->ppid == 0) {
      event.lineage_complete = true;
      break;
    }
    const Entry* parent = parent_of(*current);
    if (parent == nullptr) break;
    if (depth == 0) event.parent = parent->view;
    event.lineage.push_back(parent->view);
    current = parent;
  }
}

void ProcessTable::apply(Event& event) {
  const uint64_t now = event.mono_ns;
  switch (event.kind) {
    case EventKind::kProcessSnapshot:
    case EventKind::kProcessExec: {
      Entry& entry = upsert_from_task(event.task, now);
      if (event.kind == EventKind::kProcessSnapshot) counters_.placeholders--;
      ProcessView& view = mutable_view(entry);
      view.exe = event.exe;
      view.cmdline = join_argv(event.argv);
      view.cwd = event.cwd;
      view.comm = event.task.comm;
      view.uid = event.task.uid;
      view.auid = event.task.auid;
      update_bytes(entry);
      fill(event, entry);
      return;
    }
    case EventKind::kProcessFork: {
      Entry& parent = upsert_from_task(event.task, now);
      const ProcessRef inherited = parent.view;  // a fork starts as a copy of its parent
      Entry& child = insert(event.target_pid, event.task.tgid, event.target_start_ns, now);
      ProcessView& view = *child.view;
      view.exe = inherited->exe;
      view.cmdline = inherited->cmdline;
      view.cwd = inherited->cwd;
      view.comm = event.task.comm;
      view.uid = event.task.uid;
      view.auid = event.task.auid;
      update_bytes(child);
      fill(event, child);
      return;
    }
    case EventKind::kProcessExit: {
      Entry& entry = upsert_from_task(event.task, now);
      fill(event, entry);
      entry.exited = true;
      entry.exit_mono_ns = now;
      exited_.emplace_back(entry.view->pid, entry.view->start_ns);
      return;
    }
    case EventKind::kNetDeny:
    case EventKind::kExecDeny: {
      // Denials only join what the table knows: a refused packet has no process, and a denial
      // synthesized in user space may not know the start time. Never a placeholder.
      auto it = entries_.find(event.task.tgid);
      if (event.task.tgid == 0 || it == entries_.end()) return;
      if (event.task.start_ns != 0 &&
          it->second.view->start_ns / kTickNs != event.task.start_ns / kTickNs) {
        return;
      }
      fill(event, it->second);
      return;
    }
    default: {
      Entry& entry = upsert_from_task(event.task, now);
      fill(event, entry);
      if (event.kind == EventKind::kPrivPtrace) {
        event.target = find(static_cast<uint32_t>(event.args[1]));
      }
      return;
    }
  }
}

}  // namespace palisade::agent
