#include "enforce/exec_lockdown.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "enforce/enforce_abi.h"
#include "enforce/fanotify_guard.h"
#include "enforce/overlay_layers.h"
#include "palisade/base/file_hash_cache.h"

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;

std::optional<ExecutableFile> executable_at(const std::string& root, const std::string& path) {
  struct stat st {};
  // stat, not lstat: /bin/sh may be a link, and the kernel checks the file that runs.
  if (stat((root + path).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return ExecutableFile{
      path, st.st_dev, st.st_ino,
      static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000LL + st.st_ctim.tv_nsec};
}

void add_entry_files(const policies::ProcessAllowEntry& entry, const std::string& root,
                     size_t limit, base::FileHashCache& hashes, std::vector<ExecutableFile>& out) {
  auto accept = [&](const std::string& path) {
    auto file = executable_at(root, path);
    if (!file) return;
    if (!entry.sha256.empty() && hashes.sha256(root + path) != entry.sha256) return;
    out.push_back(std::move(*file));
  };
  const std::string dir = literal_directory(entry.path);
  if (dir == entry.path) {
    accept(entry.path);
    return;
  }
  std::error_code ec;
  fs::recursive_directory_iterator it(root + dir, fs::directory_options::skip_permission_denied,
                                      ec);
  for (; !ec && it != fs::recursive_directory_iterator() && out.size() < limit; it.increment(ec)) {
    std::string path = it->path().string().substr(root.size());
    if (policies::path_glob_matches(entry.path, path)) accept(path);
  }
}

std::vector<std::byte> denial_record(const ExecRequest& request, const ExecDecision& decision,
                                     const ExecLockdown::Target& target, bool enforced) {
  pal_record r{};
  r.h.kind = PAL_ENF_EXEC_DENY;
  r.h.mono_ns = static_cast<__u64>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count());
  r.h.result = -EPERM;
  r.h.task.pid = request.pid;
  r.h.task.tgid = request.pid;
  r.h.task.uid = request.uid;
  r.h.task.auid = 0xffffffffU;
  r.h.task.cgroup_id = request.cgroup_id;
  pal_enforce_args a{};
  a.hook = PAL_HOOK_EXEC_FANOTIFY;
  a.verdict = enforced ? PAL_VERDICT_DENIED : PAL_VERDICT_AUDIT;
  a.reason = decision.code != 0 ? decision.code : PAL_REASON_NOT_ALLOWLISTED;
  a.rule = -1;
  a.slot = static_cast<__u16>(target.slot);
  a.u.exec.dev = (static_cast<uint64_t>(major(static_cast<dev_t>(request.dev))) << 20) |
                 minor(static_cast<dev_t>(request.dev));
  a.u.exec.ino = request.ino;
  a.u.exec.ctime_ns = request.ctime_ns;
  std::memcpy(&r.a, &a, sizeof(a));
  const std::string& path = request.path;
  const size_t len = std::min<size_t>(path.size(), PAL_PATH_MAX);
  r.h.str_len[0] = static_cast<__u16>(len);
  r.h.total_len = static_cast<__u32>(sizeof(r) + len);
  std::vector<std::byte> out(sizeof(r) + len);
  std::memcpy(out.data(), &r, sizeof(r));
  std::memcpy(out.data() + sizeof(r), path.data(), len);
  return out;
}

// The allowlist's verdict on the exec of `path` (as the workload sees it); allowed when empty.
std::string allowlist_violation(const ExecRequest& request, const std::string& path,
                                const policies::WorkloadPolicy& policy,
                                base::FileHashCache& hashes) {
  Event exec;
  exec.kind = EventKind::kProcessExec;
  exec.task.tgid = exec.task.pid = request.pid;
  exec.task.uid = request.uid;
  exec.task.cgroup_id = request.cgroup_id;
  auto process = std::make_shared<ProcessView>();
  process->pid = request.pid;
  process->exe = path;
  auto parent = std::make_shared<ProcessView>();
  parent->exe = request.parent_exe;
  exec.process = process;
  exec.parent = parent;
  exec.exe = path;
  const int fd = request.fd;
  policies::ExecutableHasher hasher = [&hashes, fd](const Event&) {
    return hashes.sha256_of_fd(fd);
  };
  return policies::process_violation(policy, exec, &hasher);
}

// Container drift (policy `process.drift`): an allowed exec of a file that is not the image's is
// refused (block) or let through and reported (alert). The guard caches the verdict under the
// file's device, inode and ctime, which is sound because drift is a property of that file
// version: a file written in the upper layer is a new inode, and an image file changed in any
// way is first copied up, which gives it the copy-up's ctime even where overlayfs keeps its
// st_ino; neither can share a key with the image's file, nor become an image file again.
void check_drift(const ExecLockdown::Target& target, const std::string& path, int fd,
                 OverlayLayers& layers, ExecDecision& decision) {
  const policies::DriftAction action = target.policy->process_drift;
  if (target.rootfs.empty() || action == policies::DriftAction::kAllow) return;
  if (layers.provenance(target.rootfs, path, fd) != Provenance::kDrift) return;
  decision.report = true;
  decision.code = PAL_REASON_DRIFT;
  decision.reason =
      "drift: " + path + " was written after the container started (overlayfs upper layer)";
  if (action == policies::DriftAction::kBlock) decision.verdict = ExecVerdict::kDeny;
}

}  // namespace

