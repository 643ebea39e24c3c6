// One libvirt host: its connection, kept open by a thread of its own that reconnects with
// exponential backoff, and the event callbacks that turn libvirt's events into notices.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "inbox.h"
#include "palisade/hypervisor/libvirt.h"

namespace palisade::hypervisor {

struct SessionOptions {
  bool read_only = false;
  uint32_t backoff_min_ms = 1000;
  uint32_t backoff_max_ms = 60000;
  uint32_t keepalive_interval_s = 5;  // libvirt declares the peer dead after count misses
  uint32_t keepalive_count = 3;
};

struct SessionCounters {
  uint64_t connects = 0;
  uint64_t losses = 0;
  uint64_t failed_attempts = 0;
};

class HostSession {
 public:
  HostSession(size_t index, std::string uri, SessionOptions options, Inbox& inbox);
  ~HostSession();  // stops the thread and closes the connection
  HostSession(const HostSession&) = delete;
  HostSession& operator=(const HostSession&) = delete;

  void start();
  // Asks the session's thread to stop without waiting (the destructor waits): a monitor stops all
  // its sessions at once rather than one after another.
  void request_stop();
  const std::string& uri() const { return uri_; }
  // The open connection, or null while disconnected. Callers keep the pointer for the duration
  // of a call: the connection is freed only when the last holder lets go.
  std::shared_ptr<Connection> connection() const;
  SessionCounters counters() const;

 private:
  // What libvirt's callbacks hold (through a heap pointer released by libvirt's free callback):
  // the session while it is connected, null once disconnect() has deregistered them. A callback
  // in progress holds the mutex, so disconnect() waits for it before the session can go away.
  struct CallbackContext {
    std::mutex mutex;
    HostSession* session = nullptr;
  };
  using ContextRef = std::shared_ptr<CallbackContext>;
  static void release_context(void* opaque);
  template <typename F>
  static void with_session(void* opaque, F&& f);

  void run();
  bool connect_once(std::string& error);
  void disconnect();
  // Waits for `span`, or less when stopping (and, with `or_closed`, when the connection closed).
  void wait_for(std::chrono::milliseconds span, bool or_closed);
  bool stopping() const;

  static void on_close(virConnectPtr conn, int reason, void* opaque);
  static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
                          void* opaque);
  static void on_metadata(virConnectPtr conn, virDomainPtr dom, int type, const char* nsuri,
                          void* opaque);
  static void on_device(virConnectPtr conn, virDomainPtr dom, const char* alias, void* opaque);
  void notify(Notice::Type type, virDomainPtr dom, int event = 0, int detail = 0);

  size_t index_;
  std::string uri_;
  SessionOptions options_;
  Inbox& inbox_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<Connection> connection_;
  // Used by the session thread only.
  std::vector<int> callbacks_;
  bool close_callback_ = false;
  ContextRef context_;
  std::atomic<bool> closed_{false};  // set by the close callback
  bool stopping_ = false;
  SessionCounters counters_;
  std::thread thread_;
};

}  // namespace palisade::hypervisor
