#include "palisade/agent/event.h"

#include <arpa/inet.h>
#include <sys/socket.h>

namespace palisade::agent {

std::string_view kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::kProcessExec: return "exec";
    case EventKind::kProcessFork: return "fork";
    case EventKind::kProcessExit: return "exit";
    case EventKind::kProcessSnapshot: return "snapshot";
    case EventKind::kFileOpen: return "open";
    case EventKind::kFileUnlink: return "unlink";
    case EventKind::kFileRmdir: return "rmdir";
    case EventKind::kFileRename: return "rename";
    case EventKind::kFileChmod: return "chmod";
    case EventKind::kFileChown: return "chown";
    case EventKind::kNetConnect: return "connect";
    case EventKind::kNetAccept: return "accept";
    case EventKind::kNetBind: return "bind";
    case EventKind::kNetListen: return "listen";
    case EventKind::kPrivSetuid: return "setuid";
    case EventKind::kPrivSetgid: return "setgid";
    case EventKind::kPrivCapset: return "capset";
    case EventKind::kPrivPtrace: return "ptrace";
    case EventKind::kPrivModule: return "module_load";
    case EventKind::kPrivMount: return "mount";
    case EventKind::kPrivUnshare: return "unshare";
    case EventKind::kPrivSetns: return "setns";
    case EventKind::kPrivMemfd: return "memfd_create";
    case EventKind::kPrivBpf: return "bpf";
    case EventKind::kUnknown: break;
  }
  return "unknown";
}

std::string_view class_name(EventClass cls) {
  switch (cls) {
    case EventClass::kProcess: return "process";
    case EventClass::kFile: return "file";
    case EventClass::kNetwork: return "network";
    case EventClass::kPrivilege: return "privilege";
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
}

}  // namespace palisade::agent
