#include "examiner.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <mutex>
#include <thread>

#include "palisade/base/bounded_queue.h"
#include "palisade/base/clock.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/unique_fd.h"

namespace palisade::fim {
namespace {

// A file written while it is read is read again, this many times at most.
constexpr int kReadAttempts = 3;
// Finished outcomes waiting for the consumer (the store writer or the caller).
constexpr size_t kResultCapacity = 1024;

bool same_stamps(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_size == b.st_size &&
         base::timespec_ns(a.st_mtim) == base::timespec_ns(b.st_mtim) &&
         base::timespec_ns(a.st_ctim) == base::timespec_ns(b.st_ctim);
}

int open_for_reading(const std::string& path) {
  // O_NOATIME keeps a scan from touching every file's atime; it needs ownership or CAP_FOWNER.
  // O_NONBLOCK: if the entry became a FIFO since the walk, open must not wait for a writer.
  constexpr int kFlags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  int fd = open(path.c_str(), kFlags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(path.c_str(), kFlags);
  return fd;
}

// A copy on its way into the content store: removed unless kept.
class PendingCopy {
 public:
  explicit PendingCopy(const FimStore::Impl& store) : store_(store) {
    fd_ = store_.open_content_temp(path_);
  }
  ~PendingCopy() {
    if (!kept_) unlink(path_.c_str());
  }
  PendingCopy(const PendingCopy&) = delete;
  PendingCopy& operator=(const PendingCopy&) = delete;
  int fd() const { return fd_.get(); }
  void keep(const std::string& sha256) {
    kept_ = true;  // keep_content renames or removes it, whatever happens
    store_.keep_content(path_, fd_.get(), sha256);
  }

 private:
  const FimStore::Impl& store_;
  std::string path_;
  base::UniqueFd fd_;
  bool kept_ = false;
};

std::string read_link(const std::string& path, std::string& target) {
  std::string buffer(256, '\0');
  for (;;) {
    const ssize_t n = readlink(path.c_str(), buffer.data(), buffer.size());
    if (n < 0) return "readlink: " + base::errno_text(errno);
    if (static_cast<size_t>(n) < buffer.size()) {
      target.assign(buffer.data(), static_cast<size_t>(n));
      return {};
    }
    buffer.resize(buffer.size() * 2);
  }
}

}  // namespace

uint32_t differences(const FileRecord& before, const FileRecord& now) {
  if (before.type != now.type) return kChangedType;
  uint32_t changed = 0;
  if (before.mode != now.mode) changed |= kChangedMode;
  if (before.uid != now.uid || before.gid != now.gid) changed |= kChangedOwner;
  if (before.type == FileType::kSymlink && before.link_target != now.link_target) {
    changed |= kChangedTarget;
  }
  // The fast hash first; SHA-256 whenever it was computed, because XXH3 can be made to collide.
  if (before.type == FileType::kFile &&
      (before.fast_hash != now.fast_hash || (!now.sha256.empty() && before.sha256 != now.sha256))) {
    changed |= kChangedContent;
  }
  return changed;
}

std::string Examiner::hash_file(FileRecord& now, bool want_sha256, bool copy, uint64_t& bytes) {
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    base::UniqueFd fd(open_for_reading(now.path));
    if (!fd) return "open: " + base::errno_text(errno);
    struct stat before {};
    if (fstat(fd.get(), &before) != 0) return "fstat: " + base::errno_text(errno);
    if (!S_ISREG(before.st_mode)) return "replaced by something else while being examined";
    std::optional<PendingCopy> pending;
    if (copy) pending.emplace(scan_.store);
    base::Digest digest;
    std::string failure = hasher_.hash(fd.get(), want_sha256, pending ? pending->fd() : -1, digest);
    if (!failure.empty()) return failure;
    bytes += digest.bytes;
    struct stat after {};
    if (fstat(fd.get(), &after) != 0) return "fstat: " + base::errno_text(errno);
    if (!same_stamps(before, after)) continue;  // written while read: the hash is of neither
    const bool is_protected = now.is_protected;
    now = record_of(now.path, after);  // the stamps of the content that was hashed
    now.is_protected = is_protected;
    now.fast_hash = std::move(digest.fast_hash);
    now.sha256 = std::move(digest.sha256);
    if (pending) pending->keep(now.sha256);
    return {};
  }
  return "kept changing while being read";
}

std::string Examiner::read_content(FileRecord& now, bool want_sha256, bool copy, uint64_t& bytes) {
  try {
    return hash_file(now, want_sha256, copy, bytes);
  } catch (const std::exception& e) {
    return e.what();  // the content store could not take a copy
  }
}

Outcome Examiner::examine(WorkItem&& item) {
  Outcome out;
  const std::string& path = item.entry.path;
  if (item.removed) {
    out.change = FileChange{path, ChangeKind::kRemoved, 0, std::move(item.before), std::nullopt};
    return out;
  }
  out.walked = true;
  FileRecord now = record_of(path, item.entry.st);
  now.is_protected = now.type == FileType::kFile && scan_.protect.matches_or_under(path);
  const std::optional<FileRecord>& before = item.before;
  const bool copy = now.is_protected && scan_.mode != ScanMode::kCheck;
  std::string failure;
  if (now.type == FileType::kSymlink) {
    failure = read_link(path, now.link_target);
  } else if (now.type != FileType::kFile) {
    // Directories and special files: no content to read.
  } else if (scan_.mode == ScanMode::kBaseline || !before || before->type != FileType::kFile ||
             touched(*before, now) || (copy && !before->is_protected)) {
    // New, possibly written since the baseline, or protected without a copy yet: both hashes
    // (and the copy) in one read.
    failure = read_content(now, true, copy, out.bytes);
  } else {
    // Untouched by any write the kernel saw: the fast hash alone, to catch offline edits.
    failure = read_content(now, false, false, out.bytes);
    if (failure.empty() && (now.fast_hash != before->fast_hash || touched(*before, now))) {
      failure = read_content(now, true, copy, out.bytes);
    }
  }
  if (!failure.empty()) {
    out.error = FimError{path, std::move(failure)};
    return out;
  }
  if (scan_.mode == ScanMode::kBaseline) {
    out.record = std::move(now);
    return out;
  }
  if (!before) {
    out.change = FileChange{path, ChangeKind::kAdded, 0, std::nullopt, std::move(now)};
    return out;
  }
  if (const uint32_t changed = differences(*before, now); changed != 0) {
    out.change = FileChange{path, ChangeKind::kModified, changed, before, std::move(now)};
  } else if (scan_.mode == ScanMode::kApprove &&
             (touched(*before, now) || before->is_protected != now.is_protected)) {
    out.record = std::move(now);  // same entry, new stamps: confirm() stays cheap for it
  }
  return out;
}

void run_scan(const Scan& scan, const std::function<void(Outcome&&)>& consume) {
  const unsigned threads = scan.options.threads != 0
                               ? scan.options.threads
                               : std::max(1U, std::thread::hardware_concurrency());
  base::BoundedQueue<WorkItem> work(scan.options.queue_capacity);
  base::BoundedQueue<Outcome> results(kResultCapacity);
  std::mutex failure_mutex;
  std::exception_ptr failure;
  auto fail = [&](std::exception_ptr e) {
    {
      std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::move(e);
    }
    work.cancel();
    results.cancel();
  };

  std::atomic<unsigned> running{threads};
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      try {
        Examiner examiner(scan);
        while (auto item = work.pop()) {
          const std::string path = item->entry.path;
          Outcome out;
          try {
            out = examiner.examine(std::move(*item));
          } catch (const std::exception& e) {
            out.error = FimError{path, e.what()};
          }
          if (results.push(std::move(out)) != base::PushResult::kQueued) break;
        }
      } catch (...) {
        fail(std::current_exception());
      }
      if (--running == 0) results.close();
    });
  }

  const bool compare = scan.mode != ScanMode::kBaseline;
  std::thread walker([&] {
    try {
      // One read transaction: lookups see one version of the baseline; the seen marks go to a
      // temporary table of this connection.
      if (compare) {
        scan.store.start_seen();
        base::exec_sql(scan.store.db, "BEGIN");
      }
      const TreeWalker tree(scan.roots, scan.excludes, scan.options.one_filesystem);
      tree.walk(
          [&](WalkEntry&& entry) {
            WorkItem item{std::move(entry), std::nullopt, false};
            if (compare) {
              item.before = scan.store.find(item.entry.path);
              scan.store.mark_seen(item.entry.path);
            }
            return work.push(std::move(item)) == base::PushResult::kQueued;
          },
          [&](FimError&& error, bool subtree) {
            // What is below an unreadable directory is unknown, not removed.
            if (compare && subtree) scan.store.mark_subtree_seen(error.path);
            Outcome out;
            out.error = std::move(error);
            results.push(std::move(out));
          });
      if (compare) {
        scan.store.for_each_unseen(scan.roots, [&](FileRecord&& record) {
          WorkItem item{{record.path, {}}, std::move(record), true};
          return work.push(std::move(item)) == base::PushResult::kQueued;
        });
        base::exec_sql(scan.store.db, "COMMIT");
      }
    } catch (...) {
      if (compare) sqlite3_exec(scan.store.db, "ROLLBACK", nullptr, nullptr, nullptr);
      fail(std::current_exception());
    }
    work.close();
  });

  try {
    while (auto out = results.pop()) consume(std::move(*out));
  } catch (...) {
    fail(std::current_exception());
  }
  walker.join();
  for (auto& worker : workers) worker.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace palisade::fim
