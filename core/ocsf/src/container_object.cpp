#include "palisade/ocsf/container_object.h"

#include <iterator>

#include "palisade/ocsf/json_writer.h"

namespace palisade::ocsf {
namespace {

constexpr size_t kMaxLabels = 64;  // per container; kubelet sets about ten

}  // namespace

void render_container_json(ContainerView& c) {
  c.json.clear();
  JsonWriter cw(c.json);
  cw.begin_object();
  cw.field("uid", c.id).field("name", c.name);
  cw.key("image").begin_object().field("name", c.image).end_object();
  cw.field("runtime", c.runtime);
  if (!c.pod_uid.empty()) cw.field("orchestrator", "Kubernetes").field("pod_uuid", c.pod_uid);
  cw.key("labels").begin_array();
  for (const auto& [key, value] : c.labels) cw.value(key + "=" + value);
  cw.end_array();
  cw.end_object();
}

ContainerRef make_container_view(ContainerView view, const ContainerView* sandbox) {
  auto label = [&](const char* key) {
    auto it = view.labels.find(key);
    return it == view.labels.end() ? std::string() : it->second;
  };
  view.pod_name = label(kPodNameLabel);
  view.pod_namespace = label(kPodNamespaceLabel);
  view.pod_uid = label(kPodUidLabel);
  view.name = label(kContainerNameLabel);
  if (view.name.empty()) view.name = view.id;
  view.sandbox = label("io.cri-containerd.kind") == "sandbox";
  // Pod labels only from the sandbox: an app container's own labels include its image's LABELs,
  // which an image author controls.
  const ContainerView* pod = view.sandbox ? &view : sandbox;
  if (pod != nullptr) {
    for (const auto& [key, value] : pod->labels) {
      if (key.rfind("io.kubernetes.", 0) == 0 || key.rfind("io.cri-containerd.", 0) == 0) continue;
      if (view.pod_labels.size() < kMaxLabels) view.pod_labels.emplace(key, value);
    }
  }
  while (view.labels.size() > kMaxLabels) view.labels.erase(std::prev(view.labels.end()));
  render_container_json(view);
  return std::make_shared<const ContainerView>(std::move(view));
}

}  // namespace palisade::ocsf
