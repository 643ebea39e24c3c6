// Container drift: whether an executable is part of its container's image. Containers run on an
// overlayfs mount (containerd's overlayfs snapshotter): the image's layers are the read-only lower
// directories, and whatever the container writes — a new file, or an image file it changes,
// chmods or renames, which overlayfs first copies up — lives in the upper directory. The layers of
// the overlay mounted at a container's rootfs are read from /proc/self/mountinfo.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <istream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "palisade/base/lru_map.h"

namespace palisade::agent {

struct OverlayMount {
  std::string upperdir;                // empty: a read-only overlay
  std::vector<std::string> lowerdirs;  // the image's layers, topmost first (no data-only layers)
};

// The overlay mounted at `mount_point`, from mountinfo text: the last mount there (the one on
// top); nullopt when that is not an overlay. Undoes the kernel's escapes (\ooo in mountinfo, '\'
// before a ':' inside a lower directory) and reads both lowerdir= and the mount API's lowerdir+=.
std::optional<OverlayMount> overlay_at(std::istream& mountinfo, const std::string& mount_point);

enum class Provenance : uint8_t {
  kImage,  // the topmost layer holding the path is an image layer, and holds this very file
  kDrift,  // not so: the upper layer holds the path, or no layer holds this file under it
  // Not on an overlay: a volume, a tmpfs, or the layer's own file, which overlayfs opens for the
  // exec after the overlay's file and fanotify reports as a second exec (with the same path) when
  // the layer's filesystem is marked too, as the host's root filesystem is.
  kElsewhere,
  kUnknown,  // drift cannot be told: no overlay at the rootfs, or the file is on another overlay
};

// Bounded by `capacity` root filesystems (least recently used out); thread-safe.
class OverlayLayers {
 public:
  explicit OverlayLayers(size_t capacity = 256, std::string mountinfo = "/proc/self/mountinfo");

  // Where the file open as `fd` (the exec'd file), named `path` as the container sees it, comes
  // from, for the container whose root filesystem is mounted at `rootfs`. Decided from the
  // layers, not from the path alone: a file renamed while its exec waits is not in any layer
  // under the old name, and so counts as drift.
  Provenance provenance(const std::string& rootfs, const std::string& path, int fd);
  nlohmann::json status() const;

 private:
  struct Entry {
    uint64_t mount_id = 0;  // of the mount at the rootfs when read: a remount there is noticed
    std::optional<OverlayMount> overlay;
  };
  std::optional<OverlayMount> layers_of(const std::string& rootfs);

  const std::string mountinfo_;
  mutable std::mutex mutex_;
  base::LruMap<std::string, Entry> cache_;  // by rootfs
  std::array<uint64_t, 4> counts_{};        // checks, by Provenance
  uint64_t mountinfo_reads_ = 0;
};

}  // namespace palisade::agent
