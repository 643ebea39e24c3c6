#include "stats_collector.h"

#include <time.h>

#include <cstring>
#include <string_view>

namespace palisade::hypervisor {
namespace {

std::optional<uint64_t> unsigned_value(const virTypedParameter& p) {
  switch (p.type) {
    case VIR_TYPED_PARAM_UINT:
      return p.value.ui;
    case VIR_TYPED_PARAM_ULLONG:
      return p.value.ul;
    case VIR_TYPED_PARAM_INT:
      return p.value.i >= 0 ? std::optional<uint64_t>(static_cast<uint64_t>(p.value.i))
                            : std::nullopt;
    case VIR_TYPED_PARAM_LLONG:
      return p.value.l >= 0 ? std::optional<uint64_t>(static_cast<uint64_t>(p.value.l))
                            : std::nullopt;
    default:
      return std::nullopt;
  }
}

void add(std::optional<uint64_t>& sum, const std::optional<uint64_t>& value) {
  if (value) sum = sum.value_or(0) + *value;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

StatsCounters counters_from(const virDomainStatsRecord& record, uint64_t time_ns) {
  StatsCounters c;
  c.uuid = domain_uuid(record.dom);
  c.time_ns = time_ns;
  for (int i = 0; i < record.nparams; ++i) {
    const virTypedParameter& p = record.params[i];
    const std::string_view field(p.field);
    const auto v = unsigned_value(p);
    if (field == "cpu.time") {
      c.cpu_time_ns = v;
    } else if (field == "vcpu.current") {
      c.vcpus = static_cast<uint32_t>(v.value_or(0));
    } else if (field == "balloon.rss") {
      c.balloon_rss_kib = v;
    } else if (field.starts_with("net.") && ends_with(field, ".rx.bytes")) {
      add(c.net_rx_bytes, v);
    } else if (field.starts_with("net.") && ends_with(field, ".tx.bytes")) {
      add(c.net_tx_bytes, v);
    } else if (field.starts_with("block.") && ends_with(field, ".rd.bytes")) {
      add(c.disk_read_bytes, v);
    } else if (field.starts_with("block.") && ends_with(field, ".wr.bytes")) {
      add(c.disk_write_bytes, v);
    }
  }
  return c;
}

bool collect_domain_stats(Connection& connection, std::vector<StatsCounters>& out,
                          std::string& error) {
  virDomainStatsRecordPtr* records = nullptr;
  const unsigned int groups = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL |
                              VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU |
                              VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;
  // Groups a driver does not support are left out rather than failing the call (no ENFORCE).
  const int n = virConnectGetAllDomainStats(connection.get(), groups, &records,
                                            VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE);
  if (n < 0) {
    error = last_libvirt_error();
    return false;
  }
  const uint64_t t = monotonic_ns();
  for (int i = 0; i < n; ++i) out.push_back(counters_from(*records[i], t));
  virDomainStatsRecordListFree(records);
  return true;
}

}  // namespace palisade::hypervisor
