#include "inspect/guestfs_handle.h"

#include <fcntl.h>
#include <guestfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <thread>

#include "palisade/base/unique_fd.h"

namespace palisade::hypervisor::inspect {
namespace {

// Below the protocol's 4 MiB message limit with room to spare, and small enough that one batch
// never holds the appliance for long.
constexpr size_t kBatchNames = 1000;
constexpr size_t kBatchBytes = size_t{512} * 1024;
constexpr uint64_t kReadChunk = 1 << 20;
// No path or checksum line comes near this; a longer record is dropped, not kept growing.
constexpr size_t kMaxRecord = size_t{64} * 1024;

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

// A NULL-terminated array of strings returned by libguestfs: freed with its strings.
class StringList {
 public:
  explicit StringList(char** list) : list_(list) {}
  ~StringList() {
    if (list_ == nullptr) return;
    for (char** p = list_; *p != nullptr; ++p) std::free(*p);
    std::free(list_);
  }
  StringList(const StringList&) = delete;
  StringList& operator=(const StringList&) = delete;
  bool null() const { return list_ == nullptr; }
  std::vector<std::string> strings() const {
    std::vector<std::string> out;
    for (char** p = list_; p != nullptr && *p != nullptr; ++p) out.emplace_back(*p);
    return out;
  }

 private:
  char** list_;
};

// argv-style view of strings for calls that take char* const*.
class CStrings {
 public:
  explicit CStrings(const std::vector<std::string>& strings) {
    pointers_.reserve(strings.size() + 1);
    for (const std::string& s : strings) pointers_.push_back(const_cast<char*>(s.c_str()));
    pointers_.push_back(nullptr);
  }
  char* const* get() const { return pointers_.data(); }

 private:
  std::vector<char*> pointers_;
};

GuestStat from_statns(const struct guestfs_statns& s) {
  GuestStat out;
  out.inode = static_cast<uint64_t>(s.st_ino);
  out.mode = static_cast<uint32_t>(s.st_mode);
  out.uid = static_cast<uint32_t>(s.st_uid);
  out.gid = static_cast<uint32_t>(s.st_gid);
  out.size = static_cast<uint64_t>(s.st_size);
  out.mtime_ns = s.st_mtime_sec * 1000000000 + s.st_mtime_nsec;
  out.ctime_ns = s.st_ctime_sec * 1000000000 + s.st_ctime_nsec;
  return out;
}

// Consecutive slices of names that each fit in one call.
std::vector<std::pair<size_t, size_t>> batches(const std::vector<std::string>& names) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t begin = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > begin && (i - begin >= kBatchNames || bytes + names[i].size() > kBatchBytes)) {
      out.emplace_back(begin, i);
      begin = i;
      bytes = 0;
    }
    bytes += names[i].size() + 8;
  }
  if (begin < names.size()) out.emplace_back(begin, names.size());
  return out;
}

}  // namespace

GuestfsHandle::GuestfsHandle() : g_(guestfs_create()) {
  if (g_ == nullptr) throw GuestfsError("guestfs_create: cannot create a libguestfs handle", 0);
  // Errors are read back with guestfs_last_error and thrown; libguestfs must not print them.
  guestfs_set_error_handler(g_, nullptr, nullptr);
  // Never sync or unmount-all on close: the drives are read-only and nothing was written.
  guestfs_set_autosync(g_, 0);
}

GuestfsHandle::~GuestfsHandle() {
  guestfs_close(g_);  // also stops the appliance and reaps it
}

void GuestfsHandle::fail(const char* call) const {
  const char* message = guestfs_last_error(g_);
  throw GuestfsError(std::string(call) + ": " + (message != nullptr ? message : "failed"),
                     guestfs_last_errno(g_));
}

std::string GuestfsHandle::take_string(const char* call, char* value) const {
  if (value == nullptr) fail(call);
  std::unique_ptr<char, FreeDeleter> owned(value);
  return std::string(value);
}

void GuestfsHandle::set_backend(const std::string& backend) {
  if (guestfs_set_backend(g_, backend.c_str()) == -1) fail("set_backend");
}

void GuestfsHandle::set_backend_settings(const std::vector<std::string>& settings) {
  CStrings argv(settings);
  if (guestfs_set_backend_settings(g_, argv.get()) == -1) fail("set_backend_settings");
}

std::string GuestfsHandle::tmpdir() {
  return take_string("get_tmpdir", guestfs_get_tmpdir(g_));
}

void GuestfsHandle::set_tmpdir(const std::string& dir) {
  if (guestfs_set_tmpdir(g_, dir.c_str()) == -1) fail("set_tmpdir");
}

