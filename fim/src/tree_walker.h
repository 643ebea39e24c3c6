// Finds what a baseline covers: roots walked depth first in name order, symlinks never followed,
// excluded entries neither reported nor entered, optionally one filesystem per root.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

#include "palisade/fim/fim.h"

namespace palisade::fim {

// Patterns as given on a command line: one that names a relative path ("etc/shadow", "t/*") is
// made absolute against the working directory; names ("*.log") and patterns that start with a
// wildcard ("*/cache") are kept as they are.
std::vector<std::string> normal_patterns(const std::vector<std::string>& globs);

// Globs in the style of rsync: a pattern with a '/' is matched against the absolute path (and
// '*' crosses '/'), one without against the entry's name.
class PathMatcher {
 public:
  explicit PathMatcher(const std::vector<std::string>& globs) : globs_(normal_patterns(globs)) {}
  bool matches(const std::string& path) const;
  // The path or any directory above it (a protected directory covers what is under it).
  bool matches_or_under(const std::string& path) const;

 private:
  std::vector<std::string> globs_;
};

// Absolute and lexically normal, without a trailing '/'; symlinks are not resolved.
std::string normal_path(const std::string& path);
// Normal, sorted, and a root inside another dropped (it would be walked twice).
std::vector<std::string> normal_roots(const std::vector<std::string>& roots);
// True when path is dir or lies below it.
bool is_under(const std::string& path, const std::string& dir);

struct WalkEntry {
  std::string path;
  struct stat st;
};

class TreeWalker {
 public:
  // visit: each entry, roots included; false stops the walk. error: an entry that could not be
  // examined; subtree is true when a directory could not be read, so what is below is unknown.
  using Visit = std::function<bool(WalkEntry&&)>;
  using Error = std::function<void(FimError&&, bool subtree)>;

  TreeWalker(std::vector<std::string> roots, const PathMatcher& excludes, bool one_filesystem)
      : roots_(std::move(roots)), excludes_(excludes), one_filesystem_(one_filesystem) {}

  // A root that does not exist is skipped silently: the caller decides whether that is an error.
  void walk(const Visit& visit, const Error& error) const;

  // Whether path would be walked: under a root and neither it nor a directory above it excluded.
  bool covers(const std::string& path) const;

 private:
  bool walk_root(const std::string& root, const Visit& visit, const Error& error) const;

  std::vector<std::string> roots_;
  const PathMatcher& excludes_;
  bool one_filesystem_;
};

}  // namespace palisade::fim
