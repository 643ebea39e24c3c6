#include "enforce/fanotify_guard.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_set>
#include <utility>

#include "palisade/base/cgroup.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/lru_map.h"
#include "palisade/base/proc.h"
#include "palisade/base/unique_fd.h"

namespace palisade::agent {
namespace {

using Clock = std::chrono::steady_clock;

uint32_t real_uid_of(uint32_t pid) {
  const std::optional<base::ProcStatus> status = base::read_proc_status(pid);
  return status ? status->uid : kUnknownUid;
}

// Must run before the exec is answered: once it goes on, /proc/<pid>/exe is the new image.
void describe(ExecRequest& request, int event_fd) {
  request.path = base::read_proc_link(0, "fd/" + std::to_string(event_fd));
  request.uid = real_uid_of(request.pid);
  request.parent_exe = base::read_proc_link(request.pid, "exe");
}

struct CacheKey {
  uint64_t cgroup_id;
  uint64_t dev;
  uint64_t ino;
  int64_t ctime_ns;
  bool operator==(const CacheKey&) const = default;
};

struct CacheKeyHash {
  size_t operator()(const CacheKey& key) const noexcept {
    uint64_t h = key.ino * 0x9E3779B97F4A7C15ULL;
    h ^= key.dev + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h ^= key.cgroup_id + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    h ^= static_cast<uint64_t>(key.ctime_ns) + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2);
    return static_cast<size_t>(h);
  }
};

CacheKey key_of(const ExecRequest& request) {
  return {request.cgroup_id, request.dev, request.ino, request.ctime_ns};
}

// One exec waiting for a verdict. Owns the event fd, so the fd closes only when neither the
// watchdog nor a decider still holds the event: after the response, and never under a decider
// that is still reading it.
struct Pending {
  base::UniqueFd fd;
  ExecRequest request;  // request.fd stays -1: the decider gets a copy with the fd
  Clock::time_point deadline;
  uint64_t generation = 0;  // the cache generation when read; a verdict older than it is stale
  WardenTicket ticket;      // who owned the group when it was read, and its slot for the warden
  bool answered = false;    // guarded by the guard's mutex: exactly one response per event
};

std::string init_failure(int error) {
  std::string text = "fanotify_init(FAN_CLASS_CONTENT) failed: " + base::errno_text(error) + ": ";
  switch (error) {
    case EPERM:
      return text + "permission events need CAP_SYS_ADMIN (run the agent as root)";
    case EINVAL:
      return text +
             "this kernel offers no fanotify permission events (needs "
             "CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y)";
    case ENOSYS:
      return text +
             "this kernel has no fanotify (needs CONFIG_FANOTIFY=y and "
             "CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y)";
    case EMFILE:
      return text + "too many fanotify groups (fs.fanotify.max_user_groups) or open files";
    default:
      return text + "needs CAP_SYS_ADMIN and CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y";
  }
}

}  // namespace

