// Test support: an EventSink that keeps what the monitor wrote (events, findings, audit records)
// for the test thread to wait on, and a monitor running on a thread of its own.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "palisade/hypervisor/monitor.h"
#include "palisade/runtime/event_sink.h"

namespace palisade::hypervisor::testing {

using nlohmann::json;

class CaptureSink : public runtime::EventSink {
 public:
  void consume(const Event&, std::string_view ocsf) override {
    std::lock_guard lock(mutex_);
    events_.push_back(json::parse(ocsf));
  }
  void consume_finding(std::string_view ocsf, const Event&) override {
    std::lock_guard lock(mutex_);
    findings_.push_back(json::parse(ocsf));
  }
  void audit(const json& record) {
    std::lock_guard lock(mutex_);
    audits_.push_back(record);
  }
  std::vector<json> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::vector<json> findings() const {
    std::lock_guard lock(mutex_);
    return findings_;
  }
  std::vector<json> audits() const {
    std::lock_guard lock(mutex_);
    return audits_;
  }
  // Events of this kind (unmapped.palisade.event) for this VM name ("" = any) and action.
  std::vector<json> vm_events(const std::string& kind, const std::string& vm = "",
                              const std::string& action = "") const {
    std::vector<json> out;
    for (const auto& e : events()) {
      const auto& u = e["unmapped"]["palisade"];
      if (u.value("event", "") != kind) continue;
      if (!vm.empty() && e.value("device", json::object()).value("name", "") != vm) continue;
      if (!action.empty() && u.value("action", "") != action) continue;
      out.push_back(e);
    }
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<json> events_;
  std::vector<json> findings_;
  std::vector<json> audits_;
};

inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

class RunningMonitor {
 public:
  RunningMonitor(MonitorOptions options, std::shared_ptr<policies::PolicySet> policy,
                 CaptureSink& sink) {
    ocsf::HostInfo host;
    host.hostname = "hv-test";
    host.run_id = "t";
    monitor_ = std::make_unique<Monitor>(
        std::move(options), std::make_shared<ocsf::Formatter>(host),
        MonitorOutputs{{&sink}, [&sink](const json& r) { sink.audit(r); }});
    if (policy) monitor_->set_policy(std::move(policy));
    thread_ = std::thread([this] { monitor_->run(stop_); });
  }
  ~RunningMonitor() {
    stop_ = true;
    thread_.join();
  }
  Monitor& monitor() { return *monitor_; }

 private:
  std::atomic<bool> stop_{false};
  std::unique_ptr<Monitor> monitor_;
  std::thread thread_;
};

}  // namespace palisade::hypervisor::testing