void GuestfsHandle::add_drive_read_only(const std::string& path, const std::string& format) {
  const int r =
      format.empty()
          ? guestfs_add_drive_opts(g_, path.c_str(), GUESTFS_ADD_DRIVE_OPTS_READONLY, 1, -1)
          : guestfs_add_drive_opts(g_, path.c_str(), GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
                                   GUESTFS_ADD_DRIVE_OPTS_FORMAT, format.c_str(), -1);
  if (r == -1) fail("add_drive");
}

void GuestfsHandle::launch() {
  if (guestfs_launch(g_) == -1) fail("launch");
}

std::vector<std::string> GuestfsHandle::inspect_os() {
  StringList roots(guestfs_inspect_os(g_));
  if (roots.null()) fail("inspect_os");
  return roots.strings();
}

std::string GuestfsHandle::inspect_type(const std::string& root) {
  return take_string("inspect_get_type", guestfs_inspect_get_type(g_, root.c_str()));
}

std::string GuestfsHandle::inspect_distro(const std::string& root) {
  return take_string("inspect_get_distro", guestfs_inspect_get_distro(g_, root.c_str()));
}

std::string GuestfsHandle::inspect_product_name(const std::string& root) {
  return take_string("inspect_get_product_name",
                     guestfs_inspect_get_product_name(g_, root.c_str()));
}

std::string GuestfsHandle::inspect_hostname(const std::string& root) {
  return take_string("inspect_get_hostname", guestfs_inspect_get_hostname(g_, root.c_str()));
}

int GuestfsHandle::inspect_major_version(const std::string& root) {
  const int v = guestfs_inspect_get_major_version(g_, root.c_str());
  if (v == -1) fail("inspect_get_major_version");
  return v;
}

int GuestfsHandle::inspect_minor_version(const std::string& root) {
  const int v = guestfs_inspect_get_minor_version(g_, root.c_str());
  if (v == -1) fail("inspect_get_minor_version");
  return v;
}

std::vector<std::pair<std::string, std::string>> GuestfsHandle::inspect_mountpoints(
    const std::string& root) {
  StringList pairs(guestfs_inspect_get_mountpoints(g_, root.c_str()));
  if (pairs.null()) fail("inspect_get_mountpoints");
  const std::vector<std::string> flat = pairs.strings();
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i + 1 < flat.size(); i += 2) out.emplace_back(flat[i], flat[i + 1]);
  return out;
}

std::vector<GuestApplication> GuestfsHandle::inspect_applications(const std::string& root) {
  guestfs_application2_list* list = guestfs_inspect_list_applications2(g_, root.c_str());
  if (list == nullptr) fail("inspect_list_applications2");
  std::vector<GuestApplication> out;
  out.reserve(list->len);
  for (uint32_t i = 0; i < list->len; ++i) {
    const guestfs_application2& a = list->val[i];
    out.push_back({a.app2_name, a.app2_epoch, a.app2_version, a.app2_release, a.app2_arch});
  }
  guestfs_free_application2_list(list);
  return out;
}

void GuestfsHandle::mount_read_only(const std::string& device, const std::string& mountpoint) {
  if (guestfs_mount_ro(g_, device.c_str(), mountpoint.c_str()) == -1) fail("mount_ro");
}

std::string GuestfsHandle::realpath(const std::string& path) {
  return take_string("realpath", guestfs_realpath(g_, path.c_str()));
}

std::optional<GuestStat> GuestfsHandle::stat_call(const char* call,
                                                  struct guestfs_statns* (*function)(guestfs_h*,
                                                                                     const char*),
                                                  const std::string& path) {
  struct guestfs_statns* s = function(g_, path.c_str());
  if (s == nullptr) {
    if (guestfs_last_errno(g_) == ENOENT) return std::nullopt;
    fail(call);
  }
  const GuestStat out = from_statns(*s);
  guestfs_free_statns(s);
  return out;
}

std::optional<GuestStat> GuestfsHandle::lstat(const std::string& path) {
  return stat_call("lstatns", guestfs_lstatns, path);
}

std::optional<GuestStat> GuestfsHandle::stat(const std::string& path) {
  return stat_call("statns", guestfs_statns, path);
}

std::vector<std::optional<GuestStat>> GuestfsHandle::lstat_many(
    const std::string& dir, const std::vector<std::string>& names) {
  std::vector<std::optional<GuestStat>> out;
  out.reserve(names.size());
  for (const auto& [begin, end] : batches(names)) {
    const std::vector<std::string> slice(names.begin() + static_cast<std::ptrdiff_t>(begin),
                                         names.begin() + static_cast<std::ptrdiff_t>(end));
    CStrings argv(slice);
    guestfs_statns_list* list = guestfs_lstatnslist(g_, dir.c_str(), argv.get());
    if (list == nullptr) fail("lstatnslist");
    for (uint32_t i = 0; i < list->len; ++i) {
      // The daemon marks a name it could not stat with inode -1.
      if (list->val[i].st_ino == -1) {
        out.emplace_back(std::nullopt);
      } else {
        out.emplace_back(from_statns(list->val[i]));
      }
    }
    guestfs_free_statns_list(list);
  }
  if (out.size() != names.size()) {
    throw GuestfsError("lstatnslist: " + dir + ": answered " + std::to_string(out.size()) +
                           " entries for " + std::to_string(names.size()) + " names",
                       0);
  }
  return out;
}

