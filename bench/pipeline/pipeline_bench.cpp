// User-space pipeline throughput on recorded events: decode, enrich with ancestry, serialize to
// OCSF JSON. Run with a capture made by `palisade agent --record FILE`, or without one to use a
// synthetic mix built in the sensor's record format.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>

#include "palisade/agent/capture.h"
#include "palisade/agent/pipeline.h"
#include "palisade/ocsf/container_object.h"
#include "palisade/runtime/json_lines_sink.h"
#include "sensor/sensor_abi.h"

namespace palisade::agent {
namespace {

std::vector<std::byte> make_record(uint16_t kind, uint32_t tgid, uint64_t seq,
                                   const std::vector<std::string>& strings) {
  pal_record r{};
  r.h.kind = kind;
  r.h.seq = seq;
  r.h.mono_ns = seq * 1000;
  r.h.task.pid = r.h.task.tgid = tgid;
  r.h.task.ppid = tgid > 2 ? tgid - 1 : 1;
  r.h.task.start_ns = tgid * 1'000'000'000ULL;
  r.h.task.auid = 1000;
  std::memcpy(r.h.task.comm, "worker", 6);
  size_t total = sizeof(r);
  for (size_t i = 0; i < strings.size(); ++i) {
    r.h.str_len[i] = static_cast<__u16>(strings[i].size());
    total += strings[i].size();
  }
  r.h.total_len = static_cast<__u32>(total);
  std::vector<std::byte> bytes(total);
  std::memcpy(bytes.data(), &r, sizeof(r));
  size_t off = sizeof(r);
  for (const auto& s : strings) {
    std::memcpy(bytes.data() + off, s.data(), s.size());
    off += s.size();
  }
  return bytes;
}

// A process tree eight deep, then a mix of file, exec and network records from its leaves.
std::vector<std::vector<std::byte>> synthetic_records() {
  std::vector<std::vector<std::byte>> records;
  for (uint32_t pid = 1; pid <= 8; ++pid) {
    records.push_back(make_record(
        PAL_PROC_SNAPSHOT, pid, 0,
        {"/usr/bin/level" + std::to_string(pid), std::string("level\0--flag\0", 13), "/srv"}));
  }
  uint64_t seq = 1;
  for (int i = 0; i < 10000; ++i) {
    if (i % 10 == 0) {
      records.push_back(make_record(PAL_PROC_EXEC, 8, seq++,
                                    {"/usr/bin/level8", std::string("level8\0-x\0", 10), "/srv"}));
    } else if (i % 10 == 1) {
      records.push_back(make_record(PAL_NET_CONNECT, 8, seq++, {}));
    } else {
      records.push_back(make_record(PAL_FILE_OPEN, 8, seq++,
                                    {"/var/lib/app/data/file" + std::to_string(i) + ".log"}));
    }
  }
  return records;
}

class DiscardSink : public runtime::EventSink {
 public:
  explicit DiscardSink(std::shared_ptr<ocsf::Formatter> f) : formatter_(std::move(f)) {}
  void consume(const Event&, std::string_view ocsf) override {
    benchmark::DoNotOptimize(ocsf.data());
  }

 private:
  std::shared_ptr<ocsf::Formatter> formatter_;
  std::string buffer_;
};

void BM_PipelineDecodeEnrichSerialize(benchmark::State& state) {
  const char* capture = std::getenv("PALISADE_CAPTURE");
  auto records = capture != nullptr ? load_capture(capture, nullptr) : synthetic_records();
  auto formatter = std::make_shared<ocsf::Formatter>(ocsf::HostInfo::detect());
  DiscardSink sink(formatter);
  ProcessTable table;
  Pipeline pipeline(table, {&sink});
  pipeline.set_formatter(formatter);
  for (auto _ : state) {
    for (const auto& r : records) pipeline.handle(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * records.size()));
}
BENCHMARK(BM_PipelineDecodeEnrichSerialize)->Unit(benchmark::kMillisecond);

// The same without serialization: what decoding and ancestry enrichment cost on their own.
void BM_PipelineDecodeEnrich(benchmark::State& state) {
  const char* capture = std::getenv("PALISADE_CAPTURE");
  auto records = capture != nullptr ? load_capture(capture, nullptr) : synthetic_records();
  ProcessTable table;
  Pipeline pipeline(table, {});
  for (auto _ : state) {
    for (const auto& r : records) pipeline.handle(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * records.size()));
}
BENCHMARK(BM_PipelineDecodeEnrich)->Unit(benchmark::kMillisecond);

// Decoding and enrichment with container attribution: every record in a known container's
// cgroup (the common case on a node: one registry lookup per event).
void BM_PipelineDecodeEnrichAttribute(benchmark::State& state) {
  constexpr uint64_t kContainerCgroup = 4242;
  auto records = synthetic_records();
  for (auto& r : records) {
    auto* record = reinterpret_cast<pal_record*>(r.data());
    record->h.task.cgroup_id = kContainerCgroup;
  }
  auto registry = std::make_shared<ContainerRegistry>();
  ContainerView view;
  view.id = "bench";
  view.cgroup_id = kContainerCgroup;
  view.labels = {{kPodNamespaceLabel, "shop"}, {kPodNameLabel, "web-1"}};
  registry->upsert(ocsf::make_container_view(view));
  ContainerResolver resolver(registry, {"k8s.io"});
  ProcessTable table;
  Pipeline pipeline(table, {});
  pipeline.set_container_resolver(&resolver);
  for (auto _ : state) {
    for (const auto& r : records) pipeline.handle(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * records.size()));
}
BENCHMARK(BM_PipelineDecodeEnrichAttribute)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace palisade::agent

BENCHMARK_MAIN();
