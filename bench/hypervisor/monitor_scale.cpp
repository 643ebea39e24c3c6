// How the hypervisor monitor copes with many VMs: N domains defined through libvirt's test driver
// (in-process), then the time to inventory them all, to follow N lifecycle events, to run one
// round of bulk stats, and the process's resident memory. Usage: monitor_scale [N] (default 1000).
#include <libvirt/libvirt.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "palisade/hypervisor/libvirt.h"
#include "palisade/hypervisor/monitor.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace hv = palisade::hypervisor;

class CountingSink : public palisade::runtime::EventSink {
 public:
  void consume(const palisade::Event& e, std::string_view) override {
    if (e.kind == palisade::EventKind::kVmInventory) inventory++;
    if (e.kind == palisade::EventKind::kVmLifecycle) lifecycle++;
    if (e.kind == palisade::EventKind::kVmStats) stats++;
  }
  std::atomic<size_t> inventory{0}, lifecycle{0}, stats{0};
};

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

bool wait_for(const std::atomic<size_t>& counter, size_t n) {
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  while (counter < n) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

long max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? static_cast<int>(std::strtol(argv[1], nullptr, 10)) : 1000;
  hv::ensure_event_loop();
  auto conn = hv::Connection::open("test:///default", false);
  const long rss_before = max_rss_kib();
  for (int i = 0; i < n; ++i) {
    const std::string xml = "<domain type='test'><name>bench-" + std::to_string(i) +
                            "</name><memory>65536</memory><metadata><p:labels "
                            "xmlns:p='https://palisade.dev/xmlns/libvirt/1'><p:label key='tier'>"
                            "web</p:label></p:labels></metadata><os><type>hvm</type></os>"
                            "<devices><interface type='user'/></devices></domain>";
    virDomainPtr d = virDomainDefineXML(conn->get(), xml.c_str());
    if (d == nullptr) return 1;
    virDomainFree(d);
  }
  const long rss_defined = max_rss_kib();
  CountingSink sink;
  hv::MonitorOptions options;
  options.uris = {"test:///default"};
  options.stats_interval_ms = 1000;
  options.emit_stats = true;
  options.inspection.store_path = "/tmp/monitor-scale-inspections.db";
  palisade::ocsf::HostInfo host;
  host.hostname = "bench";
  hv::Monitor monitor(options, std::make_shared<palisade::ocsf::Formatter>(host),
                      hv::MonitorOutputs{{&sink}, nullptr});
  std::atomic<bool> stop{false};
  const auto t0 = Clock::now();
  std::thread runner([&] { monitor.run(stop); });
  if (!wait_for(sink.inventory, static_cast<size_t>(n) + 1)) return 2;
  const double inventory_ms = ms_since(t0);
  const auto t1 = Clock::now();
  for (int i = 0; i < n; ++i) {
    virDomainPtr d = virDomainLookupByName(conn->get(), ("bench-" + std::to_string(i)).c_str());
    virDomainCreate(d);
    virDomainFree(d);
  }
  if (!wait_for(sink.lifecycle, static_cast<size_t>(n))) return 3;
  const double lifecycle_ms = ms_since(t1);
  const auto t2 = Clock::now();
  // Two stats rounds: the second gives every running VM a rate.
  if (!wait_for(sink.stats, static_cast<size_t>(n))) return 4;
  const double stats_ms = ms_since(t2);
  const long rss_running = max_rss_kib();
  stop = true;
  runner.join();
  std::printf("domains %d\ninventory_ms %.1f\nlifecycle_events_ms %.1f (%.0f events/s)\n", n,
              inventory_ms, lifecycle_ms, n / (lifecycle_ms / 1000.0));
  std::printf("stats_first_rates_ms %.1f (1 s interval, two rounds)\n", stats_ms);
  std::printf("max_rss_kib before %ld, domains defined %ld, monitor running %ld (monitor: ~%ld)\n",
              rss_before, rss_defined, rss_running, rss_running - rss_defined);
  std::printf("notices_dropped %s\n", monitor.status()["notices_dropped"].dump().c_str());
  return 0;
}