class FanotifyExecGuard::Impl {
 public:
  Impl(const FanotifyGuardOptions& options, ExecDecider decider, ExecDecisionSink sink)
      : options_(options),
        decider_(std::move(decider)),
        sink_(std::move(sink)),
        self_pid_(static_cast<uint32_t>(getpid())),
        cache_(options.cache_entries) {
    const int group = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK,
                                    O_RDONLY | O_LARGEFILE | O_CLOEXEC);
    if (group < 0) throw std::runtime_error(init_failure(errno));
    group_ = base::UniqueFd(group);
    const int stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop < 0) throw std::runtime_error("eventfd failed: " + base::errno_text(errno));
    stop_ = base::UniqueFd(stop);
    if (options_.warden) {
      WardenOptions warden;
      warden.executable = options_.warden_executable;
      warden.label = options_.warden_label;
      warden.stale_after = options_.decision_timeout / 2;
      warden.tick = std::clamp<std::chrono::milliseconds>(options_.decision_timeout / 5,
                                                          std::chrono::milliseconds(5),
                                                          std::chrono::milliseconds(100));
      warden.fail_closed = options_.on_timeout == ExecVerdict::kDeny;
      warden_ = std::make_unique<WardenLink>(group_.get(), warden);
    }
  }

  ~Impl() { stop(); }

  void start_threads() {
    reader_ = std::thread([this] { read_loop(); });
    watchdog_ = std::thread([this] { watchdog_loop(); });
    for (size_t i = 0; i < options_.decider_threads; ++i) {
      workers_.emplace_back([this] { work_loop(); });
    }
  }

  bool mark(const std::string& path, std::string& error) {
    // A filesystem mark also covers the other mounts (bind mounts, container views) of the same
    // filesystem; some filesystems refuse it (EXDEV for btrfs subvolumes, older kernels EINVAL).
    if (fanotify_mark(group_.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN_EXEC_PERM,
                      AT_FDCWD, path.c_str()) == 0) {
      return marked(path, "filesystem");
    }
    const int filesystem_error = errno;
    if (fanotify_mark(group_.get(), FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_OPEN_EXEC_PERM, AT_FDCWD,
                      path.c_str()) == 0) {
      spdlog::warn("fanotify guard: {}: filesystem mark refused ({}), marked its mount only", path,
                   base::errno_text(filesystem_error));
      return marked(path, "mount");
    }
    const int mount_error = errno;
    error = "fanotify_mark(FAN_OPEN_EXEC_PERM) on " + path +
            " failed: FAN_MARK_FILESYSTEM: " + base::errno_text(filesystem_error) +
            ", FAN_MARK_MOUNT: " + base::errno_text(mount_error);
    if (mount_error == EINVAL) error += " (FAN_OPEN_EXEC_PERM needs Linux 5.0)";
    return false;
  }

  void clear_cache() {
    std::lock_guard lock(mu_);
    cache_.clear();
    ++generation_;
  }

  void invalidate(uint64_t dev, uint64_t ino) {
    std::lock_guard lock(mu_);
    cache_.erase_if(
        [&](const CacheKey& key, const ExecDecision&) { return key.dev == dev && key.ino == ino; });
    ++generation_;
  }

  void set_locked_cgroups(const std::vector<uint64_t>& cgroup_ids) {
    std::lock_guard lock(mu_);
    locked_ = std::unordered_set<uint64_t>(cgroup_ids.begin(), cgroup_ids.end());
    if (warden_) warden_->set_locked_cgroups(cgroup_ids);
  }

  void end_orphaned_wardens() const {
    std::lock_guard lock(mu_);
    if (warden_) warden_->end_orphans();
  }

  FanotifyGuardStats stats() const {
    std::lock_guard lock(mu_);
    FanotifyGuardStats out = stats_;
    out.cache_size = cache_.size();
    out.cache_evictions = cache_.evictions();
    if (warden_) out.warden = warden_->stats();
    return out;
  }

 private:
  bool marked(const std::string& path, const char* kind) {
    std::lock_guard lock(mu_);
    ++stats_.marked_filesystems;
    spdlog::info("fanotify guard: exec of files on the {} of {} now waits for a verdict", kind,
                 path);
    return true;
  }

  void stop() {
    const uint64_t one = 1;
    if (write(stop_.get(), &one, sizeof one) != sizeof one) {
      spdlog::error("fanotify guard: cannot signal the reader to stop: {}",
                    base::errno_text(errno));
    }
    if (reader_.joinable()) reader_.join();
    // The warden holds a duplicate of the group: it must be gone for the kernel to let go.
    std::unique_ptr<WardenLink> warden;
    {
      std::lock_guard lock(mu_);
      warden = std::move(warden_);
    }
    warden.reset();
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      // After this the kernel allows everything pending; marking the events answered keeps late
      // deciders from writing to a closed (or by then reused) descriptor number.
      group_.reset();
      queue_.clear();
      for (auto& pending : deciding_) pending->answered = true;
    }
    work_cv_.notify_all();
    watchdog_cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    for (auto& worker : workers_) worker.join();
  }

  void read_loop() {
    std::array<pollfd, 2> fds{{{group_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}}};
    for (;;) {
      if (poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        count_error("poll on the fanotify group", errno);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0) read_events();
    }
  }

  // One read per wakeup, so that the stop signal is seen during an exec storm too; poll is
  // level-triggered and comes straight back for what is left.
  void read_events() {
    if (!warden_) {
      read_batch(0);
      return;
    }
    warden_->read_as_owner([this](uint64_t control) { read_batch(control); });
  }

  void read_batch(uint64_t control) {
    alignas(fanotify_event_metadata) std::array<char, 8192> buffer{};
    const ssize_t length = read(group_.get(), buffer.data(), buffer.size());
    if (length < 0) {
      if (errno != EAGAIN && errno != EINTR) count_error("read from the fanotify group", errno);
      return;
    }
    const auto read_at = Clock::now();
    size_t offset = 0;
    while (offset + sizeof(fanotify_event_metadata) <= static_cast<size_t>(length)) {
      fanotify_event_metadata event{};
      std::memcpy(&event, buffer.data() + offset, sizeof event);
      if (event.event_len < sizeof event ||
          offset + event.event_len > static_cast<size_t>(length)) {
        spdlog::critical("fanotify guard: malformed event (length {}) at offset {} of {}",
                         event.event_len, offset, length);
        std::abort();
      }
      offset += event.event_len;
      if (event.vers != FANOTIFY_METADATA_VERSION) {
        spdlog::critical("fanotify guard: event metadata version {}, built for {}", event.vers,
                         FANOTIFY_METADATA_VERSION);
        std::abort();
      }
      if (event.fd == FAN_NOFD) {
        // Permission events beyond the kernel queue limit are not queued but ALLOWED by the
        // kernel; this overflow event is the only trace of them.
        count_error("kernel event queue overflow: execs were allowed unseen", 0);
        continue;
      }
      base::UniqueFd fd(event.fd);
      WardenTicket ticket{control, -1};
      if (warden_) ticket = warden_->hold(event.fd, static_cast<uint32_t>(event.pid), control);
      if ((event.mask & FAN_OPEN_EXEC_PERM) == 0) {
        if (warden_) warden_->release(ticket);
        continue;
      }
      handle(static_cast<uint32_t>(event.pid), std::move(fd), ticket,
             read_at + options_.decision_timeout);
    }
  }

  void handle(uint32_t pid, base::UniqueFd fd, const WardenTicket& ticket,
              Clock::time_point deadline) {
    // The agent re-executing itself (upgrade, restart) must not depend on its own decider, which
    // may be stalled or may not know the new agent binary yet.
    if (pid == self_pid_) {
      std::lock_guard lock(mu_);
      ++stats_.requests;
      respond_locked(fd.get(), ticket, ExecVerdict::kAllow);
      return;
    }
    auto pending = std::make_shared<Pending>();
    pending->fd = std::move(fd);
    pending->ticket = ticket;
    pending->deadline = deadline;
    ExecRequest& request = pending->request;
    request.pid = pid;
    struct stat st {};
    if (fstat(pending->fd.get(), &st) != 0) {
      const int error = errno;
      std::lock_guard lock(mu_);
      ++stats_.requests;
      count_error_locked("fstat of an exec event", error);
      respond_locked(pending->fd.get(), ticket, fallback_verdict(request));
      return;
    }
    request.dev = st.st_dev;
    request.ino = st.st_ino;
    request.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
    // Read once: failing closed, its ancestors decide whether the process is locked.
    const std::string cgroup_path = base::cgroup_v2_path_of(pid);
    request.cgroup_id = base::cgroup_id_of_path(cgroup_path);

    std::optional<ExecDecision> cached;
    {
      std::lock_guard lock(mu_);
      ++stats_.requests;
      pending->generation = generation_;
      if (const ExecDecision* hit = cache_.find(key_of(request))) {
        ++stats_.cache_hits;
        // Unreported hits, the common case, skip the /proc reads entirely.
        if (!hit->report) {
          respond_locked(pending->fd.get(), ticket, hit->verdict);
          return;
        }
        cached = *hit;
      } else {
        ++stats_.cache_misses;
      }
    }
    describe(request, pending->fd.get());
    if (cached) {
      {
        std::lock_guard lock(mu_);
        respond_locked(pending->fd.get(), ticket, cached->verdict);
      }
      report(request, *cached, false);
      return;
    }
    if (options_.on_timeout == ExecVerdict::kDeny) request.locked = in_locked_cgroup(cgroup_path);
    enqueue(std::move(pending));
  }

  // Failing closed applies to the locked workloads, and to processes whose cgroup is unknown.
  bool in_locked_cgroup(const std::string& cgroup_path) const {
    const std::vector<uint64_t> ancestry = base::cgroup_ancestry_of_path(cgroup_path);
    std::lock_guard lock(mu_);
    if (ancestry.empty()) return true;
    return std::any_of(ancestry.begin(), ancestry.end(),
                       [this](uint64_t id) { return locked_.count(id) != 0; });
  }

  ExecVerdict fallback_verdict(const ExecRequest& request) const {  // needs no lock
    return options_.on_timeout == ExecVerdict::kDeny && request.locked ? ExecVerdict::kDeny
                                                                       : ExecVerdict::kAllow;
  }

  void enqueue(std::shared_ptr<Pending> pending) {
    {
      std::lock_guard lock(mu_);
      if (queue_.size() + deciding_.size() < options_.max_pending) {
        queue_.push_back(std::move(pending));
        work_cv_.notify_one();
        watchdog_cv_.notify_one();
        return;
      }
      ++stats_.overflow_answers;
      respond_locked(pending->fd.get(), pending->ticket, fallback_verdict(pending->request));
    }
    report(pending->request,
           fallback(pending->request, "more than max_pending execs awaiting a verdict"), true);
  }

  void work_loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      std::shared_ptr<Pending> pending = std::move(queue_.front());
      queue_.pop_front();
      deciding_.push_back(pending);
      lock.unlock();
      std::optional<ExecDecision> decision = decide(*pending);
      lock.lock();
      std::erase(deciding_, pending);
      if (!decision) {
        ++stats_.errors;
        decision = fallback(pending->request, "the decider threw");
      } else if (decision->cacheable && pending->generation == generation_ &&
                 options_.cache_entries > 0) {
        // Also when the watchdog answered first: the next exec of this file hits.
        cache_.put(key_of(pending->request), *decision);
      }
      const bool late = pending->answered;
      if (!late) answer_locked(*pending, decision->verdict);
      if (!decision->report) continue;
      // A late verdict is still news: fail-open may just have let a denied file run.
      if (late) decision->reason = "decided after the timeout: " + decision->reason;
      lock.unlock();
      report(pending->request, *decision, late);
      lock.lock();
    }
  }

  std::optional<ExecDecision> decide(const Pending& pending) {
    ExecRequest request = pending.request;
    request.fd = pending.fd.get();
    try {
      return decider_(request);
    } catch (const std::exception& e) {
      spdlog::error("fanotify guard: decider failed on {}: {}", request.path, e.what());
    } catch (...) {
      spdlog::error("fanotify guard: decider failed on {}: unknown exception", request.path);
    }
    return std::nullopt;
  }

  void watchdog_loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      const auto now = Clock::now();
      // The warden takes over when these stop: they say that this process still answers.
      if (warden_) warden_->heartbeat();
      std::vector<ExecRequest> overdue;
      // The queue is in deadline order: all events share one timeout and arrive in order.
      while (!queue_.empty() && queue_.front()->deadline <= now) {
        time_out_locked(*queue_.front(), overdue);
        queue_.pop_front();
      }
      std::optional<Clock::time_point> next;
      if (!queue_.empty()) next = queue_.front()->deadline;
      for (auto& pending : deciding_) {
        if (pending->answered) continue;
        if (pending->deadline <= now) {
          time_out_locked(*pending, overdue);
        } else if (!next || pending->deadline < *next) {
          next = pending->deadline;
        }
      }
      if (!overdue.empty()) {
        lock.unlock();
        for (const auto& request : overdue) {
          report(request, fallback(request, "no verdict within the decision timeout"), true);
        }
        lock.lock();
        continue;
      }
      const auto tick = now + heartbeat_period();
      watchdog_cv_.wait_until(lock, next ? std::min(*next, tick) : tick);
    }
  }

  std::chrono::milliseconds heartbeat_period() const {
    // Without a warden nobody listens; a long wait keeps an idle agent idle.
    return warden_ ? warden_->tick() : std::chrono::milliseconds(1000);
  }

  void time_out_locked(Pending& pending, std::vector<ExecRequest>& overdue) {
    ++stats_.timeouts;
    answer_locked(pending, fallback_verdict(pending.request));
    overdue.push_back(pending.request);
  }

  void answer_locked(Pending& pending, ExecVerdict verdict) {
    pending.answered = true;
    respond_locked(pending.fd.get(), pending.ticket, verdict);
  }

  void respond_locked(int event_fd, const WardenTicket& ticket, ExecVerdict verdict) {
    if (group_.get() < 0) return;  // stopped: the kernel has allowed it already
    if (warden_ && !warden_->may_answer(ticket)) {
      // The warden took the group over after this event was read: it has answered it, or will.
      ++stats_.answered_by_warden;
      warden_->release(ticket);
      return;
    }
    fanotify_response response{};
    response.fd = event_fd;
    response.response = verdict == ExecVerdict::kAllow ? FAN_ALLOW : FAN_DENY;
    if (write(group_.get(), &response, sizeof response) != sizeof response) {
      if (errno == ENOENT && warden_ && !warden_->may_answer(ticket)) {
        ++stats_.answered_by_warden;  // it took over while this write was on its way
      } else {
        count_error_locked("fanotify response write", errno);
      }
    } else {
      ++(verdict == ExecVerdict::kAllow ? stats_.allowed : stats_.denied);
    }
    if (warden_) warden_->release(ticket);
  }

  ExecDecision fallback(const ExecRequest& request, std::string reason) const {
    ExecDecision decision;
    decision.verdict = fallback_verdict(request);
    decision.cacheable = false;
    decision.report = true;
    decision.reason = std::move(reason);
    return decision;
  }

  void report(const ExecRequest& request, const ExecDecision& decision, bool timed_out) {
    if (!sink_) return;
    std::lock_guard lock(sink_mu_);
    try {
      sink_(request, decision, timed_out);
    } catch (const std::exception& e) {
      spdlog::error("fanotify guard: decision sink failed: {}", e.what());
      count_error("decision sink threw", 0);
    } catch (...) {
      count_error("decision sink threw an unknown exception", 0);
    }
  }

  void count_error(const char* what, int error) {
    std::lock_guard lock(mu_);
    count_error_locked(what, error);
  }

  void count_error_locked(const char* what, int error) {
    ++stats_.errors;
    if (error == 0) {
      spdlog::warn("fanotify guard: {}", what);
    } else {
      spdlog::warn("fanotify guard: {}: {}", what, base::errno_text(error));
    }
  }

  const FanotifyGuardOptions options_;
  const ExecDecider decider_;
  const ExecDecisionSink sink_;
  const uint32_t self_pid_;
  base::UniqueFd group_;
  base::UniqueFd stop_;
  std::unique_ptr<WardenLink> warden_;  // after group_: it holds a duplicate of the group

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable watchdog_cv_;
  // Not a base::BoundedQueue: the watchdog answers overdue requests from its front under the
  // same lock, and its bound is shared with deciding_ (a request holds the kernel's exec).
  std::deque<std::shared_ptr<Pending>> queue_;      // not yet with a decider, oldest first
  std::vector<std::shared_ptr<Pending>> deciding_;  // at most decider_threads
  base::LruMap<CacheKey, ExecDecision, CacheKeyHash> cache_;
  uint64_t generation_ = 0;              // bumped by clear_cache() and invalidate()
  std::unordered_set<uint64_t> locked_;  // failing closed, these cgroups' execs are refused
  bool stopping_ = false;
  FanotifyGuardStats stats_;

  std::mutex sink_mu_;  // serializes sink calls so sinks need no locking of their own

  std::thread reader_;
  std::thread watchdog_;
  std::vector<std::thread> workers_;
};

