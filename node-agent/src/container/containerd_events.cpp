#include "container/containerd_events.h"

#include <nlohmann/json.hpp>

#include "github.com/containerd/containerd/api/events/container.pb.h"
#include "github.com/containerd/containerd/api/events/task.pb.h"

namespace palisade::agent {

namespace {

using Effect = ContainerdEvent::Effect;

ContainerdEvent refresh(std::string id, uint32_t pid) {
  if (id.empty()) return {};
  return {Effect::kRefresh, std::move(id), pid};
}

}  // namespace

ContainerdEvent decode_containerd_event(const std::string& topic, const std::string& payload) {
  if (topic == "/containers/create") {
    containerd::events::ContainerCreate created;
    if (created.ParseFromString(payload)) return refresh(created.id(), 0);
  } else if (topic == "/containers/update") {
    containerd::events::ContainerUpdate updated;
    if (updated.ParseFromString(payload)) return refresh(updated.id(), 0);
  } else if (topic == "/tasks/create") {
    // runc has made the cgroup but not started the process: learn the cgroup id now, before
    // the container's first exec arrives.
    containerd::events::TaskCreate create;
    if (create.ParseFromString(payload)) return refresh(create.container_id(), create.pid());
  } else if (topic == "/tasks/start") {
    containerd::events::TaskStart start;
    if (start.ParseFromString(payload)) return refresh(start.container_id(), start.pid());
  } else if (topic == "/tasks/exit") {
    // An exec'd process exiting (id != container_id) leaves the container running.
    containerd::events::TaskExit exit;
    if (exit.ParseFromString(payload) && !exit.container_id().empty() &&
        exit.id() == exit.container_id()) {
      return {Effect::kExited, exit.container_id(), 0};
    }
  } else if (topic == "/containers/delete") {
    containerd::events::ContainerDelete deleted;
    if (deleted.ParseFromString(payload) && !deleted.id().empty()) {
      return {Effect::kExited, deleted.id(), 0};
    }
  }
  return {};
}

std::string expected_cgroup_path(std::string_view spec_json, const std::string& id,
                                 const std::string& ns) {
  std::string path;
  try {
    // Any part of the wrong type throws type_error: then the default path.
    const auto spec = nlohmann::json::parse(spec_json);
    path = spec.value("linux", nlohmann::json::object()).value("cgroupsPath", "");
  } catch (const nlohmann::json::exception&) {
  }
  if (path.empty()) return "/" + ns + "/" + id;
  if (path[0] == '/') return path;
  const auto first = path.find(':');
  if (first == std::string::npos) return "/" + path;
  // systemd: "kubepods-besteffort-pod1.slice:cri-containerd:<id>" lives at
  // /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-<id>.scope
  const std::string slice = path.substr(0, first);
  const auto second = path.find(':', first + 1);
  if (second == std::string::npos) return {};
  const std::string prefix = path.substr(first + 1, second - first - 1);
  const std::string name = path.substr(second + 1);
  std::string dir;
  const std::string stem = slice.empty() ? "system" : slice.substr(0, slice.rfind(".slice"));
  for (size_t dash = stem.find('-'); dash != std::string::npos; dash = stem.find('-', dash + 1)) {
    dir += "/" + stem.substr(0, dash) + ".slice";
  }
  dir += "/" + stem + ".slice";
  return dir + "/" + prefix + "-" + name + ".scope";
}

ContainerView view_of(const containerd::services::containers::v1::Container& container,
                      const std::string& ns) {
  ContainerView view;
  view.id = container.id();
  view.cgroup_path = expected_cgroup_path(container.spec().value(), container.id(), ns);
  view.image = container.image();
  view.runtime_namespace = ns;
  if (!container.runtime().name().empty()) view.runtime = container.runtime().name();
  for (const auto& [key, value] : container.labels()) view.labels.emplace(key, value);
  return view;
}

}  // namespace palisade::agent