std::string literal_directory(const std::string& pattern) {
  const size_t glob_at = pattern.find_first_of("*?[");
  if (glob_at == std::string::npos) return pattern;
  const size_t slash = pattern.rfind('/', glob_at);
  return slash == 0 || slash == std::string::npos ? "/" : pattern.substr(0, slash);
}

std::string resolve_in_root(const std::string& root, const std::string& path) {
  // Symlinks inside a container root point into that root, not this host's: resolve by hand.
  std::vector<std::string> todo;
  auto push_components = [&todo](const std::string& p) {
    std::vector<std::string> parts;
    size_t at = 0;
    while (at < p.size()) {
      size_t next = p.find('/', at);
      if (next == std::string::npos) next = p.size();
      if (next > at) parts.push_back(p.substr(at, next - at));
      at = next + 1;
    }
    todo.insert(todo.end(), parts.rbegin(), parts.rend());
  };
  push_components(path);
  std::string resolved;
  for (int steps = 0; !todo.empty() && steps < 256; ++steps) {
    std::string part = todo.back();
    todo.pop_back();
    if (part == ".") continue;
    if (part == "..") {
      resolved =
          resolved.substr(0, resolved.rfind('/') == std::string::npos ? 0 : resolved.rfind('/'));
      continue;
    }
    const std::string candidate = resolved + "/" + part;
    char target[4096];
    const ssize_t n = readlink((root + candidate).c_str(), target, sizeof(target) - 1);
    if (n <= 0) {
      resolved = candidate;
      continue;
    }
    const std::string link(target, static_cast<size_t>(n));
    if (link[0] == '/') resolved.clear();
    push_components(link);
  }
  return resolved.empty() ? "/" : resolved;
}

std::string elf_interpreter(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  Elf64_Ehdr eh{};
  if (pread(fd, &eh, sizeof(eh), 0) == static_cast<ssize_t>(sizeof(eh)) &&
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
      eh.e_phentsize == sizeof(Elf64_Phdr)) {
    for (uint16_t i = 0; i < eh.e_phnum && i < 64; ++i) {
      Elf64_Phdr ph{};
      const auto at = static_cast<off_t>(eh.e_phoff + i * sizeof(Elf64_Phdr));
      if (pread(fd, &ph, sizeof(ph), at) != static_cast<ssize_t>(sizeof(ph))) break;
      if (ph.p_type != PT_INTERP || ph.p_filesz == 0 || ph.p_filesz > 4096) continue;
      out.resize(ph.p_filesz);
      if (pread(fd, out.data(), ph.p_filesz, static_cast<off_t>(ph.p_offset)) !=
          static_cast<ssize_t>(ph.p_filesz)) {
        out.clear();
      }
      while (!out.empty() && out.back() == '\0') out.pop_back();
      break;
    }
  }
  close(fd);
  return out;
}

