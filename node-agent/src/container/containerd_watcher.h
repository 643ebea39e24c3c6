// Keeps the ContainerRegistry in step with containerd over its gRPC API: lists containers and
// their tasks at start and after every reconnect, then follows containerd's event stream
// (container create/update/delete, task start/exit). containerd may be absent or restart: the
// watcher retries with backoff and re-syncs; the agent never waits for it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "palisade/agent/container.h"

namespace palisade::agent {

struct ContainerdOptions {
  std::string socket = "/run/containerd/containerd.sock";
  std::string ns = "k8s.io";
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30000};
  // An exited container stays attributable this long: its last events are still in flight.
  std::chrono::seconds exited_linger{30};
};

struct ContainerdStatus {
  bool connected = false;
  uint64_t syncs = 0;  // full list + subscribe cycles
  uint64_t events = 0;
  uint64_t reconnects = 0;
  std::string last_error;
};

class ContainerdWatcher {
 public:
  ContainerdWatcher(ContainerdOptions options, std::shared_ptr<ContainerRegistry> registry);
  ~ContainerdWatcher();
  ContainerdWatcher(const ContainerdWatcher&) = delete;
  ContainerdWatcher& operator=(const ContainerdWatcher&) = delete;

  void start();
  void stop();
  ContainerdStatus status() const;

  // Reads one container from containerd now (bounded by a short deadline) and adds it to the
  // registry; `pid` is a process of it, for its cgroup and pid namespace. Null when containerd is
  // not connected or does not know the id. Safe from any thread.
  ContainerRef fetch(const std::string& id, uint32_t pid);

  struct Impl;  // gRPC details stay out of this header

 private:
  void run();
  void sleep_for(std::chrono::milliseconds d);

  ContainerdOptions options_;
  std::shared_ptr<ContainerRegistry> registry_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  ContainerdStatus status_;
};

}  // namespace palisade::agent
