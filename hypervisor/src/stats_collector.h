// One bulk-stats call per host per interval (virConnectGetAllDomainStats): the counters of
// every running domain at once, rather than a round trip per domain and per device.
#pragma once

#include <string>
#include <vector>

#include "palisade/hypervisor/behaviour.h"
#include "palisade/hypervisor/libvirt.h"

namespace palisade::hypervisor {

// Appends the counters of every active domain; false (and why) when the call failed.
bool collect_domain_stats(Connection& connection, std::vector<StatsCounters>& out,
                          std::string& error);

// CLOCK_MONOTONIC in nanoseconds: what samples and events are stamped with.
uint64_t monotonic_ns();

// The counters in one record (exposed for tests on synthetic records).
StatsCounters counters_from(const virDomainStatsRecord& record, uint64_t time_ns);

}  // namespace palisade::hypervisor
