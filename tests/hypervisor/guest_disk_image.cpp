#include "guest_disk_image.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "palisade/base/unique_fd.h"

extern char** environ;

namespace palisade::hypervisor::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSector = 512;
constexpr uint64_t kMiB = uint64_t{1024} * 1024;
constexpr uint64_t kFirstSector = 2048;  // the partition starts at 1 MiB

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// PATH first; mkfs.ext4 and sfdisk live in sbin, which a plain user's PATH may lack.
std::string find_program(const std::string& name) {
  std::string dirs = std::getenv("PATH") != nullptr ? std::getenv("PATH") : "";
  dirs += ":/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin";
  size_t begin = 0;
  while (begin <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', begin), dirs.size());
    const fs::path candidate = fs::path(dirs.substr(begin, end - begin)) / name;
    if (end > begin && access(candidate.c_str(), X_OK) == 0) return candidate.string();
    begin = end + 1;
  }
  throw std::runtime_error(name + ": not found (scripts/install-deps.sh installs it)");
}

void write_all(int fd, const char* data, size_t size, const std::string& what) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(errno_text(what));
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// Copies a filesystem image into the disk at an offset, leaving zero blocks as holes.
void copy_into(const fs::path& from, const fs::path& to, uint64_t offset) {
  base::UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  base::UniqueFd out(::open(to.c_str(), O_WRONLY | O_CLOEXEC));
  if (!in || !out)
    throw std::runtime_error(errno_text("open " + from.string() + "/" + to.string()));
  std::array<char, size_t{64} * 1024> block{};
  uint64_t position = 0;
  for (;;) {
    const ssize_t n = ::pread(in.get(), block.data(), block.size(), static_cast<off_t>(position));
    if (n < 0) throw std::runtime_error(errno_text("read " + from.string()));
    if (n == 0) break;
    const auto size = static_cast<size_t>(n);
    const bool zero = std::all_of(block.begin(), block.begin() + n, [](char c) { return c == 0; });
    if (!zero &&
        ::pwrite(out.get(), block.data(), size, static_cast<off_t>(offset + position)) != n) {
      throw std::runtime_error(errno_text("write " + to.string()));
    }
    position += size;
  }
}

void resize(const fs::path& path, uint64_t bytes) {
  base::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
    throw std::runtime_error(errno_text("create " + path.string()));
  }
}

}  // namespace

GuestRootfs::GuestRootfs(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms(0755), fs::perm_options::replace);
}

fs::path GuestRootfs::host_path(const std::string& guest_path) const {
  return dir_ / fs::path(guest_path).relative_path();
}

void GuestRootfs::mkdir(const std::string& path, mode_t mode, uid_t uid, gid_t gid) {
  const fs::path p = host_path(path);
  fs::create_directories(p);
  if (::chmod(p.c_str(), mode) != 0 || ::lchown(p.c_str(), uid, gid) != 0) {
    throw std::runtime_error(errno_text("mkdir " + p.string()));
  }
}

void GuestRootfs::write(const std::string& path, const std::string& content, mode_t mode, uid_t uid,
                        gid_t gid) {
  const fs::path p = host_path(path);
  fs::create_directories(p.parent_path());
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("write " + p.string());
  }
  // chmod after chown: changing the owner clears setuid and setgid.
  if (::lchown(p.c_str(), uid, gid) != 0 || ::chmod(p.c_str(), mode) != 0) {
    throw std::runtime_error(errno_text("chmod/chown " + p.string()));
  }
}

void GuestRootfs::append(const std::string& path, const std::string& content) {
  std::ofstream out(host_path(path), std::ios::binary | std::ios::app);
  out << content;
  if (!out) throw std::runtime_error("append " + host_path(path).string());
}

void GuestRootfs::symlink(const std::string& target, const std::string& path) {
  const fs::path p = host_path(path);
  fs::create_directories(p.parent_path());
  fs::create_symlink(target, p);
}

void run_program(const std::vector<std::string>& argv, const std::string& input) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  const std::string program = find_program(argv.at(0));
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int in[2];
  int out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    throw std::runtime_error(errno_text("pipe"));
  }
  base::UniqueFd in_read(in[0]), in_write(in[1]), out_read(out[0]), out_write(out[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDERR_FILENO);
  pid_t pid = 0;
  const int r = posix_spawn(&pid, program.c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (r != 0) throw std::runtime_error(program + ": cannot start: " + std::strerror(r));
  in_read.reset();
  out_write.reset();
  write_all(in_write.get(), input.data(), input.size(), program + " stdin");  // small inputs only
  in_write.reset();
  std::string output;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(out_read.get(), buffer, sizeof(buffer))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) output.append(buffer, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string command;
    for (const std::string& a : argv) command += (command.empty() ? "" : " ") + a;
    throw std::runtime_error(command + " failed (status " + std::to_string(status) +
                             "): " + output);
  }
}

void build_disk_image(const fs::path& rootfs, const fs::path& image,
                      const DiskImageOptions& options) {
  const uint64_t sectors = options.size_mib * kMiB / kSector - kFirstSector;
  const fs::path raw = options.format == "raw" ? image : fs::path(image.string() + ".raw");
  const fs::path part = image.string() + ".part";
  resize(raw, options.size_mib * kMiB);
  run_program({"sfdisk", "-q", raw.string()}, "label: dos\nstart=" + std::to_string(kFirstSector) +
                                                  ", size=" + std::to_string(sectors) +
                                                  ", type=83\n");
  resize(part, sectors * kSector);
  run_program({"mkfs.ext4", "-q", "-F", "-L", options.label, "-U", options.filesystem_uuid, "-d",
               rootfs.string(), part.string()});
  copy_into(part, raw, kFirstSector * kSector);
  fs::remove(part);
  if (options.format != "raw") {
    run_program(
        {"qemu-img", "convert", "-f", "raw", "-O", options.format, raw.string(), image.string()});
    fs::remove(raw);
  }
}

}  // namespace palisade::hypervisor::testing
