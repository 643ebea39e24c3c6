#include "palisade/hypervisor/lifecycle.h"

#include <libvirt/libvirt.h>

#include <array>
#include <span>

namespace palisade::hypervisor {
namespace {

template <size_t N>
std::string_view pick(const std::array<std::string_view, N>& names, int detail) {
  return detail >= 0 && static_cast<size_t>(detail) < N ? names[static_cast<size_t>(detail)]
                                                        : "unknown";
}

constexpr std::array<std::string_view, 4> kDefined{"added", "updated", "renamed", "from-snapshot"};
constexpr std::array<std::string_view, 2> kUndefined{"removed", "renamed"};
constexpr std::array<std::string_view, 6> kStarted{"booted",        "migrated", "restored",
                                                   "from-snapshot", "wakeup",   "recreated"};
constexpr std::array<std::string_view, 9> kSuspended{"paused",    "migrated", "io-error",
                                                     "watchdog",  "restored", "from-snapshot",
                                                     "api-error", "postcopy", "postcopy-failed"};
constexpr std::array<std::string_view, 5> kResumed{"unpaused", "migrated", "from-snapshot",
                                                   "postcopy", "postcopy-failed"};
constexpr std::array<std::string_view, 7> kStopped{
    "shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from-snapshot"};
constexpr std::array<std::string_view, 3> kShutdown{"finished", "guest", "host"};
constexpr std::array<std::string_view, 2> kPmSuspended{"memory", "disk"};
constexpr std::array<std::string_view, 2> kCrashed{"panicked", "crashloaded"};

}  // namespace

LifecycleName lifecycle_name(int event, int detail) {
  switch (event) {
    case VIR_DOMAIN_EVENT_DEFINED:
      return {"defined", pick(kDefined, detail)};
    case VIR_DOMAIN_EVENT_UNDEFINED:
      return {"undefined", pick(kUndefined, detail)};
    case VIR_DOMAIN_EVENT_STARTED:
      if (detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED) return {"migrated", "arrived"};
      return {"started", pick(kStarted, detail)};
    case VIR_DOMAIN_EVENT_SUSPENDED:
      if (detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED) return {"migrated", "paused"};
      return {"suspended", pick(kSuspended, detail)};
    case VIR_DOMAIN_EVENT_RESUMED:
      if (detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED) return {"migrated", "resumed"};
      return {"resumed", pick(kResumed, detail)};
    case VIR_DOMAIN_EVENT_STOPPED:
      if (detail == VIR_DOMAIN_EVENT_STOPPED_MIGRATED) return {"migrated", "left"};
      if (detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED) return {"crashed", "stopped"};
      return {"stopped", pick(kStopped, detail)};
    case VIR_DOMAIN_EVENT_SHUTDOWN:
      return {"shutdown", pick(kShutdown, detail)};
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
      return {"pmsuspended", pick(kPmSuspended, detail)};
    case VIR_DOMAIN_EVENT_CRASHED:
      return {"crashed", pick(kCrashed, detail)};
    default:
      return {"unknown", "unknown"};
  }
}

}  // namespace palisade::hypervisor
