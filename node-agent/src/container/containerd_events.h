// What containerd's messages mean to the container registry, apart from the gRPC calls that
// carry them: an event from the stream, and the container record a refresh reads. Free of gRPC
// so that the fuzz build decodes exactly this code (tests/fuzz/containerd_events_fuzzer.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb.h"
#include "palisade/model/container_view.h"

namespace palisade::agent {

struct ContainerdEvent {
  enum class Effect {
    kNone,     // not about a container's identity, or not decodable
    kRefresh,  // re-read the container (created, updated, its task created or started)
    kExited,   // its task exited or it was deleted: forget it after the linger time
  };
  Effect effect = Effect::kNone;
  std::string container_id;
  uint32_t pid = 0;  // a process of the container, when the event names one
};

// One event of the stream: its topic and the payload of its Any. containerd's type URLs have no
// "type.googleapis.com/" part, so the topic (not UnpackTo) says what the payload is.
ContainerdEvent decode_containerd_event(const std::string& topic, const std::string& payload);

// The cgroup the runtime will put the container in, from its OCI spec's linux.cgroupsPath:
// "/a/b" (cgroupfs), "slice:prefix:name" (systemd driver), or containerd's default /<ns>/<id>
// when there is none. Empty when the path is malformed.
std::string expected_cgroup_path(std::string_view spec_json, const std::string& id,
                                 const std::string& ns);

// A container record as the registry keeps it, before its task's identity is added.
ContainerView view_of(const containerd::services::containers::v1::Container& container,
                      const std::string& ns);

}  // namespace palisade::agent
