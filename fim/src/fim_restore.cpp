// Putting a protected file's approved copy back.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "file_stat.h"
#include "fim_store.h"
#include "palisade/base/content_hasher.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/unique_fd.h"
#include "palisade/fim/fim.h"
#include "tree_walker.h"

namespace palisade::fim {
namespace {

constexpr uint64_t kCopyBuffer = 256 << 10;

[[noreturn]] void throw_unopenable(const std::string& path, const std::string& walked, int parent,
                                   const std::string& name) {
  const int error = errno;
  struct stat st {};
  if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
    throw std::runtime_error(path + ": refused: " + walked + " is a symlink");
  }
  throw std::runtime_error(path + ": cannot open " + walked + ": " + base::errno_text(error));
}

// Opens each directory from "/" down to the parent of path without following a symlink: a
// directory on the way that was swapped for a link cannot redirect the write elsewhere.
base::UniqueFd open_parent_without_symlinks(const std::string& path) {
  base::UniqueFd dir(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) throw std::runtime_error("/: cannot open: " + base::errno_text(errno));
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::string walked;
  for (const auto& part : parent.relative_path()) {
    const std::string name = part.string();
    walked += "/" + name;
    base::UniqueFd next(
        openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next) throw_unopenable(path, walked, dir.get(), name);
    dir = std::move(next);
  }
  return dir;
}

// What is at the path now, hashed if it is a regular file, for the report.
std::optional<FileRecord> describe_current(int dir, const std::string& name,
                                           const std::string& path) {
  struct stat st {};
  if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw std::runtime_error(path + ": lstat: " + base::errno_text(errno));
  }
  if (S_ISDIR(st.st_mode)) throw std::runtime_error(path + ": is a directory; not replaced");
  FileRecord current = record_of(path, st);
  if (S_ISLNK(st.st_mode)) {
    std::string target(4096, '\0');
    const ssize_t n = readlinkat(dir, name.c_str(), target.data(), target.size());
    if (n >= 0) current.link_target.assign(target.data(), static_cast<size_t>(n));
  } else if (S_ISREG(st.st_mode)) {
    base::UniqueFd fd(openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    base::Digest digest;
    if (fd && base::ContentHasher(kCopyBuffer).hash(fd.get(), true, -1, digest).empty()) {
      current.sha256 = digest.sha256;
      current.fast_hash = digest.fast_hash;
    }
  }
  return current;
}

// The temporary file, removed unless it was renamed into place.
class TempFile {
 public:
  TempFile(int dir, std::string name) : dir_(dir), name_(std::move(name)) {}
  ~TempFile() {
    if (!name_.empty()) unlinkat(dir_, name_.c_str(), 0);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  void renamed() { name_.clear(); }

 private:
  int dir_;
  std::string name_;
};

}  // namespace

RestoreResult restore_protected(FimStore& store, const std::string& path_in) {
  const std::string path = normal_path(path_in);
  FimStore::Impl& impl = store.impl();
  const std::optional<FileRecord> approved = impl.find(path);
  if (!approved) throw std::runtime_error(path + ": not in the baseline");
  if (approved->type != FileType::kFile || !approved->is_protected) {
    throw std::runtime_error(path + ": not protected: no approved copy is kept");
  }
  const std::string copy_path = impl.content_path(approved->sha256);
  base::UniqueFd source(open(copy_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!source) {
    throw std::runtime_error(path + ": the approved copy " + copy_path +
                             " cannot be opened: " + base::errno_text(errno));
  }
  const base::UniqueFd dir = open_parent_without_symlinks(path);
  const std::string name = std::filesystem::path(path).filename().string();
  RestoreResult result;
  result.replaced = describe_current(dir.get(), name, path);

  const std::string temp_name =
      ".palisade-restore-" + std::to_string(getpid()) + "-" +
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  base::UniqueFd out(openat(dir.get(), temp_name.c_str(),
                            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out)
    throw std::runtime_error(path + ": cannot create a temporary file: " + base::errno_text(errno));
  TempFile temp(dir.get(), temp_name);
  base::Digest digest;
  if (std::string failure =
          base::ContentHasher(kCopyBuffer).hash(source.get(), true, out.get(), digest);
      !failure.empty()) {
    throw std::runtime_error(path + ": cannot copy the approved content: " + failure);
  }
  if (digest.sha256 != approved->sha256) {
    throw std::runtime_error(path + ": the approved copy " + copy_path +
                             " does not match its hash (it reads as " + digest.sha256 +
                             "); not restored");
  }
  // Owner before mode: chown clears the setuid and setgid bits the mode may need.
  const struct timespec times[2] = {{0, UTIME_OMIT},
                                    {static_cast<time_t>(approved->mtime_ns / 1'000'000'000),
                                     static_cast<long>(approved->mtime_ns % 1'000'000'000)}};
  if (fchown(out.get(), approved->uid, approved->gid) != 0 ||
      fchmod(out.get(), approved->mode) != 0 || futimens(out.get(), times) != 0 ||
      fsync(out.get()) != 0) {
    throw std::runtime_error(
        path + ": cannot set the approved owner, mode or time: " + base::errno_text(errno));
  }
  // rename() replaces whatever is at the path, a symlink included, without following it.
  if (renameat(dir.get(), temp_name.c_str(), dir.get(), name.c_str()) != 0) {
    throw std::runtime_error(path + ": cannot put the file in place: " + base::errno_text(errno));
  }
  temp.renamed();
  fsync(dir.get());  // the rename itself must survive a crash

  struct stat st {};
  if (fstat(out.get(), &st) != 0) {
    throw std::runtime_error(path + ": fstat: " + base::errno_text(errno));
  }
  result.restored = record_of(path, st);
  result.restored.sha256 = digest.sha256;
  result.restored.fast_hash = digest.fast_hash;
  result.restored.is_protected = true;
  // The baseline follows the new inode and ctime, so confirm() stays cheap for this path.
  impl.put(result.restored);
  return result;
}

}  // namespace palisade::fim