std::unique_ptr<FanotifyExecGuard> FanotifyExecGuard::start(const FanotifyGuardOptions& options,
                                                            ExecDecider decider,
                                                            ExecDecisionSink sink) {
  if (!decider) throw std::invalid_argument("fanotify guard: no decider");
  if (options.decider_threads == 0)
    throw std::invalid_argument("fanotify guard: no decider threads");
  if (options.decision_timeout <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("fanotify guard: decision_timeout must be positive");
  }
  auto impl = std::make_unique<Impl>(options, std::move(decider), std::move(sink));
  // Threads first: an exec on a marked filesystem waits until the reader answers it.
  impl->start_threads();
  for (const auto& path : options.mounts) {
    std::string error;
    if (!impl->mark(path, error)) throw std::runtime_error(error);
  }
  if (!options.mounts.empty()) impl->end_orphaned_wardens();
  return std::unique_ptr<FanotifyExecGuard>(new FanotifyExecGuard(std::move(impl)));
}

FanotifyExecGuard::FanotifyExecGuard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FanotifyExecGuard::~FanotifyExecGuard() = default;

bool FanotifyExecGuard::mark(const std::string& path, std::string& error) {
  return impl_->mark(path, error);
}
void FanotifyExecGuard::clear_cache() {
  impl_->clear_cache();
}
void FanotifyExecGuard::invalidate(uint64_t dev, uint64_t ino) {
  impl_->invalidate(dev, ino);
}
void FanotifyExecGuard::end_orphaned_wardens() {
  impl_->end_orphaned_wardens();
}
void FanotifyExecGuard::set_locked_cgroups(const std::vector<uint64_t>& cgroup_ids) {
  impl_->set_locked_cgroups(cgroup_ids);
}
FanotifyGuardStats FanotifyExecGuard::stats() const {
  return impl_->stats();
}

}  // namespace palisade::agent
