// The operations on a baseline: build it, check against it, confirm one path, approve changes.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <stdexcept>

#include "examiner.h"
#include "file_stat.h"
#include "fim_store.h"
#include "palisade/base/content_hasher.h"
#include "palisade/base/errno_text.h"
#include "palisade/fim/fim.h"
#include "tree_walker.h"

namespace palisade::fim {
namespace {

// confirm() reads one file per event: a small buffer, allocated per call.
constexpr uint64_t kConfirmBuffer = 64 << 10;

uint64_t elapsed_ms(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void note_error(std::vector<FimError>& errors, uint64_t& count, FimError&& error, size_t limit) {
  count++;
  if (errors.size() < limit) errors.push_back(std::move(error));
}

void sort_changes(std::vector<FileChange>& changes) {
  std::sort(changes.begin(), changes.end(),
            [](const FileChange& a, const FileChange& b) { return a.path < b.path; });
}

// Walks `roots` in approve mode and makes what it finds the baseline, in one transaction.
ApproveReport approve_under(FimStore& store, const BaselineOptions& options,
                            const std::vector<std::string>& roots) {
  FimStore::Impl& impl = store.impl();
  const Scan scan(ScanMode::kApprove, options, roots, impl);
  ApproveReport report;
  std::vector<FileRecord> restamped;
  run_scan(scan, [&](Outcome&& out) {
    if (out.error)
      note_error(report.errors, report.error_count, std::move(*out.error), options.max_errors);
    if (out.change) report.changes.push_back(std::move(*out.change));
    if (out.record) restamped.push_back(std::move(*out.record));
  });
  sort_changes(report.changes);
  FimStore::Impl::Transaction transaction(impl.db);
  for (const FileChange& change : report.changes) {
    switch (change.kind) {
      case ChangeKind::kAdded:
        report.added++;
        impl.put(*change.after);
        break;
      case ChangeKind::kModified:
        report.modified++;
        impl.put(*change.after);
        break;
      case ChangeKind::kRemoved:
        report.removed++;
        impl.erase(change.path);
        break;
    }
  }
  for (const FileRecord& record : restamped) impl.put(record);
  impl.add_approval(roots, report);
  transaction.commit();
  impl.collect_garbage();
  return report;
}

}  // namespace

BaselineReport build_baseline(const BaselineOptions& options, FimStore& store) {
  const auto start = std::chrono::steady_clock::now();
  BaselineOptions scope = options;
  scope.roots = normal_roots(options.roots);
  scope.excludes = normal_patterns(options.excludes);
  scope.protect = normal_patterns(options.protect);
  if (scope.roots.empty()) throw std::invalid_argument("a baseline needs at least one root");
  for (const auto& root : scope.roots) {
    struct stat st {};
    if (lstat(root.c_str(), &st) != 0) {
      throw std::runtime_error(root + ": " + base::errno_text(errno));
    }
  }
  FimStore::Impl& impl = store.impl();
  const Scan scan(ScanMode::kBaseline, scope, scope.roots, impl);
  BaselineReport report;
  // The new baseline replaces the old one whole, or not at all.
  FimStore::Impl::Transaction transaction(impl.db);
  impl.clear();
  run_scan(scan, [&](Outcome&& out) {
    report.bytes += out.bytes;
    if (out.error) {
      note_error(report.errors, report.error_count, std::move(*out.error), options.max_errors);
    }
    if (out.record) {
      impl.put(*out.record);
      report.files++;
      report.protected_files += out.record->is_protected ? 1 : 0;
    }
  });
  report.duration_ms = elapsed_ms(start);
  impl.add_run({0, wall_ms(), scope.roots, report.files, report.bytes, report.duration_ms}, scope);
  transaction.commit();
  impl.collect_garbage();
  report.duration_ms = elapsed_ms(start);
  report.files_per_second = static_cast<double>(report.files) * 1000.0 /
                            static_cast<double>(std::max<uint64_t>(1, report.duration_ms));
  return report;
}

CheckReport check(FimStore& store, const BaselineOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const Scan scan(ScanMode::kCheck, options, normal_roots(options.roots), store.impl());
  CheckReport report;
  run_scan(scan, [&](Outcome&& out) {
    report.bytes += out.bytes;
    if (out.walked) report.files++;
    if (out.error) {
      note_error(report.errors, report.error_count, std::move(*out.error), options.max_errors);
    }
    if (out.change) report.changes.push_back(std::move(*out.change));
  });
  sort_changes(report.changes);
  report.duration_ms = elapsed_ms(start);
  return report;
}

std::optional<FileChange> confirm(FimStore& store, const std::string& path_in) {
  BaselineOptions options = store.baseline_options();
  options.max_file_bytes = kConfirmBuffer;
  const std::string path = normal_path(path_in);
  FimStore::Impl& impl = store.impl();
  std::optional<FileRecord> before = impl.find(path);
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) {
      throw std::runtime_error(path + ": lstat: " + base::errno_text(errno));
    }
    if (!before) return std::nullopt;
    return FileChange{path, ChangeKind::kRemoved, 0, std::move(before), std::nullopt};
  }
  // Mode, owner, link target and content cannot change without a new ctime or inode: an
  // untouched entry is unchanged without reading it.
  if (before && !touched(*before, record_of(path, st))) return std::nullopt;
  const Scan scan(ScanMode::kCheck, options, normal_roots(options.roots), impl);
  if (!before && !TreeWalker(scan.roots, scan.excludes, options.one_filesystem).covers(path)) {
    return std::nullopt;
  }
  Examiner examiner(scan);
  Outcome out = examiner.examine(WorkItem{{path, st}, std::move(before), false});
  if (out.error) throw std::runtime_error(path + ": " + out.error->reason);
  return std::move(out.change);
}

ApproveReport approve(FimStore& store, const BaselineOptions& options,
                      const std::vector<std::string>& paths) {
  if (paths.empty()) throw std::invalid_argument("approve: no paths given (approve_all for all)");
  const std::vector<std::string> roots = normal_roots(options.roots);
  const PathMatcher excludes(options.excludes);
  const TreeWalker baseline(roots, excludes, options.one_filesystem);
  const std::vector<std::string> scope = normal_roots(paths);
  for (const auto& path : scope) {
    if (!baseline.covers(path)) {
      throw std::runtime_error(path +
                               ": not covered by the baseline (outside its roots, or excluded)");
    }
  }
  return approve_under(store, options, scope);
}

ApproveReport approve_all(FimStore& store, const BaselineOptions& options) {
  return approve_under(store, options, normal_roots(options.roots));
}

}  // namespace palisade::fim
