#include "enforce/overlay_layers.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "palisade/base/mountinfo.h"
#include "palisade/base/unique_fd.h"

namespace palisade::agent {
namespace {

// Linux 6.8: a mount id that is never reused (the plain one is, at once: a container restarted
// under the same id gets its rootfs remounted with the same mount id and device number).
#ifndef STATX_MNT_ID_UNIQUE
constexpr unsigned kStatxMntIdUnique = 0x4000U;
#else
constexpr unsigned kStatxMntIdUnique = STATX_MNT_ID_UNIQUE;
#endif

// "l1:l2::data" as overlayfs splits it: '\' makes the next character literal; "::" starts the
// data-only layers, which hold file contents but no names, so they are left out.
std::vector<std::string> split_lowerdirs(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size()) {
      current.push_back(text[++i]);
    } else if (text[i] == ':') {
      if (current.empty()) return out;
      out.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(text[i]);
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, separator)) out.push_back(item);
  return out;
}

// The entry at `relative` below `dir`, as overlayfs would find it in that layer: no symlink
// followed (the path fanotify gives has none left), nothing outside the layer, no other mount.
std::optional<struct stat> stat_in_layer(const std::string& dir, const std::string& relative) {
  const base::UniqueFd layer(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!layer) return std::nullopt;
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
  const base::UniqueFd entry(
      static_cast<int>(syscall(SYS_openat2, layer.get(), relative.c_str(), &how, sizeof(how))));
  struct stat st {};
  if (!entry || fstat(entry.get(), &st) != 0) return std::nullopt;
  return st;
}

bool same_ctime(const struct stat& a, const struct stat& b) {
  return a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

}  // namespace

std::optional<OverlayMount> overlay_at(std::istream& mountinfo, const std::string& mount_point) {
  std::optional<OverlayMount> found;
  for (const base::MountEntry& mount : base::parse_mountinfo(mountinfo)) {
    if (mount.mount_point != mount_point) continue;
    if (mount.fstype != "overlay") {
      found.reset();  // something else mounted on top
      continue;
    }
    OverlayMount overlay;
    // Values cannot hold a bare ',': overlayfs escapes it.
    for (const std::string& option : split(mount.super_options, ',')) {
      const size_t equals = option.find('=');
      if (equals == std::string::npos) continue;
      const std::string key = option.substr(0, equals);
      const std::string value = base::unescape_mount_text(option.substr(equals + 1));
      if (key == "upperdir") {
        overlay.upperdir = value;
      } else if (key == "lowerdir") {
        overlay.lowerdirs = split_lowerdirs(value);
      } else if (key == "lowerdir+") {
        overlay.lowerdirs.push_back(value);
      }
    }
    found = std::move(overlay);
  }
  return found;
}

OverlayLayers::OverlayLayers(size_t capacity, std::string mountinfo)
    : mountinfo_(std::move(mountinfo)), cache_(capacity) {}

std::optional<OverlayMount> OverlayLayers::layers_of(const std::string& rootfs) {
  struct statx stx {};
  if (statx(AT_FDCWD, rootfs.c_str(), AT_SYMLINK_NOFOLLOW, STATX_MNT_ID | kStatxMntIdUnique,
            &stx) != 0) {
    return std::nullopt;
  }
  const uint64_t mount_id = stx.stx_mnt_id;
  {
    std::lock_guard lock(mutex_);
    if (const Entry* cached = cache_.find(rootfs); cached && cached->mount_id == mount_id) {
      return cached->overlay;
    }
    ++mountinfo_reads_;
  }
  std::ifstream in(mountinfo_);
  Entry entry{mount_id, overlay_at(in, rootfs)};
  std::optional<OverlayMount> out = entry.overlay;
  std::lock_guard lock(mutex_);
  cache_.put(rootfs, std::move(entry));
  return out;
}

Provenance OverlayLayers::provenance(const std::string& rootfs, const std::string& path, int fd) {
  auto decide = [&]() -> Provenance {
    struct statfs file_fs {};
    struct statfs root_fs {};
    struct stat file {};
    if (path.empty() || path[0] != '/' || fstatfs(fd, &file_fs) != 0 || fstat(fd, &file) != 0 ||
        statfs(rootfs.c_str(), &root_fs) != 0) {
      return Provenance::kUnknown;
    }
    if (file_fs.f_type != OVERLAYFS_SUPER_MAGIC) return Provenance::kElsewhere;
    // Another overlay is not the container's root filesystem.
    if (root_fs.f_type != OVERLAYFS_SUPER_MAGIC ||
        file_fs.f_fsid.__val[0] != root_fs.f_fsid.__val[0] ||
        file_fs.f_fsid.__val[1] != root_fs.f_fsid.__val[1]) {
      return Provenance::kUnknown;
    }
    const std::optional<OverlayMount> overlay = layers_of(rootfs);
    if (!overlay) return Provenance::kUnknown;
    const std::string relative = path.substr(1);
    // Anything but a directory in the upper layer: written, or copied up by a change, since the
    // container started.
    if (!overlay->upperdir.empty()) {
      const auto upper = stat_in_layer(overlay->upperdir, relative);
      if (upper && !S_ISDIR(upper->st_mode)) return Provenance::kDrift;
    }
    // Otherwise the topmost image layer holding the path must hold this file. Image layers never
    // change, and overlayfs reports a lower file's own ctime, which no file written later can
    // have: ctime and size identify it (st_ino would not: overlayfs remaps it with xino).
    for (const std::string& lower : overlay->lowerdirs) {
      const auto entry = stat_in_layer(lower, relative);
      if (!entry) continue;
      const bool same =
          S_ISREG(entry->st_mode) && same_ctime(*entry, file) && entry->st_size == file.st_size;
      return same ? Provenance::kImage : Provenance::kDrift;
    }
    return Provenance::kDrift;  // in no layer under that name (renamed or removed meanwhile)
  };
  const Provenance result = decide();
  std::lock_guard lock(mutex_);
  ++counts_.at(static_cast<size_t>(result));
  return result;
}

nlohmann::json OverlayLayers::status() const {
  std::lock_guard lock(mutex_);
  auto count = [this](Provenance p) { return counts_.at(static_cast<size_t>(p)); };
  return {{"image", count(Provenance::kImage)},
          {"drift", count(Provenance::kDrift)},
          {"elsewhere", count(Provenance::kElsewhere)},
          {"unknown", count(Provenance::kUnknown)},
          {"rootfs_cached", cache_.size()},
          {"rootfs_evictions", cache_.evictions()},
          {"mountinfo_reads", mountinfo_reads_}};
}

}  // namespace palisade::agent
