#include <arpa/inet.h>

#include <charconv>
#include <memory>
#include <string>

#include "palisade/base/path_text.h"
#include "palisade/model/container_view.h"
#include "palisade/policies/field.h"

namespace palisade::policies {
namespace {

using Visit = std::function<bool(const FieldValue&)>;

// The initial pid namespace always has this inode number (PROC_PID_INIT_INO).
constexpr uint32_t kHostPidNs = 0xEFFFFFFCU;

FieldValue text(std::string_view s) {
  return FieldValue{true, s, 0};
}
FieldValue number(int64_t n) {
  return FieldValue{true, {}, n};
}

bool parse_int(std::string_view s, int64_t& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool is_file(const Event& e) {
  return class_of(e.kind) == EventClass::kFile;
}
bool is_net(const Event& e) {
  return class_of(e.kind) == EventClass::kNetwork;
}

// Test events: process views are shared and immutable, so a setter replaces the view.
ProcessView& edit(ProcessRef& ref) {
  auto copy = std::make_shared<ProcessView>(ref ? *ref : ProcessView{});
  ref = copy;
  return *copy;
}

ContainerView& edit(ContainerRef& ref) {
  auto copy = std::make_shared<ContainerView>(ref ? *ref : ContainerView{});
  copy->json.clear();
  ref = copy;
  return *copy;
}

using CV = ContainerView;

// Container and pod fields: absent for host processes and when the value is unknown.
template <std::string CV::*Member>
FieldValue read_container(const Event& e) {
  return e.container && !(*e.container.*Member).empty() ? text(*e.container.*Member) : FieldValue{};
}

template <std::string CV::*Member>
bool assign_container(Event& e, std::string_view s) {
  edit(e.container).*Member = std::string(s);
  return true;
}

bool in_container(const Event& e) {
  return e.container || !e.container_unresolved.empty() ||
         (e.task.pid_ns != 0 && e.task.pid_ns != kHostPidNs);
}

bool set_kind(Event& e, std::string_view s) {
  for (const auto& info : event_kinds()) {
    if (info.name == s) {
      e.kind = info.kind;
      return true;
    }
  }
  return false;
}

bool set_u32(uint32_t& field, std::string_view s) {
  int64_t v = 0;
  if (!parse_int(s, v) || v < 0 || v > UINT32_MAX) return false;
  field = static_cast<uint32_t>(v);
  return true;
}

bool set_u16(uint16_t& field, std::string_view s) {
  int64_t v = 0;
  if (!parse_int(s, v) || v < 0 || v > UINT16_MAX) return false;
  field = static_cast<uint16_t>(v);
  return true;
}

// Addresses are rendered into a per-thread buffer: one event is evaluated at a time and the view
// is only used during that evaluation.
FieldValue address(const Event& e, const NetEndpoint& ep) {
  if (!is_net(e)) return {};
  thread_local std::string buffer;
  buffer = ep.to_string(e.family);
  return text(buffer);
}

bool set_address(Event& e, NetEndpoint& ep, std::string_view s) {
  const std::string value(s);
  const int family = value.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(family, value.c_str(), ep.addr.data()) != 1) return false;
  e.family = static_cast<uint16_t>(family);
  return true;
}

FieldValue process_text(const ProcessRef& p, std::string ProcessView::*member) {
  return p ? text(*p.*member) : FieldValue{};
}

bool any_ancestor_exe(const Event& e, const Visit& visit) {
  for (const auto& a : e.lineage) {
    if (visit(text(a->exe))) return true;
  }
  return false;
}

bool set_ancestor_exe(Event& e, std::string_view s) {
  auto view = std::make_shared<ProcessView>();
  view->exe = std::string(s);
  e.lineage.push_back(view);
  return true;
}

// Virtual machine fields: absent on events without a VM.
using VV = VmView;
VmView& edit(VmRef& ref) {
  auto copy = std::make_shared<VmView>(ref ? *ref : VmView{});
  ref = copy;
  return *copy;
}

template <std::string VV::*Member>
FieldValue read_vm(const Event& e) {
  return e.vm ? text(*e.vm.*Member) : FieldValue{};
}

template <std::string VV::*Member>
bool assign_vm(Event& e, std::string_view s) {
  edit(e.vm).*Member = std::string(s);
  return true;
}

bool any_vm_label(const Event& e, const Visit& visit) {
  if (!e.vm) return false;
  thread_local std::string pair;
  for (const auto& [key, value] : e.vm->labels) {
    pair = key + "=" + value;
    if (visit(text(pair))) return true;
  }
  return false;
}

bool set_vm_label(Event& e, std::string_view s) {
  const size_t eq = s.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  edit(e.vm).labels.emplace_back(std::string(s.substr(0, eq)), std::string(s.substr(eq + 1)));
  return true;
}

bool is_vm(const Event& e) {
  return class_of(e.kind) == EventClass::kVirtualMachine;
}

// Rates are absent unless the sample measured them (-1).
template <int64_t VmActivity::*Member>
FieldValue read_rate(const Event& e) {
  const int64_t v = e.vm_activity.*Member;
  return e.kind == EventKind::kVmStats && v >= 0 ? number(v) : FieldValue{};
}

template <int64_t VmActivity::*Member>
bool assign_rate(Event& e, std::string_view s) {
  return parse_int(s, e.vm_activity.*Member);
}

constexpr FieldDef kFields[] = {
    {"event.kind", FieldType::kString,
     "what happened: exec, fork, exit, open, unlink, rmdir, rename, chmod, chown, connect, accept, "
     "bind, listen, setuid, setgid, capset, ptrace, module_load, mount, unshare, setns, "
     "memfd_create, bpf, net_deny, exec_deny, file_deny, vm_inventory, vm_lifecycle, vm_host, "
     "vm_stats, vm_guest_change, vm_inspection",
     [](const Event& e) { return text(kind_name(e.kind)); }, nullptr, set_kind},
    {"event.class", FieldType::kString, "process, file, network, privilege, enforcement or vm",
     [](const Event& e) { return text(class_name(class_of(e.kind))); }, nullptr, nullptr},
    {"event.result", FieldType::kInt, "the call's return value (negative errno on failure)",
     [](const Event& e) { return number(e.result); }, nullptr,
     [](Event& e, std::string_view s) { return parse_int(s, e.result); }},
    {"event.failed", FieldType::kInt, "1 when the call failed, else 0",
     [](const Event& e) {
       return number(e.result < 0 && e.kind != EventKind::kProcessExit && e.result != -115 ? 1 : 0);
     },
     nullptr, nullptr},

    {"process.pid", FieldType::kInt, "the acting process id",
     [](const Event& e) { return number(e.task.tgid); }, nullptr,
     [](Event& e, std::string_view s) {
       return set_u32(e.task.tgid, s) && set_u32(edit(e.process).pid, s);
     }},
    {"process.ppid", FieldType::kInt, "its parent's process id",
     [](const Event& e) { return number(e.task.ppid); }, nullptr,
     [](Event& e, std::string_view s) { return set_u32(e.task.ppid, s); }},
    {"process.uid", FieldType::kInt, "real user id",
     [](const Event& e) { return number(e.task.uid); }, nullptr,
     [](Event& e, std::string_view s) { return set_u32(e.task.uid, s); }},
    {"process.euid", FieldType::kInt, "effective user id",
     [](const Event& e) { return number(e.task.euid); }, nullptr,
     [](Event& e, std::string_view s) { return set_u32(e.task.euid, s); }},
    {"process.auid", FieldType::kInt, "login user id (survives sudo); 4294967295 when unset",
     [](const Event& e) { return number(e.task.auid); }, nullptr,
     [](Event& e, std::string_view s) { return set_u32(e.task.auid, s); }},
    {"process.exe", FieldType::kString, "executable path",
     [](const Event& e) { return process_text(e.process, &ProcessView::exe); }, nullptr,
     [](Event& e, std::string_view s) {
       edit(e.process).exe = std::string(s);
       return true;
     }},
    {"process.name", FieldType::kString, "executable file name (the comm when the path is unknown)",
     [](const Event& e) {
       if (e.process && !e.process->exe.empty()) return text(base::path_basename(e.process->exe));
       return text(e.task.comm);
     },
     nullptr, nullptr},
    {"process.comm", FieldType::kString, "the kernel's 15-character task name",
     [](const Event& e) { return text(e.task.comm); }, nullptr,
     [](Event& e, std::string_view s) {
       e.task.comm = std::string(s);
       return true;
     }},
    {"process.cmdline", FieldType::kString, "command line, arguments joined by spaces",
     [](const Event& e) { return process_text(e.process, &ProcessView::cmdline); }, nullptr,
     [](Event& e, std::string_view s) {
       edit(e.process).cmdline = std::string(s);
       return true;
     }},
    {"process.cwd", FieldType::kString, "working directory at exec",
     [](const Event& e) { return process_text(e.process, &ProcessView::cwd); }, nullptr,
     [](Event& e, std::string_view s) {
       edit(e.process).cwd = std::string(s);
       return true;
     }},
    {"process.in_container", FieldType::kInt,
     "1 when the process runs in a container: one the agent identified, one it has not identified "
     "yet, or a pid namespace other than the host's",
     [](const Event& e) { return number(in_container(e) ? 1 : 0); }, nullptr,
     [](Event& e, std::string_view s) {
       e.task.pid_ns = s == "1" ? kHostPidNs + 1 : kHostPidNs;
       return s == "0" || s == "1";
     }},
    {"process.cgroup_id", FieldType::kInt, "cgroup v2 id (identifies a container)",
     [](const Event& e) { return number(static_cast<int64_t>(e.task.cgroup_id)); }, nullptr,
     [](Event& e, std::string_view s) {
       int64_t v = 0;
       if (!parse_int(s, v)) return false;
       e.task.cgroup_id = static_cast<uint64_t>(v);
       return true;
     }},
    {"parent.exe", FieldType::kString, "the parent's executable path",
     [](const Event& e) { return process_text(e.parent, &ProcessView::exe); }, nullptr,
     [](Event& e, std::string_view s) {
       edit(e.parent).exe = std::string(s);
       return true;
     }},
    {"parent.name", FieldType::kString, "the parent's executable file name",
     [](const Event& e) {
       return e.parent ? text(base::path_basename(e.parent->exe.empty() ? e.parent->comm
                                                                        : e.parent->exe))
                       : FieldValue{};
     },
     nullptr, nullptr},
    {"parent.cmdline", FieldType::kString, "the parent's command line",
     [](const Event& e) { return process_text(e.parent, &ProcessView::cmdline); }, nullptr,
     [](Event& e, std::string_view s) {
       edit(e.parent).cmdline = std::string(s);
       return true;
     }},
    {"container.id", FieldType::kString,
     "the container's id (also for a container the agent has not identified yet, from its cgroup "
     "path); absent for host processes",
     [](const Event& e) {
       if (e.container) return text(e.container->id);
       if (!e.container_unresolved.empty() && e.container_unresolved != "-")
         return text(e.container_unresolved);
       return FieldValue{};
     },
     nullptr,
     [](Event& e, std::string_view s) {
       edit(e.container).id = std::string(s);
       return true;
     }},
    {"container.name", FieldType::kString,
     "the container's name (the kubelet's container name, else its id)", read_container<&CV::name>,
     nullptr, assign_container<&CV::name>},
    {"container.image", FieldType::kString, "the image the container runs, as the runtime names it",
     read_container<&CV::image>, nullptr, assign_container<&CV::image>},
    {"k8s.namespace", FieldType::kString, "the Kubernetes namespace of the container's pod",
     read_container<&CV::pod_namespace>, nullptr, assign_container<&CV::pod_namespace>},
    {"k8s.pod.name", FieldType::kString, "the name of the container's pod",
     read_container<&CV::pod_name>, nullptr, assign_container<&CV::pod_name>},
    {"k8s.pod.uid", FieldType::kString, "the uid of the container's pod",
     read_container<&CV::pod_uid>, nullptr, assign_container<&CV::pod_uid>},
    {"k8s.service_account", FieldType::kString,
     "the pod's service account (from the Kubernetes API)", read_container<&CV::service_account>,
     nullptr, assign_container<&CV::service_account>},
    {"k8s.workload.kind", FieldType::kString,
     "the kind of the pod's top-level controller: Deployment (through its ReplicaSet), "
     "StatefulSet, DaemonSet, CronJob (through its Job), Job, or Pod for a bare pod",
     read_container<&CV::workload_kind>, nullptr, assign_container<&CV::workload_kind>},
    {"k8s.workload.name", FieldType::kString, "the name of the pod's top-level controller",
     read_container<&CV::workload_name>, nullptr, assign_container<&CV::workload_name>},

    {"ancestor.exe", FieldType::kString,
     "any ancestor's executable path (parent up to init); a test matches if any ancestor does",
     [](const Event&) { return FieldValue{}; }, any_ancestor_exe, set_ancestor_exe},

    {"exec.filename", FieldType::kString, "the path as given to execve (scripts: the script)",
     [](const Event& e) {
       return e.kind == EventKind::kProcessExec ? text(e.exec_filename) : FieldValue{};
     },
     nullptr,
     [](Event& e, std::string_view s) {
       e.exec_filename = std::string(s);
       return true;
     }},
    {"exec.stdio_socket", FieldType::kInt,
     "1 when stdin, stdout or stderr of the new program is a socket (a reverse shell's mark)",
     [](const Event& e) {
       return e.kind == EventKind::kProcessExec ? number(e.stdio_sockets != 0 ? 1 : 0)
                                                : FieldValue{};
     },
     nullptr, [](Event& e, std::string_view s) { return set_u32(e.stdio_sockets, s); }},
    {"exec.argc", FieldType::kInt, "number of arguments",
     [](const Event& e) {
       return e.kind == EventKind::kProcessExec ? number(static_cast<int64_t>(e.argv.size()))
                                                : FieldValue{};
     },
     nullptr, nullptr},

    {"file.path", FieldType::kString, "the file acted on (rename: the source)",
     [](const Event& e) {
       if (is_file(e) || e.kind == EventKind::kPrivModule) return text(e.path);
       return FieldValue{};
     },
     nullptr,
     [](Event& e, std::string_view s) {
       e.path = std::string(s);
       return true;
     }},
    {"file.name", FieldType::kString, "its file name",
     [](const Event& e) { return is_file(e) ? text(base::path_basename(e.path)) : FieldValue{}; },
     nullptr, nullptr},
    {"file.dir", FieldType::kString, "its directory",
     [](const Event& e) { return is_file(e) ? text(base::path_dirname(e.path)) : FieldValue{}; },
     nullptr, nullptr},
    {"file.new_path", FieldType::kString, "rename destination",
     [](const Event& e) { return e.kind == EventKind::kFileRename ? text(e.path2) : FieldValue{}; },
     nullptr,
     [](Event& e, std::string_view s) {
       e.path2 = std::string(s);
       return true;
     }},
    {"file.target", FieldType::kString,
     "the path the file ends up at: rename destination, else file.path",
     [](const Event& e) {
       if (e.kind == EventKind::kFileRename) return text(e.path2);
       return is_file(e) ? text(e.path) : FieldValue{};
     },
     nullptr, nullptr},
    {"file.flags", FieldType::kInt, "open flags (O_*)",
     [](const Event& e) { return is_file(e) ? number(e.flags) : FieldValue{}; }, nullptr,
     [](Event& e, std::string_view s) { return set_u32(e.flags, s); }},
    {"file.mode", FieldType::kInt, "mode given to open(O_CREAT) or chmod",
     [](const Event& e) { return is_file(e) ? number(e.mode) : FieldValue{}; }, nullptr,
     [](Event& e, std::string_view s) { return set_u32(e.mode, s); }},

    {"net.protocol", FieldType::kString, "tcp or udp",
     [](const Event& e) {
       return is_net(e) ? text(e.protocol == 17 ? "udp" : "tcp") : FieldValue{};
     },
     nullptr,
     [](Event& e, std::string_view s) {
       e.protocol = s == "udp" ? 17 : 6;
       return s == "udp" || s == "tcp";
     }},
    {"net.remote_ip", FieldType::kString, "peer address",
     [](const Event& e) { return address(e, e.remote); }, nullptr,
     [](Event& e, std::string_view s) { return set_address(e, e.remote, s); }},
    {"net.remote_port", FieldType::kInt, "peer port",
     [](const Event& e) { return is_net(e) ? number(e.remote.port) : FieldValue{}; }, nullptr,
     [](Event& e, std::string_view s) { return set_u16(e.remote.port, s); }},
    {"net.local_ip", FieldType::kString, "local address",
     [](const Event& e) { return address(e, e.local); }, nullptr,
     [](Event& e, std::string_view s) { return set_address(e, e.local, s); }},
    {"net.local_port", FieldType::kInt, "local port (listen, bind: the port being opened)",
     [](const Event& e) { return is_net(e) ? number(e.local.port) : FieldValue{}; }, nullptr,
     [](Event& e, std::string_view s) { return set_u16(e.local.port, s); }},

    {"priv.new_uid", FieldType::kInt,
     "setuid: the effective uid after the call; the ids requested are in the event details",
     [](const Event& e) {
       return e.kind == EventKind::kPrivSetuid ? number(e.task.euid) : FieldValue{};
     },
     nullptr, [](Event& e, std::string_view s) { return set_u32(e.task.euid, s); }},
    {"priv.old_uid", FieldType::kInt, "setuid: the effective uid before the call",
     [](const Event& e) {
       return e.kind == EventKind::kPrivSetuid ? number(e.old_euid) : FieldValue{};
     },
     nullptr, [](Event& e, std::string_view s) { return set_u32(e.old_euid, s); }},
    {"priv.target_pid", FieldType::kInt, "ptrace: the traced process",
     [](const Event& e) {
       return e.kind == EventKind::kPrivPtrace ? number(static_cast<int64_t>(e.args[1]))
                                               : FieldValue{};
     },
     nullptr,
     [](Event& e, std::string_view s) {
       int64_t v = 0;
       if (!parse_int(s, v)) return false;
       e.args[1] = static_cast<uint64_t>(v);
       return true;
     }},

    {"vm.name", FieldType::kString, "virtual machine events: the libvirt domain name",
     read_vm<&VV::name>, nullptr, assign_vm<&VV::name>},
    {"vm.uuid", FieldType::kString, "the domain's UUID", read_vm<&VV::uuid>, nullptr,
     assign_vm<&VV::uuid>},
    {"vm.host", FieldType::kString, "the libvirt URI the VM was seen through", read_vm<&VV::host>,
     nullptr, assign_vm<&VV::host>},
    {"vm.state", FieldType::kString,
     "the domain's state when the event was made: running, paused, shutoff, crashed, ...",
     read_vm<&VV::state>, nullptr, assign_vm<&VV::state>},
    {"vm.label", FieldType::kString,
     "the VM's labels (from its <metadata>) as key=value, e.g. vm.label = \"tier=web\"", nullptr,
     any_vm_label, set_vm_label},
    {"vm.action", FieldType::kString,
     "what happened: the lifecycle event (started, crashed, ...), the host event (lost, "
     "restored), the guest change kind (user-added, authorized-key-added, ...), or the "
     "inspection outcome",
     [](const Event& e) { return is_vm(e) ? text(e.vm_activity.action) : FieldValue{}; }, nullptr,
     [](Event& e, std::string_view s) {
       e.vm_activity.action = std::string(s);
       return true;
     }},
    {"vm.detail", FieldType::kString,
     "lifecycle: libvirt's reason (booted, destroyed, ...); guest change: what changed (a user "
     "name, a path, a key fingerprint)",
     [](const Event& e) { return is_vm(e) ? text(e.vm_activity.detail) : FieldValue{}; }, nullptr,
     [](Event& e, std::string_view s) {
       e.vm_activity.detail = std::string(s);
       return true;
     }},
    {"vm.cpu_percent", FieldType::kInt, "vm_stats: CPU use of all the VM's vCPUs together, 0-100",
     read_rate<&VmActivity::cpu_percent>, nullptr, assign_rate<&VmActivity::cpu_percent>},
    {"vm.net_tx_bps", FieldType::kInt, "vm_stats: bytes per second the guest sent",
     read_rate<&VmActivity::net_tx_bps>, nullptr, assign_rate<&VmActivity::net_tx_bps>},
    {"vm.net_rx_bps", FieldType::kInt, "vm_stats: bytes per second the guest received",
     read_rate<&VmActivity::net_rx_bps>, nullptr, assign_rate<&VmActivity::net_rx_bps>},
    {"vm.disk_write_bps", FieldType::kInt, "vm_stats: bytes per second written to its disks",
     read_rate<&VmActivity::disk_write_bps>, nullptr, assign_rate<&VmActivity::disk_write_bps>},
    {"vm.disk_read_bps", FieldType::kInt, "vm_stats: bytes per second read from its disks",
     read_rate<&VmActivity::disk_read_bps>, nullptr, assign_rate<&VmActivity::disk_read_bps>},
};

}  // namespace

std::span<const FieldDef> fields() {
  return kFields;
}

std::string render_fields_markdown() {
  std::string out =
      "# Policy fields\n\n"
      "<!-- Generated by `palisade policy fields --markdown` from policies/src/field_table.cpp;\n"
      "     tests/policies/fields_doc_test.cpp fails when this file is stale. -->\n\n"
      "The fields a condition can test (see [policies.md](policies.md)). A comparison on a field "
      "the event does not carry is false, whatever the operator.\n\n"
      "| field | type | meaning |\n|---|---|---|\n";
  for (const auto& f : kFields) {
    out += "| `" + std::string(f.name) + "` | " +
           (f.type == FieldType::kInt ? "number" : "string") + " | " + std::string(f.description) +
           (f.any_of != nullptr ? " (multi-valued)" : "") + " |\n";
  }
  return out;
}

const FieldDef* find_field(std::string_view name) {
  for (const auto& f : kFields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

}  // namespace palisade::policies
