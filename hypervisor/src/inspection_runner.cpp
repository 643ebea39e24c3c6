#include "inspection_runner.h"

#include <spdlog/spdlog.h>

#include "palisade/base/clock.h"
#include "palisade/hypervisor/vm_inspector.h"

namespace palisade::hypervisor {

InspectionRunner::InspectionRunner(InspectionSettings settings, Inbox& inbox)
    : settings_(std::move(settings)),
      inbox_(inbox),
      queue_(std::max<size_t>(settings_.max_pending, 1), base::OnFull::kReject) {
  try {
    store_ = std::make_unique<InspectionStore>(settings_.store_path);
  } catch (const std::exception& e) {
    // Without a store there is nothing to compare with: inspections are not scheduled.
    store_error_ = e.what();
    spdlog::warn("hv: inspection store {}: {} (scheduled inspections are off)",
                 settings_.store_path, e.what());
    return;
  }
  for (unsigned i = 0; i < std::max(1U, settings_.parallelism); ++i) {
    workers_.emplace_back([this] { work(); });
  }
}

InspectionRunner::~InspectionRunner() {
  queue_.cancel();
  for (auto& w : workers_) w.join();
}

int64_t InspectionRunner::last_inspected_ms(const std::string& uuid) {
  {
    std::lock_guard lock(mutex_);
    auto it = last_ms_.find(uuid);
    if (it != last_ms_.end()) return it->second;
  }
  int64_t last = 0;
  {
    std::lock_guard lock(store_mutex_);
    try {
      if (auto previous = store_->latest(uuid)) last = previous->time_ms;
    } catch (const std::exception& e) {
      spdlog::warn("hv: inspection store: {}", e.what());
    }
  }
  std::lock_guard lock(mutex_);
  if (last_ms_.size() >= kMaxRemembered) last_ms_.clear();  // re-read from the store as needed
  last_ms_[uuid] = last;
  return last;
}

void InspectionRunner::schedule_if_due(size_t host, std::shared_ptr<Connection> connection,
                                       VmRef vm, const std::string& policy,
                                       const policies::VmInspectionSpec& spec) {
  (void)policy;
  if (!store_ || !connection) return;
  {
    std::lock_guard lock(mutex_);
    if (busy_.contains(vm->uuid)) return;
  }
  const int64_t interval_ms = static_cast<int64_t>(spec.interval_ns / 1'000'000ULL);
  if (base::wall_now_ms() - last_inspected_ms(vm->uuid) < interval_ms) return;
  const std::string uuid = vm->uuid;
  {
    std::lock_guard lock(mutex_);
    busy_.insert(uuid);
  }
  if (queue_.push(Job{host, std::move(connection), std::move(vm), spec}) !=
      base::PushResult::kQueued) {
    std::lock_guard lock(mutex_);
    busy_.erase(uuid);  // the queue was full: due again at the next schedule
  }
}

void InspectionRunner::work() {
  while (std::optional<Job> next = queue_.pop()) {
    Job& job = *next;
    auto outcome = std::make_shared<InspectionOutcome>();
    bool ok = false;
    try {
      DomainHandle d = job.connection->find_domain(job.vm->uuid);
      VmInspection inspection = inspect_vm(*job.connection, d.get(), job.spec, settings_);
      {
        std::lock_guard store_lock(store_mutex_);  // the store is for one thread at a time
        record_inspection(inspection, *store_);
      }
      outcome->events = inspection_events(inspection);
      ok = true;
    } catch (const std::exception& e) {
      spdlog::warn("hv: inspection of {} failed: {}", job.vm->name, e.what());
      outcome->events.push_back(inspection_failure_event(*job.vm, e.what()));
    }
    {
      std::lock_guard lock(mutex_);
      busy_.erase(job.vm->uuid);
      last_ms_[job.vm->uuid] = base::wall_now_ms();  // a failure waits for the next interval too
      (ok ? completed_ : failed_)++;
    }
    Notice n;
    n.type = Notice::Type::kWork;
    n.host = job.host;
    n.uuid = job.vm->uuid;
    n.payload = std::move(outcome);
    inbox_.push(std::move(n));
  }
}

bool InspectionRunner::busy(const std::string& uuid) const {
  std::lock_guard lock(mutex_);
  return busy_.contains(uuid);
}

void InspectionRunner::forget(const std::string& uuid) {
  std::lock_guard lock(mutex_);
  last_ms_.erase(uuid);
}

nlohmann::json InspectionRunner::status() const {
  const base::QueueStats queue = queue_.stats();
  std::lock_guard lock(mutex_);
  return {{"completed", completed_},        {"failed", failed_},
          {"queued", queue.depth},          {"skipped_queue_full", queue.rejected_full},
          {"parallelism", workers_.size()}, {"store_error", store_error_}};
}

}  // namespace palisade::hypervisor
