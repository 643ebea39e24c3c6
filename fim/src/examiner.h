// What the baseline, check, approve and confirm operations share: one entry examined against its
// baseline record (hashing only what needs it), and the pipeline that examines a whole tree with
// one walker thread and N hashing workers joined by bounded queues.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "file_stat.h"
#include "fim_store.h"
#include "palisade/base/content_hasher.h"
#include "palisade/fim/fim.h"
#include "tree_walker.h"

namespace palisade::fim {

enum class ScanMode {
  kBaseline,  // record everything, hash everything, copy protected content
  kCheck,     // compare with the baseline
  kApprove,   // compare, copy protected content that may have changed, report refreshed stamps
};

// What one scan covers and how; shared read-only by all its threads.
struct Scan {
  Scan(ScanMode scan_mode, const BaselineOptions& scan_options, std::vector<std::string> walk_roots,
       FimStore::Impl& scan_store)
      : mode(scan_mode),
        options(scan_options),
        roots(std::move(walk_roots)),
        excludes(scan_options.excludes),
        protect(scan_options.protect),
        store(scan_store) {}

  ScanMode mode;
  const BaselineOptions& options;
  std::vector<std::string> roots;  // what to walk: the baseline's roots, or the paths approved
  PathMatcher excludes;
  PathMatcher protect;
  FimStore::Impl& store;
};

struct WorkItem {
  WalkEntry entry;
  std::optional<FileRecord> before;  // check and approve: the baseline record
  bool removed = false;              // a baseline record whose path the walk did not find
};

struct Outcome {
  bool walked = false;               // an entry found on disk (not a removal)
  std::optional<FileRecord> record;  // baseline: the record; approve: the same entry restamped
  std::optional<FileChange> change;
  std::optional<FimError> error;
  uint64_t bytes = 0;  // content bytes read
};

// One per worker thread: owns the read buffer and the hash states.
class Examiner {
 public:
  explicit Examiner(const Scan& scan) : scan_(scan), hasher_(scan.options.max_file_bytes) {}
  Outcome examine(WorkItem&& item);

 private:
  // Reads the file at now.path and fills now's hashes and stamps from what was read. Empty on
  // success, else why not.
  std::string read_content(FileRecord& now, bool want_sha256, bool copy, uint64_t& bytes);
  std::string hash_file(FileRecord& now, bool want_sha256, bool copy, uint64_t& bytes);

  const Scan& scan_;
  base::ContentHasher hasher_;
};

// Walks scan.roots, examines every entry on `threads` workers and hands each outcome to consume
// on the calling thread. In check and approve mode, the walker thread uses the store (lookups,
// seen marks, then the removed entries); in baseline mode it does not, and consume may.
void run_scan(const Scan& scan, const std::function<void(Outcome&&)>& consume);

// What differs between a baseline record and the entry now (Changed bits).
uint32_t differences(const FileRecord& before, const FileRecord& now);

}  // namespace palisade::fim
