#include "palisade/runtime/control_signals.h"

#include <signal.h>

namespace palisade::runtime {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_signal(int signo) {
  if (signo == SIGHUP) {
    g_reload = true;
  } else {
    g_stop = true;
  }
}

}  // namespace

void ControlSignals::install() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART
  for (int signo : {SIGTERM, SIGINT, SIGHUP}) sigaction(signo, &action, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, nullptr);
}

std::atomic<bool>& ControlSignals::stop_flag() {
  return g_stop;
}

bool ControlSignals::take_reload() {
  return g_reload.exchange(false);
}

ReloadThread::ReloadThread(std::function<void()> reload, std::chrono::milliseconds poll)
    : thread_([reload = std::move(reload), poll] {
        while (!ControlSignals::stop_requested()) {
          std::this_thread::sleep_for(poll);
          if (ControlSignals::take_reload() && !ControlSignals::stop_requested()) reload();
        }
      }) {}

ReloadThread::~ReloadThread() {
  ControlSignals::request_stop();
  thread_.join();
}

}  // namespace palisade::runtime
