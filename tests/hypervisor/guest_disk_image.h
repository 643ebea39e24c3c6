// Disk images for the guest-inspection tests, built from a directory tree without loop devices,
// mounts or a shell: mkfs.ext4 -d fills a filesystem image from the tree, sfdisk writes an MBR
// partition table, the filesystem is copied into the partition and qemu-img makes a qcow2.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace palisade::hypervisor::testing {

// A directory that becomes a guest's root filesystem. Paths are guest paths ("/etc/passwd").
class GuestRootfs {
 public:
  explicit GuestRootfs(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path host_path(const std::string& guest_path) const;

  void write(const std::string& path, const std::string& content, mode_t mode = 0644, uid_t uid = 0,
             gid_t gid = 0);
  void append(const std::string& path, const std::string& content);
  void symlink(const std::string& target, const std::string& path);
  void mkdir(const std::string& path, mode_t mode = 0755, uid_t uid = 0, gid_t gid = 0);

 private:
  std::filesystem::path dir_;
};

// Runs a program found in PATH (or /usr/sbin, /sbin) with these arguments and no shell, feeding
// it input on stdin. Throws with the program's output when it fails.
void run_program(const std::vector<std::string>& argv, const std::string& input = "");

struct DiskImageOptions {
  std::string format = "qcow2";  // or "raw"
  uint64_t size_mib = 64;
  std::string filesystem_uuid = "6a1a7c1e-0000-4d2b-9c1e-000000000001";
  std::string label = "root";
};

// An MBR disk with one Linux partition (from 1 MiB to the end) holding an ext4 filesystem with
// the tree's content, owners, modes and modification times.
void build_disk_image(const std::filesystem::path& rootfs, const std::filesystem::path& image,
                      const DiskImageOptions& options = {});

}  // namespace palisade::hypervisor::testing
