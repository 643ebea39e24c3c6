// File-integrity monitoring: a baseline of what the watched trees hold (type, mode, owner, size,
// times, inode, symlink target, content hashes), kept in SQLite, and the operations on it: build
// it, check the filesystem against it, confirm one path (the agent's real-time path: an eBPF file
// event names a watched file and confirm() says whether it really changed), approve changes and
// put protected files back from their approved copies.
//
// Content is hashed twice in one read: XXH3-64 (fast; what comparisons look at first) and SHA-256
// (what reports show, and what decides whenever a file was touched, because a fast hash is not
// collision resistant). Symlinks are never followed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace palisade::fim {

enum class FileType : uint8_t { kFile, kDirectory, kSymlink, kOther };

struct FileRecord {
  std::string path;  // absolute, lexically normal, never resolved through symlinks
  FileType type = FileType::kOther;
  uint32_t mode = 0;  // permission bits with setuid, setgid and sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t inode = 0;
  std::string sha256;         // regular files: lowercase hex
  std::string fast_hash;      // regular files: XXH3-64 of the content, 16 hex digits
  std::string link_target;    // symlinks: what the link says, as written
  bool is_protected = false;  // an approved copy of this content is in the content store

  bool operator==(const FileRecord&) const = default;
};

struct BaselineOptions {
  std::vector<std::string> roots;  // files or directories; made absolute, nested roots merged
  // Globs: with a '/', against the absolute path ('*' crosses '/'); without, against the name.
  // A relative path ("etc/shadow") is made absolute. An excluded directory is not entered.
  std::vector<std::string> excludes;
  // Globs or paths, as above, of regular files whose approved content is kept (in the content
  // store, for restore_protected); a directory protects what is under it.
  std::vector<std::string> protect;
  bool one_filesystem = false;  // do not descend into other filesystems below a root
  unsigned threads = 0;         // hashing workers; 0: one per CPU
  // The largest read into memory at once. Every file is hashed whatever its size: a larger one is
  // streamed through the same fixed buffer, so memory stays threads x max_file_bytes.
  uint64_t max_file_bytes = 1ULL << 20;
  size_t queue_capacity = 4096;  // paths waiting for a worker; the walker waits beyond it
  size_t max_errors = 1000;      // errors kept with their reason; all are counted
};

struct FimError {
  std::string path;
  std::string reason;
};

struct BaselineReport {
  uint64_t files = 0;            // records written (every entry: files, directories, links, others)
  uint64_t bytes = 0;            // content bytes hashed
  uint64_t protected_files = 0;  // regular files whose approved copy is kept
  uint64_t duration_ms = 0;
  double files_per_second = 0;
  std::vector<FimError> errors;  // the first max_errors
  uint64_t error_count = 0;
};

enum class ChangeKind : uint8_t { kAdded, kRemoved, kModified };

// What differs in a modified entry: a bit set.
enum Changed : uint32_t {
  kChangedContent = 1U << 0,
  kChangedMode = 1U << 1,
  kChangedOwner = 1U << 2,
  kChangedType = 1U << 3,
  kChangedTarget = 1U << 4,
};

struct FileChange {
  std::string path;
  ChangeKind kind = ChangeKind::kModified;
  uint32_t changed = 0;              // Changed bits; 0 for added and removed
  std::optional<FileRecord> before;  // the baseline record (absent when added)
  std::optional<FileRecord> after;   // the filesystem now (absent when removed)
};

struct CheckReport {
  std::vector<FileChange> changes;  // sorted by path
  uint64_t files = 0;               // entries examined
  uint64_t bytes = 0;               // content bytes hashed
  uint64_t duration_ms = 0;
  std::vector<FimError> errors;  // entries that could not be examined (not reported as changes)
  uint64_t error_count = 0;
};

struct ApproveReport {
  uint64_t added = 0;
  uint64_t removed = 0;
  uint64_t modified = 0;
  std::vector<FileChange> changes;  // what became the baseline
  std::vector<FimError> errors;
  uint64_t error_count = 0;
};

