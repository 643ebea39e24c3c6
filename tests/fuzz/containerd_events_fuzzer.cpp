// libFuzzer target: arbitrary bytes as what containerd sends the watcher: an Envelope of its
// event stream (decoded by the generated protobuf code, then by topic), a container record as a
// Get or List returns it, and that record's OCI spec (JSON) for the cgroup path. containerd's
// socket is root's, but a compromised or buggy runtime must not be able to crash the agent.
// Seeds: tests/fuzz/corpus/containerd/ (tests/fuzz/make_containerd_seeds.py).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "container/containerd_events.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.pb.h"
#include "google/protobuf/stubs/logging.h"

namespace {

using palisade::agent::ContainerdEvent;

void check_event(const std::string& bytes) {
  containerd::services::events::v1::Envelope envelope;
  if (!envelope.ParseFromString(bytes)) return;
  const ContainerdEvent event =
      palisade::agent::decode_containerd_event(envelope.topic(), envelope.event().value());
  // Every effect names the container it is about.
  if (event.effect != ContainerdEvent::Effect::kNone && event.container_id.empty()) std::abort();
}

void check_record(const std::string& bytes) {
  containerd::services::containers::v1::Container container;
  if (!container.ParseFromString(bytes)) return;
  const auto view = palisade::agent::view_of(container, "k8s.io");
  if (view.id != container.id()) std::abort();
}

void check_spec(const std::string& bytes) {
  // A cgroup path is absolute, or empty when the spec's is malformed.
  const std::string path = palisade::agent::expected_cgroup_path(bytes, "c1", "k8s.io");
  if (!path.empty() && path.front() != '/') std::abort();
}

}  // namespace

// protobuf logs every string field that is not UTF-8: a line per input, which would drown the
// fuzzer's own output and slow it tenfold.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  check_event(bytes);
  check_record(bytes);
  check_spec(bytes);
  return 0;
}
