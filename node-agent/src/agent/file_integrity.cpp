#include "agent/file_integrity.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "palisade/agent/respond.h"
#include "palisade/ocsf/remediation.h"

namespace palisade::agent {

namespace fs = std::filesystem;

FileIntegrity::FileIntegrity(FileIntegrityConfig config) : config_(std::move(config)) {}

fim::FimStore& FileIntegrity::protect_store() {
  if (!protect_store_) {
    std::error_code ec;
    fs::create_directories(fs::path(config_.protect_database).parent_path(), ec);
    protect_store_ = std::make_unique<fim::FimStore>(
        fim::FimStoreOptions{config_.protect_database, config_.content_directory});
  }
  return *protect_store_;
}

void FileIntegrity::protect(const policies::PolicySet& set) {
  std::set<std::string> wanted;
  for (const auto& policy : set.workload_policies()) {
    if (policy->files_mode != policies::Mode::kEnforce) continue;
    for (const auto& spec : policy->files.protect) {
      // A glob has no single approved file: it is reported, not restored.
      if (!spec.is_glob && fs::exists(spec.text)) wanted.insert(spec.text);
    }
  }
  std::vector<std::string> paths(wanted.begin(), wanted.end());
  if (paths == protected_paths_) return;
  protected_paths_ = paths;
  if (paths.empty()) return;
  try {
    fim::FimStore& store = protect_store();
    // Approved copies that exist stay approved; only a new set of paths is baselined, and its
    // current content becomes the approved one (`palisade fim approve` is how it changes later).
    bool same_roots = false;
    if (store.last_run()) {
      std::vector<std::string> roots = store.baseline_options().roots;
      std::sort(roots.begin(), roots.end());
      same_roots = roots == paths;
    }
    if (same_roots) return;
    fim::BaselineOptions options;
    options.roots = paths;
    options.protect = paths;
    const fim::BaselineReport report = fim::build_baseline(options, store);
    spdlog::info("file integrity: approved copies of {} protected file(s) kept in {}",
                 report.protected_files, config_.content_directory);
  } catch (const std::exception& e) {
    last_error_ = e.what();
    spdlog::error("file integrity: cannot keep approved copies of protected files: {}", e.what());
  }
}

void FileIntegrity::schedule_restore(const std::string& path, const Event& trigger) {
  if (pending_.size() >= config_.max_pending_restores) {
    dropped_restores_++;
    return;
  }
  for (const auto& p : pending_) {
    if (p.path == path) return;  // one restore covers every write before it
  }
  pending_.push_back(
      {path, std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.restore_delay_ms),
       trigger.task.tgid, trigger.process ? trigger.process->exe : trigger.exe});
}

void FileIntegrity::restore(const PendingRestore& pending, const RemediationSink& remediation) {
  const nlohmann::json who =
      ocsf::requester("palisade agent: file integrity", "protected file changed");
  nlohmann::json record = ocsf::remediation_event(
      ocsf::RemediationClass::kFile, ocsf::RemediationActivity::kRestore, false, "", who);
  record["file"] = {{"path", pending.path}};
  record["unmapped"]["palisade"]["changed_by"] = {{"pid", pending.pid}, {"exe", pending.exe}};
  std::string detail;
  bool ok = false;
  try {
    fim::FimStore& store = protect_store();
    const auto change = confirm(store, pending.path);
    if (!change) return;  // opened for writing, but nothing changed
    const fim::RestoreResult result = fim::restore_protected(store, pending.path);
    ok = true;
    detail = "restored the approved content of " + pending.path + " (" + describe(*change) +
             ") after a change by pid " + std::to_string(pending.pid) + " (" + pending.exe + ")";
    record["file"]["hashes"] = {
        {{"algorithm_id", 3}, {"algorithm", "SHA-256"}, {"value", result.restored.sha256}}};
    if (result.replaced)
      record["unmapped"]["palisade"]["replaced_sha256"] = result.replaced->sha256;
  } catch (const std::exception& e) {
    detail = "could not restore " + pending.path + ": " + e.what();
  }
  (ok ? restored_ : restore_failures_)++;
  record["status_id"] = ok ? 1 : 2;
  record["status"] = ok ? "Success" : "Failure";
  record["status_detail"] = detail;
  spdlog::info("file integrity: {}", detail);
  remediation(std::move(record), pending.pid);
}

