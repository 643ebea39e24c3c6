// Guest-disk inspections in the background of the monitor: due VMs are queued (bounded), a fixed
// number of workers inspect them (each inspection bounded by its policy's time limit), and the
// resulting events go back to the main thread through the inbox.
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "inbox.h"
#include "palisade/base/bounded_queue.h"
#include "palisade/hypervisor/guest_inspection.h"
#include "palisade/hypervisor/libvirt.h"
#include "palisade/hypervisor/monitor.h"
#include "palisade/model/event.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/policies/vm_policy.h"

namespace palisade::hypervisor {

struct InspectionOutcome {
  std::vector<Event> events;
};

class InspectionRunner {
 public:
  InspectionRunner(InspectionSettings settings, Inbox& inbox);
  ~InspectionRunner();  // lets running inspections finish; drops queued ones
  InspectionRunner(const InspectionRunner&) = delete;
  InspectionRunner& operator=(const InspectionRunner&) = delete;

  // Queues the VM when its interval has passed since its last inspection (this run's, or the
  // store's record of an earlier run) and it is not queued or running already.
  void schedule_if_due(size_t host, std::shared_ptr<Connection> connection, VmRef vm,
                       const std::string& policy, const policies::VmInspectionSpec& spec);
  nlohmann::json status() const;
  bool busy(const std::string& uuid) const;         // queued or being inspected
  void forget(const std::string& uuid);             // the VM is gone
  static constexpr size_t kMaxRemembered = 100000;  // last-inspection times kept

 private:
  struct Job {
    size_t host;
    std::shared_ptr<Connection> connection;
    VmRef vm;
    policies::VmInspectionSpec spec;
  };
  void work();
  int64_t last_inspected_ms(const std::string& uuid);

  InspectionSettings settings_;
  Inbox& inbox_;
  std::unique_ptr<InspectionStore> store_;
  std::mutex store_mutex_;
  base::BoundedQueue<Job> queue_;  // refuses when full: the VM is due again next time
  mutable std::mutex mutex_;
  std::set<std::string> busy_;                        // queued or running, by uuid
  std::unordered_map<std::string, int64_t> last_ms_;  // bounded by the VMs followed
  uint64_t completed_ = 0;
  uint64_t failed_ = 0;
  std::string store_error_;
  std::vector<std::thread> workers_;
};

}  // namespace palisade::hypervisor
