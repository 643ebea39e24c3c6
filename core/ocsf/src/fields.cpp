#include "palisade/ocsf/fields.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>
#include <string_view>

#include "palisade/ocsf/container_object.h"
#include "palisade/ocsf/mapping.h"

namespace palisade::ocsf {
namespace {

using nlohmann::json;
using K = EventKind;

template <typename T>
T get_or(const json& j, const char* key, T fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : it->get<T>();
}

// A decimal number in a string ("1000", the uid part "...-12345"); the fallback when it is not one.
template <typename T>
T number_or(std::string_view text, T fallback) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc() && end == text.data() + text.size() ? value : fallback;
}

template <typename T>
T value_or(const json& v, T fallback) {
  return v.is_null() ? fallback : v.get<T>();
}

// ---- kind sets

constexpr KindSet kVmKinds = KindSet::of_class(EventClass::kVirtualMachine);
constexpr KindSet kHostKinds = [] {
  KindSet set;
  for (EventClass c : {EventClass::kProcess, EventClass::kFile, EventClass::kNetwork,
                       EventClass::kPrivilege, EventClass::kEnforcement}) {
    set = set | KindSet::of_class(c);
  }
  return set;
}();
constexpr KindSet kAllKinds = kHostKinds | kVmKinds;
constexpr KindSet kLaunch{K::kProcessExec, K::kProcessFork};
constexpr KindSet kSubjectIsProcess{K::kProcessExec, K::kProcessFork, K::kProcessExit};
constexpr KindSet kFileKinds = KindSet::of_class(EventClass::kFile);
constexpr KindSet kSocketKinds = KindSet::of_class(EventClass::kNetwork);
constexpr KindSet kDenials = KindSet::of_class(EventClass::kEnforcement);
constexpr KindSet kKernelCalls{K::kPrivMount, K::kPrivUnshare, K::kPrivSetns, K::kPrivBpf};

// ---- readers: views

ProcessRef view_from(const json& p) {
  if (!p.is_object()) return nullptr;
  auto view = std::make_shared<ProcessView>();
  view->pid = get_or<uint32_t>(p, "pid", 0);
  if (p.contains("file")) view->exe = get_or<std::string>(p["file"], "path", "");
  view->cmdline = get_or<std::string>(p, "cmd_line", "");
  view->comm = get_or<std::string>(p, "name", "");
  if (p.contains("user"))
    view->uid = number_or<uint32_t>(get_or<std::string>(p["user"], "uid", "0"), 0);
  view->auid = get_or<uint32_t>(p, "auid", TaskIdentity::kNoLoginUid);
  const std::string uid = get_or<std::string>(p, "uid", "");
  const auto dash = uid.find('-');
  if (dash != std::string::npos) {
    view->start_ns = number_or<uint64_t>(std::string_view(uid).substr(dash + 1), 0);
  }
  return view;
}

ProcessView* mutable_process(Event& e) {
  return const_cast<ProcessView*>(e.process.get());  // the reader owns the views it made
}

// The process the event is about: its task identity, view, parent (but for a launch, whose
// parent is the actor) and lineage.
void read_subject(const json&, const json& p, Event& e) {
  e.task.tgid = get_or<uint32_t>(p, "pid", 0);
  e.task.pid = get_or<uint32_t>(p, "tid", e.task.tgid);
  e.task.euid = get_or<uint32_t>(p, "euid", 0);
  e.task.egid = get_or<uint32_t>(p, "egid", 0);
  e.process = view_from(p);
  if (e.process) e.task.start_ns = e.process->start_ns;
  if (e.process && class_of(e.kind) == EventClass::kProcess) e.exe = e.process->exe;
  if (!kLaunch.has(e.kind)) {
    e.parent = view_from(get_or<json>(p, "parent_process", json()));
    if (e.parent) e.task.ppid = e.parent->pid;
  }
  const json lineage = get_or<json>(p, "lineage", json::array());
  for (const auto& exe : lineage) {
    auto ancestor = std::make_shared<ProcessView>();
    ancestor->exe = exe.get<std::string>();
    e.lineage.push_back(std::move(ancestor));
  }
}

void read_launch_parent(const json&, const json& p, Event& e) {
  e.parent = view_from(p);
  if (e.parent) e.task.ppid = e.parent->pid;
}

void read_lineage_pids(const json&, const json& pids, Event& e) {
  for (size_t i = 0; i < pids.size() && i < e.lineage.size(); ++i) {
    std::const_pointer_cast<ProcessView>(e.lineage[i])->pid = pids[i].get<uint32_t>();
  }
}

void read_cwd(const json&, const json& v, Event& e) {
  if (ProcessView* p = mutable_process(e)) p->cwd = value_or<std::string>(v, "");
}

// The container object and the Kubernetes identity the formatter writes, back into a view.
void read_container(const json& record, const json& c, Event& e) {
  if (!c.is_object()) return;
  ContainerView view;
  view.id = get_or<std::string>(c, "uid", "");
  view.name = get_or<std::string>(c, "name", "");
  if (c.contains("image")) view.image = get_or<std::string>(c["image"], "name", "");
  view.runtime = get_or<std::string>(c, "runtime", "containerd");
  const json labels = c.value("labels", json::array());
  for (const auto& label : labels) {
    const std::string text = label.get<std::string>();
    const auto eq = text.find('=');
    view.labels.emplace(text.substr(0, eq), eq == std::string::npos ? "" : text.substr(eq + 1));
  }
  std::string name = view.name;
  ContainerRef ref = make_container_view(std::move(view));
  // make_container_view takes the names from the kubelet's labels; keep what was written.
  auto copy = std::make_shared<ContainerView>(*ref);
  copy->name = name;
  if (const json* k = find_field(record, "unmapped.palisade.kubernetes"); k && k->is_object()) {
    copy->pod_namespace = get_or<std::string>(*k, "namespace", copy->pod_namespace);
    copy->pod_name = get_or<std::string>(*k, "pod", copy->pod_name);
    copy->pod_uid = get_or<std::string>(*k, "pod_uid", copy->pod_uid);
    copy->service_account = get_or<std::string>(*k, "service_account", "");
    const json workload = get_or<json>(*k, "workload", json());
    if (workload.is_object()) {
      copy->workload_kind = get_or<std::string>(workload, "kind", "");
      copy->workload_name = get_or<std::string>(workload, "name", "");
    }
    const json pod_labels = get_or<json>(*k, "labels", json());
    if (pod_labels.is_object()) {
      for (const auto& [key, value] : pod_labels.items()) {
        if (value.is_string()) copy->pod_labels[key] = value.get<std::string>();
      }
    }
  }
  render_container_json(*copy);
  e.container = std::move(copy);
}

// ---- readers: the kinds' own objects

void endpoint_from(const json& j, NetEndpoint& ep, uint16_t& family) {
  if (!j.is_object()) return;
  const std::string ip = get_or<std::string>(j, "ip", "");
  ep.port = get_or<uint16_t>(j, "port", 0);
  if (ip.empty()) return;
  family = ip.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  inet_pton(family, ip.c_str(), ep.addr.data());
}

void read_local(const json&, const json& v, Event& e) {
  endpoint_from(v, e.local, e.family);
}
void read_remote(const json&, const json& v, Event& e) {
  endpoint_from(v, e.remote, e.family);
}

void read_file_path(const json&, const json& v, Event& e) {
  e.path = get_or<std::string>(v, "path", "");
}

VmView& vm_of(Event& e) {
  if (!e.vm) e.vm = std::make_shared<VmView>();
  return const_cast<VmView&>(*e.vm);  // the reader owns the view it made
}

void read_vm_device(const json&, const json& d, Event& e) {
  VmView& vm = vm_of(e);
  vm.name = get_or<std::string>(d, "name", "");
  vm.uuid = get_or<std::string>(d, "uid", "");
  vm.hypervisor = get_or<std::string>(d, "hypervisor", "");
}

void read_vm_details(const json&, const json& details, Event& e) {
  VmView& vm = vm_of(e);
  vm.host = get_or<std::string>(details, "host", "");
  vm.state = get_or<std::string>(details, "state", "");
  vm.vcpus = get_or<uint32_t>(details, "vcpus", 0);
  vm.memory_kib = get_or<uint64_t>(details, "memory_kib", 0);
  const json labels = get_or<json>(details, "labels", json::object());
  const json disks = get_or<json>(details, "disks", json::array());
  const json nics = get_or<json>(details, "nics", json::array());
  for (const auto& [key, value] : labels.items()) {
    if (value.is_string()) vm.labels.emplace_back(key, value.get<std::string>());
  }
  for (const auto& d : disks) {
    vm.disks.push_back(
        VmDisk{get_or<std::string>(d, "target", ""), get_or<std::string>(d, "device", ""),
               get_or<std::string>(d, "type", ""), get_or<std::string>(d, "source", ""),
               get_or<std::string>(d, "format", ""), get_or<bool>(d, "read_only", false)});
  }
  for (const auto& n : nics) {
    vm.nics.push_back(VmNic{get_or<std::string>(n, "mac", ""), get_or<std::string>(n, "type", ""),
                            get_or<std::string>(n, "source", ""),
                            get_or<std::string>(n, "target", ""),
                            get_or<std::string>(n, "model", ""), get_or<bool>(n, "link_up", true)});
  }
}

void read_vm_stats(const json&, const json& st, Event& e) {
  VmActivity& a = e.vm_activity;
  a.interval_ms = get_or<uint64_t>(st, "interval_ms", 0);
  a.cpu_percent = get_or<int64_t>(st, "cpu_percent", -1);
  a.net_rx_bps = get_or<int64_t>(st, "net_rx_bps", -1);
  a.net_tx_bps = get_or<int64_t>(st, "net_tx_bps", -1);
  a.disk_read_bps = get_or<int64_t>(st, "disk_read_bps", -1);
  a.disk_write_bps = get_or<int64_t>(st, "disk_write_bps", -1);
  a.balloon_rss_kib = get_or<int64_t>(st, "balloon_rss_kib", -1);
}

void read_enforcement(const json&, const json& f, Event& e) {
  e.enforcement.enforced = get_or<std::string>(f, "verdict", "") == "denied";
  e.enforcement.policy = get_or<std::string>(f, "policy", "");
  e.enforcement.rule_text = get_or<std::string>(f, "rule", "");
  e.enforcement.workload = get_or<std::string>(f, "workload", "");
}

// Readers of one member each.
void read_time(const json&, const json& v, Event& e) {
  e.wall_ns = value_or<uint64_t>(v, 0) * 1'000'000ULL;
}
void read_sequence(const json&, const json& v, Event& e) {
  e.seq = value_or<uint64_t>(v, 0);
}
void read_cpu(const json&, const json& v, Event& e) {
  e.cpu = value_or<uint16_t>(v, 0);
}
void read_mono(const json&, const json& v, Event& e) {
  e.mono_ns = value_or<uint64_t>(v, 0);
}
void read_result(const json&, const json& v, Event& e) {
  e.result = value_or<int64_t>(v, 0);
}
void read_comm(const json&, const json& v, Event& e) {
  e.task.comm = value_or<std::string>(v, "");
}
void read_cgroup(const json&, const json& v, Event& e) {
  e.task.cgroup_id = value_or<uint64_t>(v, 0);
}
void read_mnt_ns(const json&, const json& v, Event& e) {
  e.task.mnt_ns = value_or<uint32_t>(v, 0);
}
void read_pid_ns(const json&, const json& v, Event& e) {
  e.task.pid_ns = value_or<uint32_t>(v, 0);
}
void read_uid(const json&, const json& v, Event& e) {
  e.task.uid = value_or<uint32_t>(v, 0);
}
void read_gid(const json&, const json& v, Event& e) {
  e.task.gid = value_or<uint32_t>(v, 0);
}
void read_login_uid(const json&, const json& v, Event& e) {
  const int64_t login = value_or<int64_t>(v, -1);
  e.task.auid = login < 0 ? TaskIdentity::kNoLoginUid : static_cast<uint32_t>(login);
}
void read_lineage_complete(const json&, const json& v, Event& e) {
  e.lineage_complete = value_or<bool>(v, false);
}
void read_unresolved(const json&, const json& v, Event& e) {
  e.container_unresolved = value_or<std::string>(v, "");
}
void read_exec_filename(const json&, const json& v, Event& e) {
  e.exec_filename = value_or<std::string>(v, "");
}
void read_stdio_sockets(const json&, const json& v, Event& e) {
  e.stdio_sockets = value_or<uint32_t>(v, 0);
}
void read_wait_status(const json&, const json& v, Event& e) {
  e.exit_code = value_or<uint32_t>(v, 0);
}
void read_child_pid(const json&, const json& v, Event& e) {
  e.target_pid = value_or<uint32_t>(v, 0);
}
void read_path2(const json&, const json& v, Event& e) {
  e.path2 = get_or<std::string>(v, "path", "");
}
void read_flags(const json&, const json& v, Event& e) {
  e.flags = value_or<uint32_t>(v, 0);
}
void read_mode(const json&, const json& v, Event& e) {
  e.mode = value_or<uint32_t>(v, 0);
}
void read_protocol(const json&, const json& v, Event& e) {
  e.protocol = get_or<uint16_t>(v, "protocol_num", 6);
}
void read_old_uid(const json&, const json& v, Event& e) {
  e.old_uid = value_or<uint32_t>(v, 0);
}
void read_old_euid(const json&, const json& v, Event& e) {
  e.old_euid = value_or<uint32_t>(v, 0);
}
void read_request(const json&, const json& v, Event& e) {
  e.args[0] = value_or<uint64_t>(v, 0);
}
void read_target_pid(const json&, const json& v, Event& e) {
  e.args[1] = value_or<uint64_t>(v, 0);
}
void read_module_file(const json&, const json& v, Event& e) {
  e.path = get_or<std::string>(v, "path", "");
}
void read_memfd_name(const json&, const json& v, Event& e) {
  const std::string name = get_or<std::string>(v, "name", "");
  e.strings.push_back(name.rfind("memfd:", 0) == 0 ? name.substr(6) : name);
}
void read_denied_image(const json&, const json& v, Event& e) {
  e.exe = e.path = get_or<std::string>(v, "path", "");
}
void read_vm_message(const json&, const json& v, Event& e) {
  e.vm_activity.message = value_or<std::string>(v, "");
}
void read_vm_action(const json&, const json& v, Event& e) {
  e.vm_activity.action = value_or<std::string>(v, "");
}
void read_vm_detail(const json&, const json& v, Event& e) {
  e.vm_activity.detail = value_or<std::string>(v, "");
}
void read_vm_before(const json&, const json& v, Event& e) {
  e.vm_activity.before_json = v.dump();
}
void read_vm_after(const json&, const json& v, Event& e) {
  e.vm_activity.after_json = v.dump();
}

const FieldDeclaration kFields[] = {
    // The record: class and activity from the mapping (core/ocsf/src/mapping.cpp).
    {"class_uid", kAllKinds, "the kind's class (mapping.cpp)"},
    {"class_name", kAllKinds, "the kind's class (mapping.cpp)"},
    {"category_uid", kAllKinds, "the class's category"},
    {"category_name", kAllKinds, "the class's category"},
    {"activity_id", kAllKinds, "the kind's activity; a failed or refused connect's"},
    {"activity_name", kAllKinds, "the kind's activity"},
    {"type_uid", kAllKinds, "class_uid * 100 + activity_id"},
    {"severity_id", kAllKinds,
     "Informational; Medium for a lost host, a crashed VM or a failed inspection"},
    {"severity", kAllKinds, "as severity_id"},
    {"time", kAllKinds, "the sensor's monotonic stamp plus the boot offset, in ms", true,
     read_time},
    {"status_id", kAllKinds, "Failure when the call failed or a denial was enforced"},
    {"status", kAllKinds, "as status_id"},
    {"status_code", kHostKinds, "the errno name of a failure; EPERM for an enforced denial", false},
    {"status_detail", kHostKinds, "strerror of a failure; the policy's reason for a denial", false},
    {"message", kVmKinds, "what happened to the VM, in words", false, read_vm_message},
    {"action_id", kDenials, "2 Denied when enforced, 1 Allowed in audit mode (security_control)"},
    {"action", kDenials, "as action_id"},
    {"disposition_id", kDenials, "2 Blocked, or 15 Detected in audit mode"},
    {"disposition", kDenials, "as disposition_id"},
    {"metadata.version", kAllKinds, "the OCSF version, 1.3.0"},
    {"metadata.product", kAllKinds, "palisade and its version"},
    {"metadata.profiles", kHostKinds, "the profiles whose attributes the record carries"},
    {"metadata.sequence", kAllKinds, "per-CPU, per-class sequence number (gaps are losses)", true,
     read_sequence},
    {"metadata.uid", kAllKinds, "run.cpu.class.sequence: unique across the agent's runs"},

    // Who saw it.
    {"device", kHostKinds, "the host: hostname, machine id, OS and kernel release"},
    {"device", kVmKinds, "the VM: name, UUID, hypervisor", false, read_vm_device},
    {"observer", kVmKinds, "the hypervisor host running palisade hv"},

    // Who did it, from the process table. The subject first: the views the fields below complete.
    {"actor.process", kHostKinds - kSubjectIsProcess,
     "the acting process: pid, uid (pid-start time), name, cmd_line, file, created_time, user, "
     "auid, tid, euid, egid, parent_process, lineage (executables up to init)",
     true, read_subject},
    {"process", kSubjectIsProcess,
     "the launched or exiting process, with parent_process and lineage", true, read_subject},
    {"actor.process", kLaunch, "the parent of the launched process", true, read_launch_parent},
    {"actor.process", {K::kProcessExit}, "the exiting process itself"},
    {"process",
     {K::kProcessSnapshot, K::kPrivSetuid, K::kPrivSetgid, K::kPrivCapset},
     "the process whose ids or capabilities are reported"},
    {"process", {K::kPrivPtrace}, "the traced process (from the process table)"},
    {"process", {K::kExecDeny}, "the refused image: pid and file", true, nullptr},
    {"process.file", {K::kExecDeny}, "the refused image's path", true, read_denied_image},
    {"actor.user", kHostKinds, "the login user (auid, which survives sudo), else the real user"},
    {"container", kHostKinds, "the container of the acting process (container profile)", false,
     read_container},

    // The kinds' own objects.
    {"exit_code", {K::kProcessExit}, "the exit code, or 128 + the terminating signal"},
    {"file", kFileKinds, "the file: path, name, parent_folder, type", true, read_file_path},
    {"file",
     {K::kFileDeny},
     "the read-only file a workload opened for writing",
     true,
     read_file_path},
    {"file", {K::kPrivMemfd}, "the anonymous file, named memfd:NAME", true, read_memfd_name},
    {"file_result", {K::kFileRename}, "the destination", true, read_path2},
    {"driver.file",
     {K::kPrivModule},
     "the module file (finit_module), else its image from memory",
     true,
     read_module_file},
    {"kernel", kKernelCalls, "the system call, with the target path of a mount"},
    {"src_endpoint", {K::kNetAccept}, "the peer", true, read_remote},
    {"src_endpoint",
     {K::kNetConnect, K::kNetBind, K::kNetListen},
     "the local socket",
     true,
     read_local},
    {"src_endpoint",
     {K::kNetDeny},
     "the workload's socket (the peer for ingress)",
     true,
     read_local},
    {"dst_endpoint",
     {K::kNetAccept, K::kNetBind, K::kNetListen},
     "the local socket",
     true,
     read_local},
    {"dst_endpoint", {K::kNetConnect}, "the peer", true, read_remote},
    {"dst_endpoint", {K::kNetDeny}, "the peer (the workload for ingress)", true, read_remote},
    {"connection_info", kSocketKinds, "protocol, IP version and direction", true, read_protocol},
    {"connection_info", {K::kNetDeny}, "protocol, IP version and direction"},

    // What OCSF has no place for: unmapped.palisade.
    {"unmapped.palisade.event", kAllKinds, "the kind's name (docs/events.md, Kinds)"},
    {"unmapped.palisade.cpu", kHostKinds, "the CPU the sensor saw it on", true, read_cpu},
    {"unmapped.palisade.mono_ns", kHostKinds, "the sensor's monotonic stamp", true, read_mono},
    {"unmapped.palisade.comm", kHostKinds, "the task's comm", true, read_comm},
    {"unmapped.palisade.cgroup_id", kHostKinds, "the task's cgroup v2 id", true, read_cgroup},
    {"unmapped.palisade.mnt_ns", kHostKinds, "mount namespace inode", true, read_mnt_ns},
    {"unmapped.palisade.pid_ns", kHostKinds, "pid namespace inode", true, read_pid_ns},
    {"unmapped.palisade.uid", kHostKinds, "the task's real uid", true, read_uid},
    {"unmapped.palisade.gid", kHostKinds, "the task's real gid", true, read_gid},
    {"unmapped.palisade.login_uid", kHostKinds, "the login uid, -1 when unset", true,
     read_login_uid},
    {"unmapped.palisade.result", kHostKinds, "the call's return value (-errno on failure)", true,
     read_result},
    {"unmapped.palisade.cwd", kHostKinds, "the acting process's working directory", false,
     read_cwd},
    {"unmapped.palisade.lineage_pids", kHostKinds, "the pids of lineage", true, read_lineage_pids},
    {"unmapped.palisade.lineage_complete", kHostKinds, "lineage reaches init", true,
     read_lineage_complete},
    {"unmapped.palisade.container_unresolved", kHostKinds,
     "why a containerized process has no container object", false, read_unresolved},
    {"unmapped.palisade.kubernetes", kHostKinds,
     "namespace, pod, pod_uid, container, service_account, workload, labels (read with the "
     "container)",
     false},
    {"unmapped.palisade.exec_filename",
     {K::kProcessExec},
     "the filename as passed to execve",
     true,
     read_exec_filename},
    {"unmapped.palisade.argv_truncated",
     {K::kProcessExec},
     "argv was cut at sensor.argv_max_bytes"},
    {"unmapped.palisade.stdio_sockets",
     {K::kProcessExec},
     "how many of stdin, stdout, stderr are sockets",
     true,
     read_stdio_sockets},
    {"unmapped.palisade.child_pid", {K::kProcessFork}, "the new process", true, read_child_pid},
    {"unmapped.palisade.wait_status",
     {K::kProcessExit},
     "the wait(2) status",
     true,
     read_wait_status},
    {"unmapped.palisade.open_flags", {K::kFileOpen}, "the open flags by name"},
    {"unmapped.palisade.flags", {K::kFileOpen}, "the open flags", true, read_flags},
    {"unmapped.palisade.flags",
     {K::kPrivMount, K::kPrivUnshare, K::kPrivMemfd},
     "mount, CLONE_* or memfd flags"},
    {"unmapped.palisade.mode",
     {K::kFileOpen, K::kFileChmod},
     "the mode (for open, when it creates)",
     false,
     read_mode},
    {"unmapped.palisade.new_uid", {K::kFileChown}, "the new owner, -1 unchanged"},
    {"unmapped.palisade.new_gid", {K::kFileChown}, "the new group, -1 unchanged"},
    {"unmapped.palisade.requested", {K::kPrivSetuid, K::kPrivSetgid}, "the ids asked for"},
    {"unmapped.palisade.old_uid",
     {K::kPrivSetuid, K::kPrivSetgid},
     "the ids before the call",
     true,
     read_old_uid},
    {"unmapped.palisade.old_euid",
     {K::kPrivSetuid, K::kPrivSetgid},
     "the ids before the call",
     true,
     read_old_euid},
    {"unmapped.palisade.old_gid", {K::kPrivSetuid, K::kPrivSetgid}, "the ids before the call"},
    {"unmapped.palisade.old_egid", {K::kPrivSetuid, K::kPrivSetgid}, "the ids before the call"},
    {"unmapped.palisade.effective", {K::kPrivCapset}, "the capability sets, 64-bit"},
    {"unmapped.palisade.permitted", {K::kPrivCapset}, "the capability sets, 64-bit"},
    {"unmapped.palisade.inheritable", {K::kPrivCapset}, "the capability sets, 64-bit"},
    {"unmapped.palisade.request", {K::kPrivPtrace}, "the ptrace request", true, read_request},
    {"unmapped.palisade.target_pid", {K::kPrivPtrace}, "the traced pid", true, read_target_pid},
    {"unmapped.palisade.source", {K::kPrivMount}, "what was mounted", false},
    {"unmapped.palisade.fstype", {K::kPrivMount}, "the filesystem type", false},
    {"unmapped.palisade.nstype", {K::kPrivSetns}, "the namespace type"},
    {"unmapped.palisade.ns_inode", {K::kPrivSetns}, "the namespace inode"},
    {"unmapped.palisade.command", {K::kPrivBpf}, "the bpf() command"},
    {"unmapped.palisade.prog_type", {K::kPrivBpf}, "the program type of BPF_PROG_LOAD"},
    {"unmapped.palisade.params", {K::kPrivModule}, "init_module's parameters", false},
    {"unmapped.palisade.enforcement", kDenials,
     "hook, verdict, reason, policy, workload, rule; dev and inode of a refused image", true,
     read_enforcement},
    {"unmapped.palisade.action", kVmKinds, "what happened (started, suspended, lost...)", true,
     read_vm_action},
    {"unmapped.palisade.detail", kVmKinds, "libvirt's reason or the inspection's detail", false,
     read_vm_detail},
    {"unmapped.palisade.vm", kVmKinds,
     "host, state, vcpus, memory_kib, labels, disks, nics (what OCSF's device has no place for)",
     false, read_vm_details},
    {"unmapped.palisade.stats",
     {K::kVmStats},
     "one interval's CPU, network, disk and balloon rates",
     false,
     read_vm_stats},
    {"unmapped.palisade.before", kVmKinds, "a guest change's item before, as JSON", false,
     read_vm_before},
    {"unmapped.palisade.after", kVmKinds, "a guest change's item after, or an inspection's summary",
     false, read_vm_after},
};

}  // namespace

std::span<const FieldDeclaration> field_declarations() {
  return kFields;
}

KindSet host_kinds() {
  return kHostKinds;
}

KindSet vm_kinds() {
  return kVmKinds;
}

std::string describe_kinds(const KindSet& kinds) {
  if (kinds == kAllKinds) return "every event";
  if (kinds == kHostKinds) return "every host event";
  if (kinds == kVmKinds) return "every VM event";
  if (kinds == kFileKinds) return "file events";
  if (kinds == kSocketKinds) return "socket events";
  if (kinds == kDenials) return "denials";
  std::string out;
  for (const EventKindInfo& info : event_kinds()) {
    if (!kinds.has(info.kind)) continue;
    if (!out.empty()) out += ", ";
    out += "`" + std::string(info.name) + "`";
  }
  return out;
}

const nlohmann::json* find_field(const nlohmann::json& record, std::string_view path) {
  const json* at = &record;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    const std::string key(path.substr(0, dot));
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return at;
}

}  // namespace palisade::ocsf
