// `palisade fim`: file-integrity baseline and the operator's commands on it (check, approve,
// restore). Changes go to stdout, one per line (text or JSON); errors and summaries to stderr.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "palisade/fim/fim.h"

namespace palisade::cli {
namespace {

using nlohmann::json;

// Exit codes of `palisade fim check` (and the others: 0 done, 2 failed).
constexpr int kUnchanged = 0;
constexpr int kChanged = 1;
constexpr int kFailed = 2;

struct FimFlags {
  fim::FimStoreOptions store;
  std::vector<std::string> paths;
  std::vector<std::string> excludes;
  std::vector<std::string> protect;
  bool one_filesystem = false;
  unsigned threads = 0;
  bool json = false;
  bool all = false;
};

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void print_errors(const std::vector<fim::FimError>& errors, uint64_t count, bool as_json) {
  for (const auto& e : errors) {
    if (as_json) {
      std::cerr << dump({{"error", e.reason}, {"path", e.path}}) << '\n';
    } else {
      std::cerr << "error: " << e.path << ": " << e.reason << '\n';
    }
  }
  if (count > errors.size()) {
    std::cerr << "... and " << (count - errors.size()) << " more errors\n";
  }
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    unit++;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", value, units[unit]);
  return text;
}

// The scope the stored baseline was built with, with this run's limits.
fim::BaselineOptions stored_scope(fim::FimStore& store, const FimFlags& f) {
  fim::BaselineOptions options = store.baseline_options();
  options.threads = f.threads;
  return options;
}

int baseline_command(const FimFlags& f) {
  fim::BaselineOptions options;
  options.roots = f.paths;
  options.excludes = f.excludes;
  options.protect = f.protect;
  options.one_filesystem = f.one_filesystem;
  options.threads = f.threads;
  fim::FimStore store(f.store);
  const fim::BaselineReport r = fim::build_baseline(options, store);
  print_errors(r.errors, r.error_count, f.json);
  if (f.json) {
    std::cout << dump({{"files", r.files},
                       {"bytes", r.bytes},
                       {"protected_files", r.protected_files},
                       {"duration_ms", r.duration_ms},
                       {"files_per_second", r.files_per_second},
                       {"error_count", r.error_count},
                       {"db", f.store.db_path}})
              << '\n';
  } else {
    std::printf("baseline: %llu files, %s (%llu bytes) in %.2f s, %.0f files/s, %llu errors\n",
                static_cast<unsigned long long>(r.files), human_bytes(r.bytes).c_str(),
                static_cast<unsigned long long>(r.bytes), static_cast<double>(r.duration_ms) / 1000,
                r.files_per_second, static_cast<unsigned long long>(r.error_count));
    std::printf("stored in %s; %llu protected files (approved copies in %s)\n",
                f.store.db_path.c_str(), static_cast<unsigned long long>(r.protected_files),
                f.store.content_dir.c_str());
  }
  return kUnchanged;
}

int check_command(const FimFlags& f) {
  fim::FimStore store(f.store);
  const fim::CheckReport r = fim::check(store, stored_scope(store, f));
  for (const auto& change : r.changes) {
    std::cout << (f.json ? fim::to_json(change) : fim::describe(change)) << '\n';
  }
  print_errors(r.errors, r.error_count, f.json);
  std::cerr << "checked " << r.files << " entries (" << human_bytes(r.bytes) << " read) in "
            << static_cast<double>(r.duration_ms) / 1000 << " s: " << r.changes.size()
            << " changes, " << r.error_count << " errors\n";
  // A change is the news; errors alone mean the check could not vouch for everything.
  if (!r.changes.empty()) return kChanged;
  return r.error_count == 0 ? kUnchanged : kFailed;
}

int approve_command(const FimFlags& f) {
  if (f.all == !f.paths.empty()) {
    std::cerr << "palisade fim approve: give paths or --all (not both)\n";
    return kFailed;
  }
  fim::FimStore store(f.store);
  const fim::BaselineOptions options = stored_scope(store, f);
  const fim::ApproveReport r =
      f.all ? fim::approve_all(store, options) : fim::approve(store, options, f.paths);
  for (const auto& change : r.changes) {
    std::cout << (f.json ? fim::to_json(change) : "approved: " + fim::describe(change)) << '\n';
  }
  print_errors(r.errors, r.error_count, f.json);
  std::cerr << "approved " << r.added << " added, " << r.removed << " removed, " << r.modified
            << " modified\n";
  return r.error_count == 0 ? kUnchanged : kFailed;
}

int restore_command(const FimFlags& f) {
  fim::FimStore store(f.store);
  const fim::RestoreResult r = fim::restore_protected(store, f.paths.at(0));
  if (f.json) {
    std::cout << "{\"restored\":" << fim::to_json(r.restored)
              << ",\"replaced\":" << (r.replaced ? fim::to_json(*r.replaced) : "null") << "}\n";
    return kUnchanged;
  }
  const fim::FileRecord& now = r.restored;
  std::printf("restored %s: sha256 %s, mode %04o, owner %u:%u\n", now.path.c_str(),
              now.sha256.c_str(), now.mode, now.uid, now.gid);
  if (!r.replaced) {
    std::cout << "replaced: nothing (the path was empty)\n";
    return kUnchanged;
  }
  const fim::FileRecord& old = *r.replaced;
  std::printf("replaced: %s, mode %04o, owner %u:%u", fim::to_string(old.type), old.mode, old.uid,
              old.gid);
  if (!old.sha256.empty()) std::cout << ", sha256 " << old.sha256;
  if (!old.link_target.empty()) std::cout << ", -> " << old.link_target;
  std::cout << '\n';
  return kUnchanged;
}

// Each command reports its own failures by exit code; exceptions carry the path and reason.
int guarded(int (*command)(const FimFlags&), const FimFlags& f) {
  try {
    return command(f);
  } catch (const std::exception& e) {
    std::cerr << "palisade fim: " << e.what() << '\n';
    return kFailed;
  }
}

void add_store_options(CLI::App* sub, FimFlags& f) {
  sub->add_option("--db", f.store.db_path, "Baseline database (SQLite)");
  sub->add_option("--content-dir", f.store.content_dir, "Approved copies of protected files");
  sub->add_option("--threads", f.threads, "Hashing threads (default: one per CPU)");
  sub->add_flag("--json", f.json, "JSON output");
}

}  // namespace

void add_fim_command(CLI::App& app, int& exit_code) {
  auto* fim = app.add_subcommand(
      "fim", "File integrity: baseline the watched trees, check, approve, restore (docs/fim.md)");
  fim->require_subcommand(1);
  static FimFlags flags;

  auto* baseline = fim->add_subcommand("baseline", "Record what the trees hold now");
  baseline->add_option("paths", flags.paths, "Roots to walk")->required();
  baseline->add_option("--exclude", flags.excludes,
                       "Glob not to record (with '/': the path, else the name); repeatable");
  baseline->add_option("--protect", flags.protect,
                       "Glob or path whose approved content is kept for restore; repeatable");
  baseline->add_flag("--one-file-system", flags.one_filesystem,
                     "Do not descend into other filesystems");
  add_store_options(baseline, flags);
  baseline->callback([&] { exit_code = guarded(baseline_command, flags); });

  auto* check = fim->add_subcommand(
      "check",
      "Compare the filesystem with the baseline (exit 0: unchanged, 1: changed, 2: error)");
  add_store_options(check, flags);
  check->callback([&] { exit_code = guarded(check_command, flags); });

  auto* approve =
      fim->add_subcommand("approve", "Make the current state the baseline for these paths");
  approve->add_option("paths", flags.paths, "Paths (and what is under them)");
  approve->add_flag("--all", flags.all, "Everything under the baseline's roots");
  add_store_options(approve, flags);
  approve->callback([&] { exit_code = guarded(approve_command, flags); });

  auto* restore =
      fim->add_subcommand("restore", "Put a protected file's approved copy back in place");
  restore->add_option("path", flags.paths, "The protected file")->required()->expected(1);
  add_store_options(restore, flags);
  restore->callback([&] { exit_code = guarded(restore_command, flags); });
}

}  // namespace palisade::cli
