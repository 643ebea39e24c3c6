#include "tree_walker.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>

#include "palisade/base/content_hasher.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/unique_fd.h"

namespace palisade::fim {
namespace {

std::string name_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return path;
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string child_of(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};

}  // namespace

std::vector<std::string> normal_patterns(const std::vector<std::string>& globs) {
  std::vector<std::string> out;
  for (const auto& glob : globs) {
    const bool relative_path =
        glob.find('/') != std::string::npos && glob[0] != '/' && glob.find_first_of("*?[") != 0;
    out.push_back(relative_path ? std::filesystem::absolute(glob).lexically_normal().string()
                                : glob);
  }
  return out;
}

bool PathMatcher::matches(const std::string& path) const {
  for (const auto& glob : globs_) {
    const bool by_path = glob.find('/') != std::string::npos;
    const std::string subject = by_path ? path : name_of(path);
    if (fnmatch(glob.c_str(), subject.c_str(), 0) == 0) return true;
  }
  return false;
}

bool PathMatcher::matches_or_under(const std::string& path) const {
  for (std::string p = path;; p = parent_of(p)) {
    if (matches(p)) return true;
    if (p == "/" || p.find('/') == std::string::npos) return false;
  }
}

std::string normal_path(const std::string& path) {
  std::string out = std::filesystem::absolute(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::vector<std::string> normal_roots(const std::vector<std::string>& roots) {
  std::vector<std::string> out;
  out.reserve(roots.size());
  for (const auto& root : roots) out.push_back(normal_path(root));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  std::vector<std::string> kept;
  for (const auto& root : out) {
    const bool nested = std::any_of(kept.begin(), kept.end(),
                                    [&](const std::string& k) { return is_under(root, k); });
    if (!nested) kept.push_back(root);
  }
  return kept;
}

bool is_under(const std::string& path, const std::string& dir) {
  if (dir == "/") return !path.empty() && path[0] == '/';
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

bool TreeWalker::covers(const std::string& path) const {
  const auto root = std::find_if(roots_.begin(), roots_.end(),
                                 [&](const std::string& r) { return is_under(path, r); });
  if (root == roots_.end()) return false;
  struct stat root_st {};
  if (one_filesystem_ && lstat(root->c_str(), &root_st) != 0) return false;
  // The walk reaches path only through real directories (never a symlink), none of them
  // excluded and, with one_filesystem, all on the root's filesystem. Directories that no longer
  // exist do not disqualify it: approving a removal names paths that are gone.
  for (std::string p = path;; p = parent_of(p)) {
    if (excludes_.matches(p)) return false;
    if (p != path) {
      struct stat st {};
      if (lstat(p.c_str(), &st) == 0 &&
          (!S_ISDIR(st.st_mode) || (one_filesystem_ && st.st_dev != root_st.st_dev))) {
        return false;
      }
    }
    if (p == *root) return true;
  }
}

void TreeWalker::walk(const Visit& visit, const Error& error) const {
  for (const auto& root : roots_) {
    if (!walk_root(root, visit, error)) return;
  }
}

bool TreeWalker::walk_root(const std::string& root, const Visit& visit, const Error& error) const {
  if (excludes_.matches(root)) return true;
  struct stat root_st {};
  if (lstat(root.c_str(), &root_st) != 0) {
    if (errno != ENOENT) error({root, "lstat: " + base::errno_text(errno)}, true);
    return true;
  }
  const bool root_is_dir = S_ISDIR(root_st.st_mode);
  if (!visit({root, root_st})) return false;
  if (!root_is_dir) return true;

  // Depth first with an explicit stack of directories still to read: at most one directory is
  // open at a time, whatever the depth.
  std::vector<std::string> pending = {root};
  while (!pending.empty()) {
    const std::string dir = std::move(pending.back());
    pending.pop_back();
    base::UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    std::unique_ptr<DIR, DirCloser> stream(fd ? fdopendir(fd.get()) : nullptr);
    if (!stream) {
      error({dir, "cannot read directory: " + base::errno_text(errno)}, true);
      continue;
    }
    fd.release();  // the stream owns it now
    const int dir_fd = dirfd(stream.get());
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = readdir(stream.get())) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    if (errno != 0) error({dir, "cannot list directory: " + base::errno_text(errno)}, true);
    std::sort(names.begin(), names.end());

    std::vector<std::string> subdirs;
    for (const auto& name : names) {
      std::string path = child_of(dir, name);
      if (excludes_.matches(path)) continue;
      struct stat st {};
      if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        // Gone between listing and stat: it will be seen (or missed) on the next pass.
        if (errno != ENOENT) error({path, "lstat: " + base::errno_text(errno)}, true);
        continue;
      }
      // A mount point is recorded (its owner and mode matter) but not entered.
      const bool enter = S_ISDIR(st.st_mode) && (!one_filesystem_ || st.st_dev == root_st.st_dev);
      if (!visit({path, st})) return false;
      if (enter) subdirs.push_back(std::move(path));
    }
    // Reversed onto the stack, so the walk continues in name order.
    pending.insert(pending.end(), std::make_move_iterator(subdirs.rbegin()),
                   std::make_move_iterator(subdirs.rend()));
  }
  return true;
}

}  // namespace palisade::fim