fim::FimStore* FileIntegrity::baseline_store() {
  if (baseline_store_) return baseline_store_.get();
  if (!fs::exists(config_.database)) return nullptr;
  auto store = std::make_unique<fim::FimStore>(
      fim::FimStoreOptions{config_.database, config_.content_directory});
  if (!store->last_run()) return nullptr;
  baseline_roots_.clear();
  for (const auto& root : store->baseline_options().roots) {
    baseline_roots_.push_back(root == "/" ? root : root + "/");
  }
  baseline_store_ = std::move(store);
  return baseline_store_.get();
}

bool FileIntegrity::under_baseline(const std::string& path) const {
  return std::any_of(baseline_roots_.begin(), baseline_roots_.end(), [&](const std::string& r) {
    return path.rfind(r, 0) == 0 || path + "/" == r;
  });
}

void FileIntegrity::observe(const Event& event) {
  if (class_of(event.kind) != EventClass::kFile || event.result < 0 || baseline_roots_.empty()) {
    return;
  }
  // Paths in a container's mount namespace are not the host files the baseline describes.
  if (event.container || !event.container_unresolved.empty()) return;
  for (const std::string* path : {&event.path, &event.path2}) {
    if (path->empty() || !under_baseline(*path)) continue;
    if (std::any_of(confirms_.begin(), confirms_.end(),
                    [&](const PendingConfirm& c) { return c.path == *path; })) {
      continue;  // one confirmation covers every change before it
    }
    if (confirms_.size() >= config_.max_pending_restores) {
      dropped_confirms_++;
      continue;
    }
    confirms_.push_back(
        {*path,
         std::chrono::steady_clock::now() + std::chrono::milliseconds(config_.restore_delay_ms),
         event});
  }
}

void FileIntegrity::confirm_due(const DriftSink& drift) {
  const auto now = std::chrono::steady_clock::now();
  while (!confirms_.empty() && confirms_.front().due <= now) {
    const PendingConfirm pending = std::move(confirms_.front());
    confirms_.pop_front();
    fim::FimStore* store = baseline_store();
    if (store == nullptr) return;
    try {
      confirmed_++;
      if (auto change = confirm(*store, pending.path)) {
        drift_++;
        drift(*change, &pending.trigger);
      }
    } catch (const std::exception& e) {
      last_error_ = e.what();
    }
  }
}

void FileIntegrity::rescan(const DriftSink& drift) {
  if (!fs::exists(config_.database)) return;
  try {
    baseline_store_.reset();  // the operator may have rebuilt it: take its roots again
    fim::FimStore* store = baseline_store();
    if (store == nullptr) return;
    const fim::CheckReport report = check(*store, store->baseline_options());
    rescans_++;
    size_t reported = 0;
    for (const auto& change : report.changes) {
      drift_++;
      if (reported++ < config_.max_drift_findings) drift(change, nullptr);
    }
    if (report.changes.size() > config_.max_drift_findings) {
      spdlog::warn("file integrity: {} changes against the baseline, {} reported as findings",
                   report.changes.size(), config_.max_drift_findings);
    }
  } catch (const std::exception& e) {
    last_error_ = e.what();
    spdlog::error("file integrity: rescan of {} failed: {}", config_.database, e.what());
  }
}

void FileIntegrity::tick(const RemediationSink& remediation, const DriftSink& drift) {
  const auto now = std::chrono::steady_clock::now();
  while (!pending_.empty() && pending_.front().due <= now) {
    const PendingRestore pending = pending_.front();
    pending_.pop_front();
    restore(pending, remediation);
  }
  confirm_due(drift);
  if (config_.rescan_interval_seconds > 0 && now >= next_rescan_) {
    next_rescan_ = now + std::chrono::seconds(config_.rescan_interval_seconds);
    rescan(drift);
  }
}

nlohmann::json FileIntegrity::status() const {
  return {{"protected_paths", protected_paths_},
          {"restored", restored_},
          {"restore_failures", restore_failures_},
          {"pending_restores", pending_.size()},
          {"dropped_restores", dropped_restores_},
          {"baseline", config_.database},
          {"rescans", rescans_},
          {"drift", drift_},
          {"confirmed", confirmed_},
          {"pending_confirmations", confirms_.size()},
          {"dropped_confirmations", dropped_confirms_},
          {"last_error", last_error_}};
}

}  // namespace palisade::agent
