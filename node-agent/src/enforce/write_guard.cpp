#include "enforce/write_guard.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxMarkedDirectories = 4096;

std::string fd_path(int fd) {
  char link[64];
  std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  char target[PATH_MAX];
  const ssize_t n = readlink(link, target, sizeof(target) - 1);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
}

}  // namespace

bool write_intent(uint32_t open_flags) {
  return (open_flags & O_ACCMODE) != O_RDONLY || (open_flags & O_TRUNC) != 0;
}

std::unique_ptr<WriteGuard> WriteGuard::start(int intent_map_fd, Decide decide, Sink sink,
                                              const std::string& warden_label) {
  std::unique_ptr<WriteGuard> self(new WriteGuard());
  // FAN_REPORT_TID: the event names the thread, whose open flags the eBPF map keeps.
  self->fanotify_fd_ =
      fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_TID,
                    O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (self->fanotify_fd_ < 0) {
    throw std::runtime_error(std::string("fanotify_init for the write guard: ") +
                             std::strerror(errno));
  }
  // A write-open waiting here must not wait on an agent that cannot run: the warden answers
  // (allow: these marks fail open) when this thread stops ticking.
  WardenOptions warden;
  warden.label = warden_label;
  self->warden_ = std::make_unique<WardenLink>(self->fanotify_fd_, warden);
  self->stop_fd_ = eventfd(0, EFD_CLOEXEC);
  self->intent_fd_ = intent_map_fd;
  self->decide_ = std::move(decide);
  self->sink_ = std::move(sink);
  WriteGuard* raw = self.get();
  self->thread_ = std::thread([raw] { raw->run(); });
  return self;
}

WriteGuard::~WriteGuard() {
  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) spdlog::debug("write guard stop");
  }
  if (thread_.joinable()) thread_.join();
  // Closing the group allows whatever is still pending, once the warden's copy is closed too.
  warden_.reset();
  if (fanotify_fd_ >= 0) close(fanotify_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

void WriteGuard::watch(const std::vector<std::string>& paths) {
  for (const auto& path : marked_) {
    fanotify_mark(fanotify_fd_, FAN_MARK_REMOVE, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, AT_FDCWD,
                  path.c_str());
  }
  marked_.clear();
  auto mark = [this](const std::string& path) {
    if (fanotify_mark(fanotify_fd_, FAN_MARK_ADD, FAN_OPEN_PERM | FAN_EVENT_ON_CHILD, AT_FDCWD,
                      path.c_str()) == 0) {
      marked_.push_back(path);
    } else {
      mark_errors_++;
      spdlog::warn("write guard: cannot mark {}: {}", path, std::strerror(errno));
    }
  };
  for (const auto& path : paths) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) {
      if (fs::exists(path, ec)) mark(path);
      continue;
    }
    // Inode marks see a directory's direct children: mark every directory below it too.
    mark(path);
    fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec);
    for (;
         !ec && it != fs::recursive_directory_iterator() && marked_.size() < kMaxMarkedDirectories;
         it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) mark(it->path().string());
    }
  }
}

void WriteGuard::answer(int event_fd, const WardenTicket& ticket, uint32_t response) {
  if (!warden_->may_answer(ticket)) {
    answered_by_warden_++;  // it took the group over after this event was read
  } else if (fanotify_response r{event_fd, response};
             write(fanotify_fd_, &r, sizeof(r)) != sizeof(r)) {
    spdlog::debug("write guard: response failed: {}", std::strerror(errno));
  }
  warden_->release(ticket);
}

void WriteGuard::run() {
  while (true) {
    pollfd fds[2] = {{fanotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    // Wakes every tick to say to the warden that this thread still answers.
    if (poll(fds, 2, static_cast<int>(warden_->tick().count())) < 0 && errno != EINTR) break;
    if ((fds[1].revents & POLLIN) != 0) break;
    warden_->heartbeat();
    if ((fds[0].revents & POLLIN) != 0) {
      warden_->read_as_owner([this](uint64_t control) { read_batch(control); });
    }
  }
}

void WriteGuard::read_batch(uint64_t control) {
  alignas(fanotify_event_metadata) char buffer[8192];
  const auto self = static_cast<uint32_t>(getpid());
  const ssize_t n = read(fanotify_fd_, buffer, sizeof(buffer));
  if (n <= 0) return;
  auto* meta = reinterpret_cast<fanotify_event_metadata*>(buffer);
  ssize_t left = n;
  for (; FAN_EVENT_OK(meta, left); meta = FAN_EVENT_NEXT(meta, left)) {
    if (meta->fd < 0) continue;
    const WardenTicket ticket = warden_->hold(meta->fd, static_cast<uint32_t>(meta->pid), control);
    requests_++;
    uint32_t response = FAN_ALLOW;
    WriteRequest request;
    request.tid = static_cast<uint32_t>(meta->pid);
    uint32_t flags = 0;
    // The agent's own opens, and threads with no recorded intent, are not a workload's.
    if (request.tid != self && bpf_map_lookup_elem(intent_fd_, &request.tid, &flags) == 0) {
      request.open_flags = flags;
      if (write_intent(flags)) {
        request.path = fd_path(meta->fd);
        if (auto reason = decide_(request)) {
          response = FAN_DENY;
          denied_++;
          sink_(request, *reason);
        }
      }
    } else {
      no_intent_++;
    }
    answer(meta->fd, ticket, response);
    close(meta->fd);
  }
}

WriteGuardStats WriteGuard::stats() const {
  WriteGuardStats s;
  s.requests = requests_;
  s.denied = denied_;
  s.no_intent = no_intent_;
  s.marked = marked_.size();
  s.mark_errors = mark_errors_;
  s.answered_by_warden = answered_by_warden_;
  s.warden = warden_->stats();
  return s;
}

}  // namespace palisade::agent