std::vector<std::string> GuestfsHandle::readlink_many(const std::string& dir,
                                                      const std::vector<std::string>& names) {
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const auto& [begin, end] : batches(names)) {
    const std::vector<std::string> slice(names.begin() + static_cast<std::ptrdiff_t>(begin),
                                         names.begin() + static_cast<std::ptrdiff_t>(end));
    CStrings argv(slice);
    StringList targets(guestfs_readlinklist(g_, dir.c_str(), argv.get()));
    if (targets.null()) fail("readlinklist");
    for (std::string& t : targets.strings()) out.push_back(std::move(t));
  }
  if (out.size() != names.size()) {
    throw GuestfsError("readlinklist: " + dir + ": answered " + std::to_string(out.size()) +
                           " targets for " + std::to_string(names.size()) + " names",
                       0);
  }
  return out;
}

std::string GuestfsHandle::read_prefix(const std::string& path, uint64_t max_bytes,
                                       bool& truncated) {
  std::string out;
  const uint64_t want = max_bytes + 1;  // one byte more tells whether there was more
  while (out.size() < want) {
    const uint64_t count = std::min<uint64_t>(kReadChunk, want - out.size());
    size_t got = 0;
    char* chunk = guestfs_pread(g_, path.c_str(), static_cast<int>(count),
                                static_cast<int64_t>(out.size()), &got);
    if (chunk == nullptr) fail("pread");
    std::unique_ptr<char, FreeDeleter> owned(chunk);
    if (got == 0) break;
    out.append(chunk, got);
  }
  truncated = out.size() > max_bytes;
  if (truncated) out.resize(max_bytes);
  return out;
}

std::string GuestfsHandle::sha256(const std::string& path) {
  return take_string("checksum", guestfs_checksum(g_, "sha256", path.c_str()));
}

void GuestfsHandle::find0(const std::string& dir,
                          const std::function<void(std::string_view)>& on_name) {
  stream(
      "find0", '\0', [&](const char* file) { return guestfs_find0(g_, dir.c_str(), file); },
      on_name);
}

void GuestfsHandle::checksums_sha256(const std::string& dir,
                                     const std::function<void(std::string_view)>& on_line) {
  stream(
      "checksums_out", '\n',
      [&](const char* file) { return guestfs_checksums_out(g_, "sha256", dir.c_str(), file); },
      on_line);
}

// libguestfs writes a call's output to a named local file; /dev/fd/N of a pipe lets a reader
// thread split it into records as it arrives, so nothing is held whole or written to disk.
void GuestfsHandle::stream(const char* call, char separator,
                           const std::function<int(const char* local_file)>& run,
                           const std::function<void(std::string_view)>& on_record) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    throw GuestfsError(std::string(call) + ": pipe: " + std::strerror(errno), errno);
  }
  base::UniqueFd read_end(fds[0]);
  base::UniqueFd write_end(fds[1]);
  std::exception_ptr reader_error;
  std::thread reader([&] {
    std::string record;
    bool overlong = false;
    char buffer[65536];
    for (;;) {
      const ssize_t n = ::read(read_end.get(), buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buffer[i] != separator) {
          if (record.size() < kMaxRecord) {
            record.push_back(buffer[i]);
          } else {
            overlong = true;
          }
          continue;
        }
        // Keep draining after a failure so that libguestfs never blocks on a full pipe.
        if (!overlong && !record.empty() && !reader_error) {
          try {
            on_record(record);
          } catch (...) {
            reader_error = std::current_exception();
          }
        }
        record.clear();
        overlong = false;
      }
    }
    if (!overlong && !record.empty() && !reader_error) {
      try {
        on_record(record);
      } catch (...) {
        reader_error = std::current_exception();
      }
    }
  });
  const std::string local_file = "/dev/fd/" + std::to_string(write_end.get());
  const int r = run(local_file.c_str());
  write_end.reset();  // libguestfs has closed its own descriptor: the reader sees the end
  reader.join();
  if (r == -1) fail(call);
  if (reader_error) std::rethrow_exception(reader_error);
}

void GuestfsHandle::shutdown() {
  if (guestfs_shutdown(g_) == -1) fail("shutdown");
}

}  // namespace palisade::hypervisor::inspect
