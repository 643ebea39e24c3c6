#include "palisade/base/directory_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cstring>

namespace palisade::base {
namespace {

constexpr uint32_t kEvents = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                             IN_DELETE_SELF | IN_MOVE_SELF;
constexpr auto kRetryEvery = std::chrono::seconds(2);

}  // namespace

bool is_kubelet_swap(std::string_view name) {
  return name.size() > 2 && name.substr(0, 2) == "..";
}

DirectoryWatch::DirectoryWatch(std::vector<Target> targets)
    : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
  for (auto& t : targets) targets_.push_back({std::move(t), -1});
  add_missing();
}

void DirectoryWatch::add_missing() {
  if (!fd_) return;
  for (auto& t : targets_) {
    if (t.wd < 0 && !t.target.directory.empty()) {
      t.wd = inotify_add_watch(fd_.get(), t.target.directory.c_str(), kEvents | IN_ONLYDIR);
    }
  }
  next_retry_ = std::chrono::steady_clock::now() + kRetryEvery;
}

bool DirectoryWatch::changed() {
  if (!fd_) return false;
  bool any = false;
  if (std::chrono::steady_clock::now() >= next_retry_) {
    const size_t before = watched().size();
    add_missing();
    any = watched().size() > before;  // a directory that appeared brings its files
  }
  alignas(inotify_event) std::array<char, 4096> buffer{};
  for (;;) {
    const ssize_t n = read(fd_.get(), buffer.data(), buffer.size());
    if (n <= 0) break;
    for (ssize_t at = 0; at < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      for (auto& t : targets_) {
        if (t.wd != event->wd) continue;
        if (event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
          t.wd = -1;  // the directory went: looked for again
          any = true;
          continue;
        }
        const std::string_view name = event->len > 0 ? std::string_view(event->name) : "";
        if (!name.empty() && (!t.target.matters || t.target.matters(name))) any = true;
      }
    }
  }
  return any;
}

std::vector<std::string> DirectoryWatch::watched() const {
  std::vector<std::string> out;
  for (const auto& t : targets_) {
    if (t.wd >= 0) out.push_back(t.target.directory);
  }
  return out;
}

}  // namespace palisade::base
