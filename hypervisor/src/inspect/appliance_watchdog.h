// The hard time bound of an inspection. libguestfs serialises the calls on a handle, so a call
// that hangs (a stuck appliance, a guest filesystem that makes the kernel spin) cannot be
// interrupted through the handle. At the deadline the watchdog kills the appliance's processes
// instead, recognised by a marker in their command lines (the private directory that holds the
// handle's disk overlays); the pending call then fails and returns, and the inspection reports
// that it ran out of time. It keeps killing every 100 ms until stopped, so that an appliance that
// was still being prepared at the deadline dies as soon as it starts.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

namespace palisade::hypervisor::inspect {

class ApplianceWatchdog {
 public:
  ApplianceWatchdog(std::chrono::steady_clock::time_point deadline, std::string marker);
  ~ApplianceWatchdog();
  ApplianceWatchdog(const ApplianceWatchdog&) = delete;
  ApplianceWatchdog& operator=(const ApplianceWatchdog&) = delete;

  bool fired() const { return fired_.load(); }
  size_t killed() const { return killed_.load(); }

 private:
  void run(const std::stop_token& stop);

  std::chrono::steady_clock::time_point deadline_;
  std::string marker_;
  std::atomic<bool> fired_{false};
  std::atomic<size_t> killed_{0};
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: starts once everything it uses exists
};

// Sends SIGKILL to every other process whose command line contains marker; returns how many.
// Each is re-checked through a pidfd before the signal, so a recycled pid is never hit.
size_t kill_processes_naming(const std::string& marker);

}  // namespace palisade::hypervisor::inspect
