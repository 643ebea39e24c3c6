// An owned libguestfs handle with typed, read-only calls. Every failure throws GuestfsError with
// the call's name and libguestfs's message; nothing is printed to stderr. Each call is a round
// trip to the appliance (milliseconds, tens of them under software emulation), so the calls that
// matter come in batches: one directory's entries per lstat_many, whole trees per find0 and
// checksums_sha256 (streamed through a pipe, never held whole).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "palisade/base/error.h"

struct guestfs_h;
struct guestfs_statns;

namespace palisade::hypervisor::inspect {

class GuestfsError : public EnvironmentError {
 public:
  GuestfsError(const std::string& message, int error_number)
      : EnvironmentError(message), errno_(error_number) {}
  int error_number() const { return errno_; }  // the guest-side errno when known, else 0

 private:
  int errno_;
};

struct GuestStat {
  uint64_t inode = 0;
  uint32_t mode = 0;  // st_mode: type and permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

struct GuestApplication {
  std::string name;
  int32_t epoch = 0;
  std::string version;
  std::string release;
  std::string arch;
};

class GuestfsHandle {
 public:
  GuestfsHandle();
  ~GuestfsHandle();
  GuestfsHandle(const GuestfsHandle&) = delete;
  GuestfsHandle& operator=(const GuestfsHandle&) = delete;

  // Before launch.
  void set_backend(const std::string& backend);
  void set_backend_settings(const std::vector<std::string>& settings);
  std::string tmpdir();  // where libguestfs puts its temporary files (honours the environment)
  void set_tmpdir(const std::string& dir);
  void add_drive_read_only(const std::string& path, const std::string& format);
  void launch();

  // Inspection of the operating systems on the disks.
  std::vector<std::string> inspect_os();
  std::string inspect_type(const std::string& root);
  std::string inspect_distro(const std::string& root);
  std::string inspect_product_name(const std::string& root);
  std::string inspect_hostname(const std::string& root);
  int inspect_major_version(const std::string& root);
  int inspect_minor_version(const std::string& root);
  std::vector<std::pair<std::string, std::string>> inspect_mountpoints(const std::string& root);
  std::vector<GuestApplication> inspect_applications(const std::string& root);
  void mount_read_only(const std::string& device, const std::string& mountpoint);

  // Files of the mounted guest. Paths are absolute inside the guest.
  std::string realpath(const std::string& path);            // resolved inside the guest
  std::optional<GuestStat> lstat(const std::string& path);  // nullopt: does not exist
  std::optional<GuestStat> stat(const std::string& path);   // follows links, inside the guest
  // One entry per name (names in dir, without '/'); nullopt for a name that does not exist.
  std::vector<std::optional<GuestStat>> lstat_many(const std::string& dir,
                                                   const std::vector<std::string>& names);
  // One target per name; empty for a name that is not a symlink.
  std::vector<std::string> readlink_many(const std::string& dir,
                                         const std::vector<std::string>& names);
  // Up to max_bytes from the start of a file; truncated says whether there was more.
  std::string read_prefix(const std::string& path, uint64_t max_bytes, bool& truncated);
  std::string sha256(const std::string& path);

  // Streams: every entry under dir, relative and without "./", one call of on_name each.
  void find0(const std::string& dir, const std::function<void(std::string_view)>& on_name);
  // Streams "HEX  ./RELATIVE" lines (sha256sum's format, '\' escaping included) for every
  // regular file under dir.
  void checksums_sha256(const std::string& dir,
                        const std::function<void(std::string_view)>& on_line);

  void shutdown();

 private:
  [[noreturn]] void fail(const char* call) const;
  std::string take_string(const char* call, char* value) const;
  std::optional<GuestStat> stat_call(const char* call,
                                     struct guestfs_statns* (*function)(guestfs_h*, const char*),
                                     const std::string& path);
  void stream(const char* call, char separator,
              const std::function<int(const char* local_file)>& run,
              const std::function<void(std::string_view)>& on_record);

  guestfs_h* g_ = nullptr;
};

}  // namespace palisade::hypervisor::inspect