std::vector<ExecutableFile> allowlisted_files(const policies::WorkloadPolicy& policy,
                                              const std::string& root, size_t limit) {
  std::vector<ExecutableFile> out;
  base::FileHashCache hashes(256);
  for (const auto& entry : policy.process_allow) {
    add_entry_files(entry, root, limit, hashes, out);
    if (out.size() >= limit) break;
  }
  return out;
}

bool ExecLockdown::fanotify_available(std::string& why_not) {
  const int fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC, O_RDONLY);
  if (fd < 0) {
    why_not = std::string("fanotify permission events are unavailable (fanotify_init: ") +
              std::strerror(errno) +
              "; needs CAP_SYS_ADMIN and CONFIG_FANOTIFY_ACCESS_PERMISSIONS)";
    return false;
  }
  close(fd);
  return true;
}

std::unique_ptr<ExecLockdown> ExecLockdown::start(const ExecLockdownOptions& options,
                                                  Lookup lookup) {
  std::unique_ptr<ExecLockdown> self(new ExecLockdown(options));
  self->lookup_ = std::move(lookup);
  ExecLockdown* raw = self.get();
  auto hashes = std::make_shared<base::FileHashCache>(4096);
  self->layers_ = std::make_shared<OverlayLayers>();
  std::shared_ptr<OverlayLayers> layers = self->layers_;

  ExecDecider decide = [raw, hashes, layers](const ExecRequest& request) {
    ExecDecision decision;
    auto target = raw->lookup_(request.cgroup_id, request.pid);
    if (!target) return decision;  // not a locked-down workload: allowed, cacheable
    raw->remember_target(request, *target);
    // The allowlist speaks of paths as the container sees them. For a file opened in the
    // container's mount namespace fanotify gives that already (its mounts are out of the agent's
    // reach, so the path runs from the container's root); one seen through the host's view of
    // the rootfs loses that prefix.
    std::string path = request.path;
    if (!target->rootfs.empty() && path.rfind(target->rootfs + "/", 0) == 0) {
      path = path.substr(target->rootfs.size());
    }
    // Verdicts in a locked-down workload are not cached: the interpreter rule below depends on
    // which exec came before (base::FileHashCache still saves the hashing).
    decision.cacheable = false;
    // The ELF interpreter of an allowlisted program is opened for exec within that program's own
    // execve: allowed right after an allowed exec of the same process, and only then, so that
    // "ld.so /tmp/evil" is judged as ld.so itself. It may drift too.
    const bool interpreter = target->interpreters && target->interpreters->count(path) != 0 &&
                             raw->allowed_exec_just_before(request.pid);
    if (!interpreter) {
      const std::string violation = allowlist_violation(request, path, *target->policy, *hashes);
      if (!violation.empty()) {
        decision.report = true;
        decision.reason = violation;
        // Audit mode (a policy's, or the unidentified posture's) reports and lets it run.
        if (target->policy->process_mode == policies::Mode::kEnforce) {
          decision.verdict = ExecVerdict::kDeny;
          return decision;
        }
      } else {
        raw->remember_allowed_exec(request.pid);
      }
    }
    check_drift(*target, path, request.fd, *layers, decision);
    return decision;
  };
  ExecDecisionSink sink = [raw](const ExecRequest& request, const ExecDecision& decision,
                                bool timed_out) {
    auto target = raw->decided_target(request);
    if (!target) target = raw->lookup_(request.cgroup_id, request.pid);
    if (!target) return;
    // Reported: denials, drift alerts (allowed) and execs answered by the timeout.
    const bool denied =
        timed_out ? raw->options_.fail_closed : decision.verdict == ExecVerdict::kDeny;
    raw->queue(denial_record(request, decision, *target, denied));
  };

  FanotifyGuardOptions guard;  // no marks yet: arm() adds them when something is locked down
  guard.decision_timeout = std::chrono::milliseconds(options.timeout_ms);
  guard.on_timeout = options.fail_closed ? ExecVerdict::kDeny : ExecVerdict::kAllow;
  guard.warden_label = options.warden_label;
  self->guard_ = FanotifyExecGuard::start(guard, std::move(decide), std::move(sink));
  return self;
}

ExecLockdown::~ExecLockdown() = default;

