// libvirt's lifecycle event codes as the words VM events use (vm.action, vm.detail).
#pragma once

#include <string_view>

namespace palisade::hypervisor {

struct LifecycleName {
  std::string_view action;  // defined, undefined, started, suspended, resumed, stopped, shutdown,
                            // pmsuspended, crashed, migrated
  std::string_view detail;  // libvirt's reason: booted, destroyed, paused, ...; for migrated:
                            // arrived, left, paused, resumed
};

LifecycleName lifecycle_name(int event, int detail);

}  // namespace palisade::hypervisor
