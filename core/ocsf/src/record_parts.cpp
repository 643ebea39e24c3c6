#include "record_parts.h"

#include <algorithm>
#include <cstdio>

#include "palisade/ocsf/container_object.h"

namespace palisade::ocsf {

std::string event_uid_text(const std::string& run_id, const Event& e) {
  char buf[96];
  int n = std::snprintf(buf, sizeof(buf), "%s.%u.%u.%llu", run_id.c_str(), unsigned{e.cpu},
                        static_cast<unsigned>(class_of(e.kind)),
                        static_cast<unsigned long long>(e.seq));
  return {buf, n > 0 ? static_cast<size_t>(std::min<int>(n, sizeof(buf) - 1)) : 0};
}

void write_event_uid(JsonWriter& w, const std::string& run_id, const Event& e) {
  w.value(event_uid_text(run_id, e));
}

// The host as an OCSF device under `key`: the node that saw what a record reports ("device",
// or "observer" when the device is a VM). Events carry its OS; findings do not.
void write_host(JsonWriter& w, const HostInfo& host, std::string_view key, bool with_os) {
  w.key(key).begin_object();
  w.field("hostname", host.hostname).field("type_id", 1).field("type", "Server");
  if (!host.machine_id.empty()) w.field("uid", host.machine_id);
  if (with_os) {
    w.key("os").begin_object();
    w.field("name", "Linux").field("type_id", 200).field("type", "Linux");
    w.field("version", host.kernel_release);
    w.end_object();
  }
  w.end_object();
}

// OCSF's container object (the container profile): rendered with the view; test and replayed
// views may come without it.
void write_container(JsonWriter& w, const ContainerView& c) {
  if (!c.json.empty()) {
    w.key("container").raw(c.json);
    return;
  }
  ContainerView copy = c;
  render_container_json(copy);
  w.key("container").raw(copy.json);
}

// Kubernetes identity has no OCSF object of its own: it goes under unmapped.palisade.
void write_kubernetes(JsonWriter& w, const Event& e) {
  if (!e.container_unresolved.empty()) w.field("container_unresolved", e.container_unresolved);
  if (!e.container || e.container->pod_name.empty()) return;
  const ContainerView& c = *e.container;
  w.key("kubernetes").begin_object();
  w.field("namespace", c.pod_namespace).field("pod", c.pod_name).field("pod_uid", c.pod_uid);
  w.field("container", c.name);
  if (!c.service_account.empty()) w.field("service_account", c.service_account);
  if (!c.workload_kind.empty()) {
    w.key("workload").begin_object();
    w.field("kind", c.workload_kind).field("name", c.workload_name);
    w.end_object();
  }
  w.key("labels").begin_object();
  for (const auto& [key, value] : c.pod_labels) w.data_key(key).value(value);
  w.end_object();
  w.end_object();
}

// Opens metadata with what every record's carries: the OCSF version and the product. The caller
// adds the record's own members and closes it.
void begin_metadata(JsonWriter& w) {
  w.key("metadata").begin_object();
  w.field("version", kVersion);
  w.key("product").begin_object();
  w.field("name", "palisade").field("vendor_name", "palisade").field("version", PALISADE_VERSION);
  w.end_object();
}

// The profiles used, in the declaration's order.
void write_profiles(JsonWriter& w, const ProfileSet& used) {
  w.key("profiles").begin_array();
  for (const ProfileDeclaration& p : profile_declarations()) {
    if (used.has(p.profile)) w.value(p.name);
  }
  w.end_array();
}

}  // namespace palisade::ocsf
