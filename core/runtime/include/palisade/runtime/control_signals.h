// How an operator controls a running producer (the node agent, palisade hv): SIGTERM or SIGINT
// stops it, draining what it accepted; SIGHUP reloads its configuration and policies. The
// handlers only set flags, which the producer's loop acts on. They are installed without
// SA_RESTART, so that a blocking wait in that loop (the ring-buffer poll) returns with EINTR and
// the flag is seen at once; and before any thread starts, so that no thread meets a signal's
// default action (which would end the process without a drain). SIGPIPE is ignored: a closed
// output pipe is an error to report, not a reason to die.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace palisade::runtime {

class ControlSignals {
 public:
  static void install();
  static std::atomic<bool>& stop_flag();  // for loops that take a flag
  static bool stop_requested() { return stop_flag().load(); }
  static void request_stop() { stop_flag() = true; }
  static bool take_reload();  // true once per SIGHUP received
};

// Calls `reload` on its own thread after each SIGHUP, until the stop flag is set: for producers
// whose main loop is not theirs to poll from (the libvirt event loop).
class ReloadThread {
 public:
  explicit ReloadThread(std::function<void()> reload,
                        std::chrono::milliseconds poll = std::chrono::milliseconds(200));
  ~ReloadThread();  // sets the stop flag (whatever ended the loop) and joins
  ReloadThread(const ReloadThread&) = delete;
  ReloadThread& operator=(const ReloadThread&) = delete;

 private:
  std::thread thread_;
};

}  // namespace palisade::runtime