void ExecLockdown::arm() {
  {
    std::lock_guard lock(mutex_);
    if (armed_) return;
    armed_ = true;
  }
  for (const auto& mount : options_.mounts) watch(mount, "enforcement.fanotify.mounts");
  guard_->end_orphaned_wardens();
}

void ExecLockdown::set_locked_cgroups(const std::vector<uint64_t>& cgroup_ids) {
  guard_->set_locked_cgroups(cgroup_ids);
}

bool ExecLockdown::armed() const {
  std::lock_guard lock(mutex_);
  return armed_;
}

void ExecLockdown::watch(const std::string& path, const std::string& why) {
  std::lock_guard lock(mutex_);
  if (std::any_of(marked_.begin(), marked_.end(),
                  [&](const Watched& w) { return w.path == path; })) {
    return;
  }
  std::string error;
  if (guard_->mark(path, error)) {
    marked_.push_back({path, why});
  } else if (mark_errors_.size() < 32) {
    mark_errors_.push_back(path + ": " + error);
  }
}

namespace {
uint64_t decided_key(const ExecRequest& request) {
  return (static_cast<uint64_t>(request.pid) << 32) ^ request.ino;
}
}  // namespace

void ExecLockdown::remember_target(const ExecRequest& request, const Target& target) {
  std::lock_guard lock(mutex_);
  decided_.put(decided_key(request), target);
}

std::optional<ExecLockdown::Target> ExecLockdown::decided_target(const ExecRequest& request) {
  std::lock_guard lock(mutex_);
  if (const Target* t = decided_.find(decided_key(request))) return *t;
  return std::nullopt;
}

void ExecLockdown::remember_allowed_exec(uint32_t pid) {
  std::lock_guard lock(mutex_);
  recent_allowed_.put(pid, std::chrono::steady_clock::now());
}

bool ExecLockdown::allowed_exec_just_before(uint32_t pid) {
  std::lock_guard lock(mutex_);
  const auto* when = recent_allowed_.find(pid);
  return when != nullptr && std::chrono::steady_clock::now() - *when < std::chrono::seconds(2);
}

void ExecLockdown::policy_changed() {
  if (guard_) guard_->clear_cache();
}

void ExecLockdown::queue(std::vector<std::byte> record) {
  queued_.push(std::move(record));  // a full queue counts the denial as unreported
}

void ExecLockdown::drain(const RecordSink& deliver) {
  for (const auto& record : queued_.take_all()) deliver(record);
}

nlohmann::json warden_status(const WardenStats& w) {
  nlohmann::json out = {{"running", w.running},
                        {"pid", w.pid},
                        {"answering_now", w.answering_now},
                        {"takeovers", w.takeovers},
                        {"handbacks", w.handbacks},
                        {"answered_allow", w.answered_allow},
                        {"answered_deny", w.answered_deny},
                        {"answered_unattributed", w.answered_unattributed},
                        {"longest_takeover_ms", w.longest_takeover_ms},
                        {"restarts", w.restarts}};
  if (!w.last_error.empty()) out["error"] = w.last_error;
  return out;
}

nlohmann::json ExecLockdown::watched_status() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& w : marked_) out.push_back({{"path", w.path}, {"why", w.why}});
  return out;
}

nlohmann::json ExecLockdown::status() const {
  const FanotifyGuardStats s = guard_->stats();
  std::lock_guard lock(mutex_);
  return {{"requests", s.requests},
          {"allowed", s.allowed},
          {"denied", s.denied},
          {"cache_hits", s.cache_hits},
          {"cache_misses", s.cache_misses},
          {"cache_entries", s.cache_size},
          {"timeouts", s.timeouts},
          {"overflow_answers", s.overflow_answers},
          {"errors", s.errors},
          {"marked_filesystems", s.marked_filesystems},
          {"timeout_ms", options_.timeout_ms},
          {"on_timeout", options_.fail_closed ? "deny (fail closed)" : "allow (fail open)"},
          {"unreported_denials", queued_.stats().rejected_full},
          {"watched", watched_status()},
          {"watch_errors", mark_errors_},
          {"drift", layers_->status()},
          {"answered_by_warden", s.answered_by_warden},
          {"warden", warden_status(s.warden)}};
}

}  // namespace palisade::agent
