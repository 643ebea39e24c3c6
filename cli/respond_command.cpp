// `palisade respond`: response actions on this host, each recorded as an audited OCSF
// Remediation Activity event (who asked, why, what was done) in the local store and on stdout.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "commands.h"
#include "palisade/agent/container.h"
#include "palisade/agent/enforcer.h"
#include "palisade/agent/respond.h"
#include "palisade/base/cgroup.h"
#include "palisade/base/error.h"
#include "palisade/base/proc.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/ocsf/remediation.h"
#include "palisade/runtime/outputs.h"

namespace palisade::cli {
namespace {

using nlohmann::json;

struct RespondOptions {
  std::string db = "/var/lib/palisade/events.db";
  std::string quarantine_dir = "/var/lib/palisade/quarantine";
  std::string reason;
  bool no_store = false;
  std::string pin_root = "/sys/fs/bpf/palisade";
};

ocsf::RemediationActivity restore_activity(bool restore) {
  return restore ? ocsf::RemediationActivity::kRestore : ocsf::RemediationActivity::kIsolate;
}

json requester(const std::string& reason) {
  return ocsf::requester("palisade respond", reason);
}

int record(const RespondOptions& o, json event, uint32_t pid, const std::string& exe) {
  // The record is the command's answer on stdout, and kept in the store like the agent's.
  runtime::OutputSettings settings;
  settings.store_enabled = !o.no_store;
  settings.store.path = o.db;
  runtime::Outputs outputs(settings, nullptr);
  outputs.write_audit(event, pid, exe, getuid());
  outputs.drain();
  return event["status_id"] == 1 ? 0 : 1;
}

std::string exe_of(uint32_t pid) {
  return base::read_proc_link(pid, "exe");
}

int kill_command(const RespondOptions& o, uint32_t pid, bool tree) {
  const std::string exe = exe_of(pid);
  const agent::KillReport report = agent::kill_process(pid, tree);
  const bool ok = report.failed.empty() && !report.killed.empty();
  std::string detail = "killed " + std::to_string(report.killed.size()) + " process(es)";
  for (const auto& [p, why] : report.failed) detail += "; " + std::to_string(p) + ": " + why;
  json event =
      ocsf::remediation_event(ocsf::RemediationClass::kProcess, ocsf::RemediationActivity::kEvict,
                              ok, detail, requester(o.reason));
  event["process"] = {{"pid", pid}, {"file", {{"path", exe}}}};
  event["unmapped"]["palisade"]["killed_pids"] = report.killed;
  event["unmapped"]["palisade"]["tree"] = tree;
  return record(o, std::move(event), pid, exe);
}

json file_object(const agent::QuarantineRecord& r) {
  return {{"path", r.original_path},
          {"size", r.size},
          {"hashes",
           json::array({{{"algorithm_id", 3}, {"algorithm", "SHA-256"}, {"value", r.sha256}}})}};
}

int quarantine_command(const RespondOptions& o, const std::string& path, bool restore) {
  json event;
  try {
    const agent::QuarantineRecord r = restore ? agent::restore_file(path, o.quarantine_dir)
                                              : agent::quarantine_file(path, o.quarantine_dir);
    event = ocsf::remediation_event(
        ocsf::RemediationClass::kFile, restore_activity(restore), true,
        restore ? "restored from " + r.quarantined_path
                : "moved to " + r.quarantined_path + ", permissions removed",
        requester(o.reason));
    event["file"] = file_object(r);
    event["unmapped"]["palisade"]["quarantined_path"] = r.quarantined_path;
    event["unmapped"]["palisade"]["original_mode"] = r.mode;
    event["unmapped"]["palisade"]["original_owner"] = {{"uid", r.uid}, {"gid", r.gid}};
  } catch (const std::exception& e) {
    event = ocsf::remediation_event(ocsf::RemediationClass::kFile, restore_activity(restore), false,
                                    e.what(), requester(o.reason));
    event["file"] = {{"path", path}};
  }
  return record(o, std::move(event), static_cast<uint32_t>(getpid()), "");
}

// A workload by cgroup v2 path ("/k8s.io/<id>", or the full path under the cgroup2 mount) or by
// container id (or a unique prefix of at least 12 characters): the one cgroup it names. Throws
// ConfigurationError for the root cgroup or an ambiguous name, EnvironmentError for no match.
agent::CgroupEntry resolve_workload(const std::string& workload) {
  const std::string mount = base::cgroup2_mount();
  std::string relative = workload;
  if (relative.rfind(mount + "/", 0) == 0) relative = relative.substr(mount.size());
  if (relative == "/" || relative.empty()) {
    throw ConfigurationError("refused: isolating the root cgroup would cut off the whole host");
  }
  std::vector<agent::CgroupEntry> out;
  for (const auto& cg : agent::scan_cgroups()) {
    if (cg.path == relative) return cg;
    // A container's cgroup is named after its id: "<id>", "cri-containerd-<id>.scope", ...
    const std::string name = cg.path.substr(cg.path.rfind('/') + 1);
    const size_t at = name.find(workload);
    const bool id_prefix = at != std::string::npos && (at == 0 || name[at - 1] == '-');
    if (workload[0] != '/' && workload.size() >= 12 && id_prefix) out.push_back(cg);
  }
  if (out.empty()) throw EnvironmentError("no cgroup or container matches '" + workload + "'");
  if (out.size() > 1) {
    throw ConfigurationError("'" + workload + "' matches " + std::to_string(out.size()) +
                             " cgroups; give the cgroup path or a longer container id");
  }
  return out[0];
}

// OCSF 1.3 Network Remediation Activity: activity 1 Isolate, 3 Restore.
int isolate_command(const RespondOptions& o, const std::string& workload, bool isolate) {
  std::optional<agent::CgroupEntry> cgroup;
  bool ok = false;
  std::string detail;
  try {
    cgroup = resolve_workload(workload);
    agent::set_isolation(o.pin_root, cgroup->id, isolate);
    ok = true;
    detail = std::string(isolate ? "network cut off but for the policy's management rules: "
                                 : "network restored: ") +
             "cgroup " + cgroup->path;
  } catch (const Error& e) {
    detail = e.what();
  }
  json event = ocsf::remediation_event(ocsf::RemediationClass::kNetwork, restore_activity(!isolate),
                                       ok, detail, requester(o.reason));
  event["unmapped"]["palisade"]["workload"] = workload;
  if (cgroup) {
    event["unmapped"]["palisade"]["cgroup"] = cgroup->path;
    event["unmapped"]["palisade"]["cgroup_id"] = cgroup->id;
  }
  return record(o, std::move(event), static_cast<uint32_t>(getpid()), "");
}

}  // namespace

void add_respond_command(CLI::App& app, int& exit_code) {
  auto* respond = app.add_subcommand(
      "respond", "Response actions (kill, quarantine, restore), each recorded as an audited event");
  respond->require_subcommand(1);
  static RespondOptions options;
  respond->add_option("--db", options.db, "Event store that records the action");
  respond->add_option("--quarantine-dir", options.quarantine_dir, "Where quarantined files go");
  respond->add_option("--reason", options.reason, "Why (kept in the audit event)");
  respond->add_flag("--no-store", options.no_store, "Only print the audit event");

  static uint32_t pid = 0;
  static bool tree = false;
  auto* kill = respond->add_subcommand("kill", "Kill a process, or with --tree its whole tree");
  kill->add_option("pid", pid, "Process id")->required();
  kill->add_flag("--tree", tree, "Also every descendant (stopped first, so none escapes)");
  kill->callback([&] { exit_code = kill_command(options, pid, tree); });

  static std::string path;
  auto* quarantine = respond->add_subcommand(
      "quarantine", "Move a file into quarantine (permissions removed, hash and origin kept)");
  quarantine->add_option("path", path, "File")->required();
  quarantine->callback([&] { exit_code = quarantine_command(options, path, false); });
  auto* restore = respond->add_subcommand("restore", "Put a quarantined file back where it was");
  restore->add_option("path", path, "The file's original path")->required();
  restore->callback([&] { exit_code = quarantine_command(options, path, true); });
  static std::string workload;
  respond->add_option("--pin-directory", options.pin_root,
                      "bpffs directory of the agent's pinned enforcement");
  auto* isolate = respond->add_subcommand(
      "isolate",
      "Cut a workload (cgroup path or container id) off the network, but for management");
  isolate->add_option("workload", workload, "cgroup v2 path or container id")->required();
  isolate->callback([&] { exit_code = isolate_command(options, workload, true); });
  auto* release = respond->add_subcommand("release", "Lift a workload's isolation");
  release->add_option("workload", workload, "cgroup v2 path or container id")->required();
  release->callback([&] { exit_code = isolate_command(options, workload, false); });
  respond->add_subcommand("list", "List the quarantined files")->callback([&] {
    for (const auto& r : agent::quarantined_files(options.quarantine_dir)) {
      std::cout << r.original_path << "  sha256=" << r.sha256 << "  size=" << r.size << "  -> "
                << r.quarantined_path << '\n';
    }
    exit_code = 0;
  });
}

}  // namespace palisade::cli
