#include "palisade/model/event.h"

#include <arpa/inet.h>
#include <sys/socket.h>

namespace palisade {

namespace {

// The one declaration of every event kind: its name, where the sensor sees it, and what it
// carries beyond the common fields. kind_name(), `palisade events --schema` and docs/events.md
// are all produced from this table.
constexpr EventKindInfo kKinds[] = {
    {EventKind::kProcessExec, "exec", "raw_tracepoint/sched_process_exec",
     "A process replaced its image.",
     "exe, argv (up to sensor.argv_max_bytes, flagged when cut), cwd, filename as passed to "
     "execve"},
    {EventKind::kProcessFork, "fork", "raw_tracepoint/sched_process_fork",
     "A new process (not a thread) was created.",
     "child pid and start time; the child inherits the parent's image"},
    {EventKind::kProcessExit, "exit", "raw_tracepoint/sched_process_exit",
     "The last thread of a process exited.", "wait(2) status: exit code or terminating signal"},
    {EventKind::kProcessSnapshot, "snapshot", "/proc at start-up",
     "A process that was running when the agent started (seeds the process table; not numbered).",
     "same as exec"},
    {EventKind::kFileOpen, "open", "syscalls open, openat, openat2, creat",
     "A file opened with write intent (O_WRONLY, O_RDWR, O_CREAT or O_TRUNC).",
     "path of the file actually opened (or as requested, on failure), flags, mode"},
    {EventKind::kFileUnlink, "unlink", "syscalls unlink, unlinkat", "A file was removed.", "path"},
    {EventKind::kFileRmdir, "rmdir", "syscalls rmdir, unlinkat(AT_REMOVEDIR)",
     "A directory was removed.", "path"},
    {EventKind::kFileRename, "rename", "syscalls rename, renameat, renameat2",
     "A file was renamed or moved.", "path (source), path2 (destination), flags"},
    {EventKind::kFileChmod, "chmod", "syscalls chmod, fchmod, fchmodat, fchmodat2",
     "Permissions changed.", "path, mode"},
    {EventKind::kFileChown, "chown", "syscalls chown, lchown, fchown, fchownat",
     "Ownership changed.", "path, new uid and gid (-1: unchanged)"},
    {EventKind::kNetConnect, "connect", "syscall connect (IPv4/IPv6)", "An outgoing connection.",
     "local and remote address and port, protocol, result (EINPROGRESS counts as opened)"},
    {EventKind::kNetAccept, "accept", "syscalls accept, accept4 (IPv4/IPv6)",
     "An incoming connection was accepted.", "local and remote endpoints"},
    {EventKind::kNetBind, "bind", "syscall bind (IPv4/IPv6)",
     "A socket was bound to a local address.", "local endpoint, result"},
    {EventKind::kNetListen, "listen", "syscall listen (IPv4/IPv6)", "A socket started listening.",
     "local endpoint"},
    {EventKind::kPrivSetuid, "setuid", "syscalls setuid, setreuid, setresuid, setfsuid",
     "User ids changed.",
     "requested ids, ids before the call; the event's task carries the ids after it"},
    {EventKind::kPrivSetgid, "setgid", "syscalls setgid, setregid, setresgid, setfsgid",
     "Group ids changed.", "requested ids, ids before the call"},
    {EventKind::kPrivCapset, "capset", "syscall capset", "Capabilities changed.",
     "effective, permitted and inheritable sets (64-bit)"},
    {EventKind::kPrivPtrace, "ptrace", "syscall ptrace (ATTACH, SEIZE, POKETEXT, POKEDATA)",
     "A process attached to or wrote into another.",
     "request, target pid; the target process from the process table"},
    {EventKind::kPrivModule, "module_load", "syscalls init_module, finit_module",
     "A kernel module load was attempted.",
     "module file (finit_module) or parameters (init_module), result"},
    {EventKind::kPrivMount, "mount", "syscall mount", "A filesystem was mounted.",
     "source, target path, fstype, flags"},
    {EventKind::kPrivUnshare, "unshare", "syscall unshare", "The process left namespaces.",
     "CLONE_* flags"},
    {EventKind::kPrivSetns, "setns", "syscall setns", "The process entered a namespace.",
     "namespace type, namespace inode"},
    {EventKind::kPrivMemfd, "memfd_create", "syscall memfd_create",
     "An anonymous in-memory file was created (fileless payloads).", "name, flags"},
    {EventKind::kPrivBpf, "bpf", "syscall bpf (from any process but the agent)",
     "The bpf() system call was used.", "command, program type for BPF_PROG_LOAD"},
    {EventKind::kNetDeny, "net_deny",
     "enforcement: cgroup/connect4, connect6, sendmsg4, sendmsg6, cgroup_skb ingress and egress",
     "A workload's connection, datagram or packet was refused by its WorkloadPolicy (or would "
     "have been, in audit mode).",
     "hook, verdict, reason, policy, rule, workload, addresses and ports, protocol"},
    {EventKind::kExecDeny, "exec_deny",
     "enforcement: fanotify FAN_OPEN_EXEC_PERM, lsm/bprm_check_security or SIGKILL at exec",
     "An executable outside a locked-down workload's allowlist, or not part of its container's "
     "image (drift, reason `drift`), was refused, or killed at exec (reactive mechanism).",
     "hook, verdict, reason, policy, workload, executable path, device and inode"},
    {EventKind::kFileDeny, "file_deny", "enforcement: fanotify FAN_OPEN_PERM on read-only paths",
     "A workload's open for writing of a path its WorkloadPolicy makes read-only was refused.",
     "hook, verdict, reason, policy, workload, path"},
    {EventKind::kVmInventory, "vm_inventory", "hypervisor: libvirt domain list and XML",
     "A virtual machine as found when its host was (re)synced (`present`), or after its "
     "configuration changed (`configured`).",
     "vm (name, uuid, state, vCPUs, memory, disks, NICs, labels), action"},
    {EventKind::kVmLifecycle, "vm_lifecycle", "hypervisor: libvirt lifecycle events",
     "A virtual machine was defined, undefined, started, suspended, resumed, stopped, shut down, "
     "crashed, suspended to memory or migrated.",
     "vm, action (the lifecycle event), detail (libvirt's reason: booted, destroyed, ...)"},
    {EventKind::kVmHost, "vm_host", "hypervisor: libvirt connection",
     "A hypervisor host was connected, lost (connection closed, keepalive timeout) or restored "
     "and re-synced.",
     "vm.host (the URI), action, message"},
    {EventKind::kVmStats, "vm_stats", "hypervisor: virConnectGetAllDomainStats",
     "One interval's rates for a running virtual machine (reported only when configured; "
     "detections see every sample).",
     "cpu percent, network and disk bytes per second, balloon RSS"},
    {EventKind::kVmGuestChange, "vm_guest_change", "hypervisor: guest-disk inspection (libguestfs)",
     "An inspection of a VM's disks found a change since the previous one: a user, group, sudoers "
     "line, SSH key, cron job, systemd unit, SUID/SGID file, package or watched file.",
     "action (the change kind), detail (what changed), before and after (JSON)"},
    {EventKind::kVmInspection, "vm_inspection", "hypervisor: guest-disk inspection (libguestfs)",
     "A guest-disk inspection completed (with its method and counts) or failed (with the reason).",
     "action (completed, failed), detail (method), message"},
};

}  // namespace

std::span<const EventKindInfo> event_kinds() {
  return kKinds;
}

std::string_view kind_name(EventKind kind) {
  for (const auto& info : kKinds) {
    if (info.kind == kind) return info.name;
  }
  return "unknown";
}

std::string_view class_name(EventClass cls) {
  switch (cls) {
    case EventClass::kProcess:
      return "process";
    case EventClass::kFile:
      return "file";
    case EventClass::kNetwork:
      return "network";
    case EventClass::kPrivilege:
      return "privilege";
    case EventClass::kEnforcement:
      return "enforcement";
    case EventClass::kVirtualMachine:
      return "vm";
  }
  return "unknown";
}

std::string NetEndpoint::to_string(uint16_t family) const {
  char buf[INET6_ADDRSTRLEN] = {};
  int af = family == AF_INET6 ? AF_INET6 : AF_INET;
  if (inet_ntop(af, addr.data(), buf, sizeof(buf)) == nullptr) return {};
  return buf;
}

void Event::clear() {
  kind = EventKind::kUnknown;
  cpu = 0;
  seq = mono_ns = wall_ns = 0;
  result = 0;
  task.comm.clear();  // keeps its capacity; the decoder sets every other task field
  exe.clear();
  argv.clear();
  argv_truncated = false;
  stdio_sockets = 0;
  cwd.clear();
  exec_filename.clear();
  target_pid = 0;
  target_start_ns = 0;
  exit_code = 0;
  path.clear();
  path2.clear();
  flags = mode = 0;
  target_uid = target_gid = 0xffffffffU;
  family = sock_type = protocol = 0;
  local = remote = NetEndpoint{};
  args = {};
  old_uid = old_euid = old_gid = old_egid = 0;
  strings.clear();
  process.reset();
  parent.reset();
  target.reset();
  lineage.clear();
  lineage_complete = false;
  container.reset();
  container_unresolved.clear();
  enforcement = EnforcementInfo{};
  cgroup_path.clear();
  vm.reset();
  vm_activity = VmActivity{};
}

const std::string* VmView::label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return &v;
  }
  return nullptr;
}

}  // namespace palisade
