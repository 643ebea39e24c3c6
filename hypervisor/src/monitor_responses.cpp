// VM responses: decided on the monitor's thread (budget, snapshot cooldown), carried out by the
// response worker, audited on the monitor's thread.
#include <spdlog/spdlog.h>

#include "monitor_impl.h"

namespace palisade::hypervisor {

namespace {

std::optional<VmAction> action_for(policies::Response response) {
  switch (response) {
    case policies::Response::kSuspend:
      return VmAction::kSuspend;
    case policies::Response::kSnapshot:
      return VmAction::kSnapshot;
    case policies::Response::kShutdown:
      return VmAction::kShutdown;
    case policies::Response::kIsolate:
      return VmAction::kIsolate;
    default:
      return std::nullopt;
  }
}

}  // namespace

// Decides on the monitor's thread (rate limit, cooldown) and hands the action to the response
// worker: a memory dump or a snapshot takes seconds and must not stop event handling.
void Monitor::Impl::respond(const policies::Finding& finding, const Event& event) {
  if (!event.vm || !options.responses) return;
  const auto action = action_for(finding.rule->response);
  if (!action) {
    spdlog::warn("hv: rule {} asks for {}, which does not apply to a VM", finding.rule->name,
                 policies::response_name(finding.rule->response));
    return;
  }
  ResponseJob job{*event.vm, *action, finding.rule->name, finding.message};
  const auto now = Clock::now();
  std::string refused;
  if (std::optional<runtime::ResponseOutcome> over = responder.admit(now)) {
    refused = over->detail;
  } else if (*action == VmAction::kSnapshot) {
    // One forensic snapshot per VM per cooldown: each adds a layer to its disk chain and a
    // memory dump the size of its RAM.
    auto& last = last_snapshot[event.vm->uuid];
    if (last != Clock::time_point{} && now - last < kSnapshotCooldown) {
      refused = "refused: a forensic snapshot of this VM was taken less than " +
                std::to_string(kSnapshotCooldown.count()) + " minutes ago";
    } else {
      last = now;
    }
    if (last_snapshot.size() > options.max_domains) last_snapshot.clear();
  }
  if (refused.empty() && !enqueue_response(job)) refused = "refused: the response queue is full";
  if (!refused.empty()) audit_response(job, ActionOutcome{false, refused, {}}, true);
}

bool Monitor::Impl::enqueue_response(ResponseJob job) {
  return response_queue.push(std::move(job)) == base::PushResult::kQueued;
}

// The response worker: carries out queued responses (all of them, also when stopping: they
// were decided) and hands the audit records back to the monitor's thread.
void Monitor::Impl::response_worker() {
  while (std::optional<ResponseJob> job = response_queue.pop()) {
    auto done = std::make_shared<ResponseDone>();
    done->outcome = act(job->vm, job->action);
    done->job = std::move(*job);
    Notice n;
    n.type = Notice::Type::kResponseDone;
    n.payload = std::move(done);
    inbox.push(std::move(n));
  }
}

void Monitor::Impl::audit_response(const ResponseJob& job, const ActionOutcome& outcome,
                                   bool refused) {
  nlohmann::json record =
      vm_remediation_record(job.action, job.vm, outcome, responder.requester(job.rule, job.reason));
  record = responder.audit(std::move(record),
                           runtime::ResponseOutcome{outcome.ok, outcome.detail, refused}, job.rule,
                           action_name(job.action));
  if (outputs.audit) outputs.audit(record);
}

ActionOutcome Monitor::Impl::act(const VmView& vm, VmAction action) {
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i].uri != vm.host) continue;
    auto conn = sessions[i]->connection();
    if (!conn) return ActionOutcome{false, "not connected to " + vm.host, {}};
    try {
      DomainHandle d = conn->find_domain(vm.uuid);
      return carry_out(*conn, d.get(), action, options.response);
    } catch (const std::exception& e) {
      return ActionOutcome{false, e.what(), {}};
    }
  }
  return ActionOutcome{false, "unknown host " + vm.host, {}};
}

}  // namespace palisade::hypervisor
