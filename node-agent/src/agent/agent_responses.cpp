#include <spdlog/spdlog.h>

#include "agent/agent_impl.h"
#include "palisade/agent/respond.h"
#include "palisade/base/cgroup.h"
#include "palisade/base/clock.h"
#include "palisade/base/error.h"
#include "palisade/ocsf/remediation.h"

namespace palisade::agent {

void Agent::emit_remediation(const nlohmann::json& record, uint32_t pid, const std::string& exe) {
  outputs_->write_audit(record, pid, exe);
}

// Carries out one response; returns what was done (or why not) and fills the acted-on object.
std::string Agent::carry_out(policies::Response response, const Event& event,
                             nlohmann::json& record, bool& ok) {
  using policies::Response;
  const uint32_t pid = event.task.tgid;
  switch (response) {
    case Response::kKill: {
      const KillReport report = kill_process(pid, false);
      ok = !report.killed.empty();
      record["process"] = {{"pid", pid},
                           {"file", {{"path", event.process ? event.process->exe : ""}}}};
      record["unmapped"]["palisade"]["killed_pids"] = report.killed;
      if (ok) return "killed process " + std::to_string(pid);
      return "could not kill " + std::to_string(pid) +
             (report.failed.empty() ? std::string() : ": " + report.failed[0].second);
    }
    case Response::kIsolate: {
      const uint64_t cgroup = event.task.cgroup_id;
      record["unmapped"]["palisade"]["cgroup_id"] = cgroup;
      std::string error = "kernel enforcement is not active";
      const uint64_t own = base::cgroup_id_of_process(static_cast<uint32_t>(getpid()));
      if (cgroup == 0 || cgroup == base::cgroup_id_of_path("/") || cgroup == own) {
        error = "refused: the event's cgroup is the host's root cgroup or the agent's own";
      } else if (enforcer_) {
        try {
          set_isolation(config_.enforcement.options.pin_root, cgroup, true);
          ok = true;
        } catch (const Error& e) {
          error = e.what();
        }
      }
      return ok ? "cgroup " + std::to_string(cgroup) + " cut off the network" : error;
    }
    case Response::kQuarantine: {
      std::string path = class_of(event.kind) == EventClass::kFile ? event.path
                         : event.process                           ? event.process->exe
                                                                   : event.exe;
      if (event.kind == EventKind::kFileRename) path = event.path2;
      record["file"] = {{"path", path}};
      try {
        const QuarantineRecord q = quarantine_file(path, config_.responses.quarantine_directory);
        ok = true;
        record["file"]["hashes"] = {
            {{"algorithm_id", 3}, {"algorithm", "SHA-256"}, {"value", q.sha256}}};
        record["unmapped"]["palisade"]["quarantined_path"] = q.quarantined_path;
        return "moved to " + q.quarantined_path + ", permissions removed";
      } catch (const std::exception& e) {
        return e.what();
      }
    }
    default:
      ok = true;  // block happened in the kernel; restore is the file-integrity monitor's
      return "carried out by enforcement";
  }
}

void Agent::respond(const policies::Finding& finding, const Event& event) {
  using policies::Response;
  const Response response = finding.rule->response;
  // A replay describes another time (and often another machine): nothing is acted on.
  // VM responses are the hypervisor monitor's (palisade hv); a node has no VM to act on.
  if (!config_.responses.enabled || response == Response::kBlock ||
      policies::is_vm_response(response) || !options_.replay_path.empty())
    return;
  if (response == Response::kRestore) {
    // The sensor saw the write-open; the file integrity monitor restores once the write is done.
    if (class_of(event.kind) == EventClass::kFile && options_.replay_path.empty()) {
      fim_->schedule_restore(event.path, event);
    }
    return;
  }
  using ocsf::RemediationActivity;
  using ocsf::RemediationClass;
  const RemediationClass cls = response == Response::kKill      ? RemediationClass::kProcess
                               : response == Response::kIsolate ? RemediationClass::kNetwork
                                                                : RemediationClass::kFile;
  const RemediationActivity activity = response == Response::kKill ? RemediationActivity::kEvict
                                       : response == Response::kRestore
                                           ? RemediationActivity::kRestore
                                           : RemediationActivity::kIsolate;
  nlohmann::json record = ocsf::remediation_event(
      cls, activity, false, "", responder_->requester(finding.rule->name, finding.message));
  runtime::ResponseOutcome outcome;
  if (std::optional<runtime::ResponseOutcome> refused = responder_->admit()) {
    outcome = std::move(*refused);
  } else {
    outcome.detail = carry_out(response, event, record, outcome.ok);
  }
  record["unmapped"]["palisade"]["trigger_pid"] = event.task.tgid;
  emit_remediation(responder_->audit(std::move(record), outcome, finding.rule->name,
                                     policies::response_name(response)),
                   event.task.tgid, event.process ? event.process->exe : "");
}

// What a rescan of the operator's baseline found changed: a finding per change.
void Agent::report_drift(const fim::FileChange& change, const Event* trigger) {
  static const policies::DetectionRule rule = [] {
    policies::DetectionRule r;
    r.name = "file-integrity-baseline-drift";
    r.description = "A file differs from the approved baseline (palisade fim baseline)";
    r.severity = policies::Severity::kMedium;
    r.tags = {"file-integrity"};
    r.source = "<agent>";
    return r;
  }();
  // Seen as it happened: the finding names who did it (the file event, with its process,
  // ancestry and user) and what the baseline says changed. Found by a rescan: only what changed.
  if (trigger != nullptr) {
    detector_->raise(rule, describe(change) + " (confirmed against the baseline)", *trigger);
    return;
  }
  Event self;
  self.kind = EventKind::kUnknown;
  self.task.tgid = self.task.pid = static_cast<uint32_t>(getpid());
  self.task.comm = "palisade";
  self.path = change.path;
  self.wall_ns = base::wall_now_ns();
  detector_->raise(rule, describe(change), self);
}

}  // namespace palisade::agent