struct RestoreResult {
  FileRecord restored;                 // the file as it is now (the approved content, mode, owner)
  std::optional<FileRecord> replaced;  // what was at the path before, when anything was
};

struct BaselineRun {
  int64_t id = 0;
  int64_t time_ms = 0;
  std::vector<std::string> roots;
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t duration_ms = 0;
};

struct FimStoreOptions {
  std::string db_path = "/var/lib/palisade/fim.db";
  std::string content_dir = "/var/lib/palisade/fim-content";  // approved copies, by sha256
};

// The baseline: records keyed by path and the history of baseline runs in SQLite (WAL), and the
// content store, a 0700 directory of approved copies (mode 0400) named by their sha256. Use from
// one thread at a time; the operations below run their own threads inside.
class FimStore {
 public:
  explicit FimStore(FimStoreOptions options = {});
  ~FimStore();
  FimStore(const FimStore&) = delete;
  FimStore& operator=(const FimStore&) = delete;

  const FimStoreOptions& options() const;
  std::optional<FileRecord> find(const std::string& path);
  uint64_t record_count();
  std::optional<BaselineRun> last_run();
  // What the current baseline covers (roots, excludes, protect, one_filesystem), as given to
  // build_baseline; the limits (threads, buffer, queue) are defaults. Throws when there is none.
  BaselineOptions baseline_options();
  // Where the approved copy of content with this sha256 is kept.
  std::string content_path(const std::string& sha256) const;

  struct Impl;
  Impl& impl() { return *impl_; }  // for the library's own operations

 private:
  std::unique_ptr<Impl> impl_;
};

// Walks the roots (one thread) and hashes with options.threads workers fed through a bounded
// queue; replaces the whole baseline in one transaction. Protected files are copied into the
// content store in the same read that hashes them. Throws when a root does not exist or the
// store cannot be written; entries that cannot be read are reported in errors.
BaselineReport build_baseline(const BaselineOptions& options, FimStore& store);

// Compares the filesystem under options.roots with the baseline, in parallel like the baseline.
// Regular files are read again: XXH3 first; SHA-256 as well when the file's size, times or inode
// changed, or when the fast hash differs (for the report).
CheckReport check(FimStore& store, const BaselineOptions& options);

// Re-checks one path against its baseline record, cheaply: lstat first; content is read only when
// size, mtime, ctime or inode differ from the record. A path without a record is reported as
// added when it lies under the baseline's roots and is not excluded. Throws when it cannot tell.
std::optional<FileChange> confirm(FimStore& store, const std::string& path);

// Makes the current state the baseline for these paths and everything under them (they must lie
// under the baseline's roots): added entries are inserted, removed ones deleted, modified ones
// updated, protected content copied again. Throws on an empty list.
ApproveReport approve(FimStore& store, const BaselineOptions& options,
                      const std::vector<std::string>& paths);
// The same for everything under the baseline's roots.
ApproveReport approve_all(FimStore& store, const BaselineOptions& options);

// Puts the approved copy of a protected file back at its path with the approved mode, owner and
// mtime: written to a temporary file in the same directory, fsync'd and renamed over the path (a
// symlink there is replaced, never followed). Refuses when any directory on the way is a symlink,
// when the path holds a directory, or when the approved copy does not match its hash.
RestoreResult restore_protected(FimStore& store, const std::string& path);

const char* to_string(FileType type);
const char* to_string(ChangeKind kind);
std::vector<std::string> changed_names(uint32_t changed);  // "content", "mode", ...
// One line for people: "modified /etc/passwd content sha256 OLD -> NEW; mode 0644 -> 4755".
std::string describe(const FileChange& change);
// One JSON object (no newline): kind, path, changed, before, after.
std::string to_json(const FileChange& change);
// One JSON object: the record's fields (mode as octal text, hashes for files, target for links).
std::string to_json(const FileRecord& record);

}  // namespace palisade::fim
