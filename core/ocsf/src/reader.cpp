#include "palisade/ocsf/reader.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <stdexcept>

#include "palisade/ocsf/container_object.h"
#include "palisade/ocsf/mapping.h"

namespace palisade::ocsf {
namespace {

using nlohmann::json;

template <typename T>
T get_or(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : it->get<T>();
}

ProcessRef view_from(const json& p) {
  if (!p.is_object()) return nullptr;
  auto view = std::make_shared<ProcessView>();
  view->pid = get_or<uint32_t>(p, "pid", 0);
  if (p.contains("file")) view->exe = get_or<std::string>(p["file"], "path", "");
  view->cmdline = get_or<std::string>(p, "cmd_line", "");
  view->comm = get_or<std::string>(p, "name", "");
  if (p.contains("user"))
    view->uid = static_cast<uint32_t>(std::stoul(get_or<std::string>(p["user"], "uid", "0")));
  view->auid = get_or<uint32_t>(p, "auid", TaskIdentity::kNoLoginUid);
  const std::string uid = get_or<std::string>(p, "uid", "");
  const auto dash = uid.find('-');
  if (dash != std::string::npos) view->start_ns = std::stoull(uid.substr(dash + 1));
  return view;
}

void endpoint_from(const json& j, NetEndpoint& ep, uint16_t& family) {
  if (!j.is_object()) return;
  const std::string ip = get_or<std::string>(j, "ip", "");
  ep.port = get_or<uint16_t>(j, "port", 0);
  if (ip.empty()) return;
  family = ip.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  inet_pton(family, ip.c_str(), ep.addr.data());
}

EventKind kind_from(const std::string& name) {
  for (const auto& info : event_kinds()) {
    if (info.name == name) return info.kind;
  }
  throw std::runtime_error("unknown event kind '" + name + "'");
}

// The container object and the Kubernetes identity the formatter writes, back into a view.
void read_container(const json& j, const json& u, Event& e) {
  e.container_unresolved = get_or<std::string>(u, "container_unresolved", "");
  if (!j.contains("container") || !j["container"].is_object()) return;
  const json& c = j["container"];
  ContainerView view;
  view.id = get_or<std::string>(c, "uid", "");
  view.name = get_or<std::string>(c, "name", "");
  if (c.contains("image")) view.image = get_or<std::string>(c["image"], "name", "");
  view.runtime = get_or<std::string>(c, "runtime", "containerd");
  for (const auto& label : c.value("labels", json::array())) {
    const std::string text = label.get<std::string>();
    const auto eq = text.find('=');
    view.labels.emplace(text.substr(0, eq), eq == std::string::npos ? "" : text.substr(eq + 1));
  }
  std::string name = view.name;
  ContainerRef ref = make_container_view(std::move(view));
  // make_container_view takes the names from the kubelet's labels; keep what was written.
  auto copy = std::make_shared<ContainerView>(*ref);
  copy->name = name;
  if (u.contains("kubernetes")) {
    const json& k = u["kubernetes"];
    copy->pod_namespace = get_or<std::string>(k, "namespace", copy->pod_namespace);
    copy->pod_name = get_or<std::string>(k, "pod", copy->pod_name);
    copy->pod_uid = get_or<std::string>(k, "pod_uid", copy->pod_uid);
    copy->service_account = get_or<std::string>(k, "service_account", "");
    if (k.contains("workload") && k["workload"].is_object()) {
      copy->workload_kind = get_or<std::string>(k["workload"], "kind", "");
      copy->workload_name = get_or<std::string>(k["workload"], "name", "");
    }
    if (k.contains("labels") && k["labels"].is_object()) {
      for (const auto& [key, value] : k["labels"].items()) {
        if (value.is_string()) copy->pod_labels[key] = value.get<std::string>();
      }
    }
  }
  render_container_json(*copy);
  e.container = std::move(copy);
}

// A VM event as the formatter wrote it: the device is the VM, its details under unmapped.
void read_vm(const json& j, const json& u, Event& e) {
  auto vm = std::make_shared<VmView>();
  const json device = j.contains("device") ? j["device"] : json::object();
  vm->name = get_or<std::string>(device, "name", "");
  vm->uuid = get_or<std::string>(device, "uid", "");
  vm->hypervisor = get_or<std::string>(device, "hypervisor", "");
  const json details = u.contains("vm") ? u["vm"] : json::object();
  vm->host = get_or<std::string>(details, "host", "");
  vm->state = get_or<std::string>(details, "state", "");
  vm->vcpus = get_or<uint32_t>(details, "vcpus", 0);
  vm->memory_kib = get_or<uint64_t>(details, "memory_kib", 0);
  const json labels = details.contains("labels") ? details["labels"] : json::object();
  const json disks = details.contains("disks") ? details["disks"] : json::array();
  const json nics = details.contains("nics") ? details["nics"] : json::array();
  for (const auto& [key, value] : labels.items()) {
    if (value.is_string()) vm->labels.emplace_back(key, value.get<std::string>());
  }
  for (const auto& d : disks) {
    vm->disks.push_back(
        VmDisk{get_or<std::string>(d, "target", ""), get_or<std::string>(d, "device", ""),
               get_or<std::string>(d, "type", ""), get_or<std::string>(d, "source", ""),
               get_or<std::string>(d, "format", ""), get_or<bool>(d, "read_only", false)});
  }
  for (const auto& n : nics) {
    vm->nics.push_back(
        VmNic{get_or<std::string>(n, "mac", ""), get_or<std::string>(n, "type", ""),
              get_or<std::string>(n, "source", ""), get_or<std::string>(n, "target", ""),
              get_or<std::string>(n, "model", ""), get_or<bool>(n, "link_up", true)});
  }
  e.vm = std::move(vm);
  VmActivity& a = e.vm_activity;
  a.action = get_or<std::string>(u, "action", "");
  a.detail = get_or<std::string>(u, "detail", "");
  a.message = get_or<std::string>(j, "message", "");
  if (u.contains("stats")) {
    const json& st = u["stats"];
    a.interval_ms = get_or<uint64_t>(st, "interval_ms", 0);
    a.cpu_percent = get_or<int64_t>(st, "cpu_percent", -1);
    a.net_rx_bps = get_or<int64_t>(st, "net_rx_bps", -1);
    a.net_tx_bps = get_or<int64_t>(st, "net_tx_bps", -1);
    a.disk_read_bps = get_or<int64_t>(st, "disk_read_bps", -1);
    a.disk_write_bps = get_or<int64_t>(st, "disk_write_bps", -1);
    a.balloon_rss_kib = get_or<int64_t>(st, "balloon_rss_kib", -1);
  }
  if (u.contains("before")) a.before_json = u["before"].dump();
  if (u.contains("after")) a.after_json = u["after"].dump();
}

}  // namespace

std::optional<Event> event_from_ocsf(const json& j) {
  const int class_uid = get_or<int>(j, "class_uid", 0);
  if (class_uid == 0 || class_uid == 2004) return std::nullopt;
  if (!j.contains("unmapped") || !j["unmapped"].contains("palisade")) return std::nullopt;
  const json& u = j["unmapped"]["palisade"];
  Event e;
  e.kind = kind_from(get_or<std::string>(u, "event", ""));
  // palisade's own record of a kind has the class the mapping declares for it; anything else
  // is not one of ours (or was edited) and is not replayed as if it were.
  const KindMapping* mapping = mapping_of(e.kind);
  if (mapping == nullptr || mapping->ocsf_class->class_uid != class_uid) return std::nullopt;
  e.cpu = get_or<uint16_t>(u, "cpu", 0);
  e.mono_ns = get_or<uint64_t>(u, "mono_ns", 0);
  e.wall_ns = get_or<uint64_t>(j, "time", 0) * 1'000'000ULL;
  e.result = get_or<int64_t>(u, "result", 0);
  if (j.contains("metadata")) e.seq = get_or<uint64_t>(j["metadata"], "sequence", 0);
  if (class_of(e.kind) == EventClass::kVirtualMachine) {
    read_vm(j, u, e);  // no process: the VM is the subject
    return e;
  }

  const json actor = j.contains("actor") ? j["actor"].value("process", json()) : json();
  const bool launch = e.kind == EventKind::kProcessExec || e.kind == EventKind::kProcessFork;
  const json subject =
      launch || e.kind == EventKind::kProcessExit ? j.value("process", json()) : actor;
  e.task.tgid = get_or<uint32_t>(subject, "pid", 0);
  e.task.pid = get_or<uint32_t>(subject, "tid", e.task.tgid);
  e.task.euid = get_or<uint32_t>(subject, "euid", 0);
  e.task.egid = get_or<uint32_t>(subject, "egid", 0);
  e.task.uid = get_or<uint32_t>(u, "uid", 0);
  e.task.gid = get_or<uint32_t>(u, "gid", 0);
  const int64_t login = get_or<int64_t>(u, "login_uid", -1);
  e.task.auid = login < 0 ? TaskIdentity::kNoLoginUid : static_cast<uint32_t>(login);
  e.task.comm = get_or<std::string>(u, "comm", "");
  e.task.cgroup_id = get_or<uint64_t>(u, "cgroup_id", 0);
  e.task.mnt_ns = get_or<uint32_t>(u, "mnt_ns", 0);
  e.task.pid_ns = get_or<uint32_t>(u, "pid_ns", 0);

  e.process = view_from(subject);
  if (e.process) {
    auto view = std::const_pointer_cast<ProcessView>(e.process);
    view->cwd = get_or<std::string>(u, "cwd", "");
    e.task.start_ns = view->start_ns;
  }
  e.parent = launch ? view_from(actor) : view_from(subject.value("parent_process", json()));
  if (e.parent) e.task.ppid = e.parent->pid;
  const json lineage = subject.value("lineage", json::array());
  const json pids = u.value("lineage_pids", json::array());
  for (size_t i = 0; i < lineage.size(); ++i) {
    auto a = std::make_shared<ProcessView>();
    a->exe = lineage[i].get<std::string>();
    if (i < pids.size()) a->pid = pids[i].get<uint32_t>();
    e.lineage.push_back(a);
  }
  e.lineage_complete = get_or<bool>(u, "lineage_complete", false);
  read_container(j, u, e);

  switch (class_of(e.kind)) {
    case EventClass::kProcess:
      if (e.process) e.exe = e.process->exe;
      e.exec_filename = get_or<std::string>(u, "exec_filename", "");
      e.stdio_sockets = get_or<uint32_t>(u, "stdio_sockets", 0);
      e.exit_code = get_or<uint32_t>(u, "wait_status", 0);
      e.target_pid = get_or<uint32_t>(u, "child_pid", 0);
      break;
    case EventClass::kFile:
      if (j.contains("file")) e.path = get_or<std::string>(j["file"], "path", "");
      if (j.contains("file_result")) e.path2 = get_or<std::string>(j["file_result"], "path", "");
      e.flags = get_or<uint32_t>(u, "flags", 0);
      e.mode = get_or<uint32_t>(u, "mode", 0);
      break;
    case EventClass::kNetwork: {
      const bool inbound = e.kind == EventKind::kNetAccept;
      const bool local_only = e.kind == EventKind::kNetBind || e.kind == EventKind::kNetListen;
      endpoint_from(j.value("src_endpoint", json()), inbound ? e.remote : e.local, e.family);
      endpoint_from(j.value("dst_endpoint", json()), inbound || local_only ? e.local : e.remote,
                    e.family);
      if (j.contains("connection_info")) {
        e.protocol = get_or<uint16_t>(j["connection_info"], "protocol_num", 6);
      }
      break;
    }
    case EventClass::kPrivilege:
      e.old_uid = get_or<uint32_t>(u, "old_uid", 0);
      e.old_euid = get_or<uint32_t>(u, "old_euid", 0);
      e.args[0] = get_or<uint64_t>(u, "request", 0);
      e.args[1] = get_or<uint64_t>(u, "target_pid", 0);
      if (j.contains("driver") && j["driver"].contains("file")) {
        e.path = get_or<std::string>(j["driver"]["file"], "path", "");
      }
      if (e.kind == EventKind::kPrivMemfd && j.contains("file")) {
        const std::string name = get_or<std::string>(j["file"], "name", "");
        e.strings.push_back(name.rfind("memfd:", 0) == 0 ? name.substr(6) : name);
      }
      break;
    case EventClass::kEnforcement: {
      // Denials replay as what they refused; which hook and rule stays in the OCSF text.
      const json f = u.value("enforcement", json::object());
      e.enforcement.enforced = get_or<std::string>(f, "verdict", "") == "denied";
      e.enforcement.policy = get_or<std::string>(f, "policy", "");
      e.enforcement.rule_text = get_or<std::string>(f, "rule", "");
      e.enforcement.workload = get_or<std::string>(f, "workload", "");
      if (e.kind == EventKind::kFileDeny && j.contains("file")) {
        e.path = get_or<std::string>(j["file"], "path", "");
      }
      if (e.kind == EventKind::kExecDeny && j.contains("process") &&
          j["process"].contains("file")) {
        e.exe = e.path = get_or<std::string>(j["process"]["file"], "path", "");
      }
      endpoint_from(j.value("src_endpoint", json()), e.local, e.family);
      endpoint_from(j.value("dst_endpoint", json()), e.remote, e.family);
      break;
    }
    case EventClass::kVirtualMachine:
      break;
  }
  return e;
}

}  // namespace palisade::ocsf
