// Events of the process, file, kernel and network classes: the record and its class's objects.
#include <string.h>
#include <sys/socket.h>

#include <cerrno>

#include "record_parts.h"

namespace palisade::ocsf {
namespace {

std::string open_flag_names(uint32_t flags) {
  std::string out;
  auto add = [&out](const char* name) {
    if (!out.empty()) out += '|';
    out += name;
  };
  switch (flags & 3U) {
    case 0:
      add("O_RDONLY");
      break;
    case 1:
      add("O_WRONLY");
      break;
    default:
      add("O_RDWR");
      break;
  }
  if ((flags & 0100U) != 0) add("O_CREAT");
  if ((flags & 0200U) != 0) add("O_EXCL");
  if ((flags & 01000U) != 0) add("O_TRUNC");
  if ((flags & 02000U) != 0) add("O_APPEND");
  return out;
}

// A denial is a security control's outcome: OCSF's action and disposition say it was blocked, or
// in audit mode let through and only detected.
void write_enforcement_outcome(JsonWriter& w, const Event& e) {
  const bool blocked = e.enforcement.enforced;
  w.field("action_id", blocked ? 2 : 1).field("action", blocked ? "Denied" : "Allowed");
  w.field("disposition_id", blocked ? 2 : 15)
      .field("disposition", blocked ? "Blocked" : "Detected");
  if (blocked) w.field("status_code", "EPERM");
  // A drift that was let through is an alert (drift: alert), not an audit-mode would-block.
  const bool drift = e.enforcement.reason == "drift";
  std::string detail = std::string(blocked ? "blocked by "
                                   : drift ? "allowed and reported by "
                                           : "would be blocked (audit) by ") +
                       "WorkloadPolicy " + e.enforcement.policy + ": ";
  if (drift) {
    detail +=
        "drift: " + e.exe + " was written after the container started (overlayfs upper layer)";
  } else if (e.enforcement.reason == "deny-rule") {
    detail += "deny rule " + e.enforcement.rule_text;
  } else if (e.enforcement.reason == "isolated") {
    detail += "the workload is isolated";
  } else if (e.enforcement.reason == "not-allowlisted") {
    detail += "not in the executable allowlist";
  } else if (e.enforcement.reason == "read-only") {
    detail += e.path + " is read-only";
  } else {
    detail += "no allow rule matched (default deny)";
  }
  w.field("status_detail", detail);
}

void write_enforcement(JsonWriter& w, const Event& e) {
  const EnforcementInfo& f = e.enforcement;
  w.key("enforcement").begin_object();
  w.field("hook", f.hook).field("verdict", f.enforced ? "denied" : "audit");
  w.field("reason", f.reason).field("policy", f.policy).field("workload", f.workload);
  if (f.rule >= 0) w.field("rule", f.rule_text);
  if (e.kind == EventKind::kExecDeny) w.field("dev", f.dev).field("inode", f.ino);
  w.end_object();
}

// Everything after metadata: device, actor, container, the class's objects, unmapped.
void write_body(JsonWriter& w, ObjectWriter& ow, const HostInfo& host, const Event& e,
                const Classification& c, ProfileSet& used) {
  used.add(Profile::kHost);  // device
  write_host(w, host, "device", true);

  ow.actor(e);
  if (e.container) {
    write_container(w, *e.container);
    used.add(Profile::kContainer);
  }

  switch (c.class_uid) {
    case 1007: {
      w.key("process");
      const ProcessRef& subject = e.kind == EventKind::kPrivPtrace ? e.target : e.process;
      if (e.kind == EventKind::kExecDeny) {
        // The image that was refused; the actor is the process that asked for it.
        w.begin_object().field("pid", e.task.tgid);
        w.key("file");
        write_file(w, e.exe, 1);
        w.end_object();
      } else if (subject) {
        ow.process(e, *subject, e.kind != EventKind::kPrivPtrace);
      } else {
        const uint64_t pid = e.kind == EventKind::kPrivPtrace ? e.args[1] : e.task.tgid;
        w.begin_object().field("pid", pid).end_object();
      }
      if (e.kind == EventKind::kProcessExit) {
        const uint32_t status = e.exit_code;
        const uint32_t signal = status & 0x7fU;
        w.field("exit_code", signal != 0 ? 128 + signal : (status >> 8) & 0xffU);
      }
      break;
    }
    case 1001: {
      w.key("file");
      if (e.kind == EventKind::kPrivMemfd) {
        const std::string name = "memfd:" + (e.strings.empty() ? std::string() : e.strings[0]);
        w.begin_object().field("name", name).field("type_id", 1).field("type", "Regular File");
        w.end_object();
      } else {
        write_file(w, e.path, e.kind == EventKind::kFileRmdir ? 2 : 1);
      }
      if (e.kind == EventKind::kFileRename) {
        w.key("file_result");
        write_file(w, e.path2, 1);
      }
      break;
    }
    case 1002: {
      w.key("driver").begin_object().key("file");
      if (!e.path.empty()) {
        write_file(w, e.path, 1);
      } else {
        w.begin_object().field("name", "(module image from memory)").field("type_id", 0);
        w.end_object();
      }
      w.end_object();
      break;
    }
    case 1003: {
      auto call = e.kind == EventKind::kPrivMount     ? "mount"
                  : e.kind == EventKind::kPrivUnshare ? "unshare"
                  : e.kind == EventKind::kPrivSetns   ? "setns"
                                                      : "bpf";
      w.key("kernel").begin_object();
      w.field("name", call).field("type_id", 2).field("type", "System Call");
      w.field("system_call", call);
      if (!e.path.empty()) w.field("path", e.path);
      w.end_object();
      break;
    }
    case 4001: {
      const bool inbound = e.kind == EventKind::kNetAccept ||
                           (e.kind == EventKind::kNetDeny && e.enforcement.hook == "ingress");
      const bool local_only = e.kind == EventKind::kNetBind || e.kind == EventKind::kNetListen;
      w.key("src_endpoint");
      write_endpoint(w, inbound ? e.remote : e.local, e.family);
      w.key("dst_endpoint");
      write_endpoint(w, inbound || local_only ? e.local : e.remote, e.family);
      w.key("connection_info").begin_object();
      const bool udp = e.protocol == 17;
      w.field("protocol_name", udp ? "udp" : "tcp").field("protocol_num", udp ? 17 : 6);
      w.field("protocol_ver_id", e.family == AF_INET6 ? 6 : 4);
      w.field("direction_id", inbound ? 1 : local_only ? 0 : 2);
      w.field("direction", inbound ? "Inbound" : local_only ? "Unknown" : "Outbound");
      w.end_object();
      break;
    }
    default:
      break;
  }

  // What OCSF has no place for.
  w.key("unmapped").begin_object().key("palisade").begin_object();
  w.field("event", kind_name(e.kind));
  w.field("cpu", unsigned{e.cpu}).field("mono_ns", e.mono_ns);
  w.field("comm", e.task.comm).field("cgroup_id", e.task.cgroup_id);
  w.field("mnt_ns", e.task.mnt_ns).field("pid_ns", e.task.pid_ns);
  w.field("uid", e.task.uid).field("gid", e.task.gid);
  w.field("login_uid",
          e.task.auid == TaskIdentity::kNoLoginUid ? int64_t{-1} : int64_t{e.task.auid});
  w.field("result", e.result);
  if (e.process && !e.process->cwd.empty()) w.field("cwd", e.process->cwd);
  w.key("lineage_pids").begin_array();
  for (const auto& a : e.lineage) w.value(a->pid);
  w.end_array();
  w.field("lineage_complete", e.lineage_complete);
  write_kubernetes(w, e);
  switch (e.kind) {
    case EventKind::kProcessExec:
      w.field("exec_filename", e.exec_filename).field("argv_truncated", e.argv_truncated);
      w.field("stdio_sockets", e.stdio_sockets);
      break;
    case EventKind::kProcessFork:
      w.field("child_pid", e.target_pid);
      break;
    case EventKind::kProcessExit:
      w.field("wait_status", e.exit_code);
      break;
    case EventKind::kFileOpen:
      w.field("open_flags", open_flag_names(e.flags)).field("flags", e.flags);
      if ((e.flags & 0100U) != 0) w.field("mode", e.mode);
      break;
    case EventKind::kFileChmod:
      w.field("mode", e.mode);
      break;
    case EventKind::kFileChown:
      w.field("new_uid", int64_t{static_cast<int32_t>(e.target_uid)});
      w.field("new_gid", int64_t{static_cast<int32_t>(e.target_gid)});
      break;
    case EventKind::kPrivSetuid:
    case EventKind::kPrivSetgid:
      w.key("requested").begin_array();
      for (auto a : e.args) w.value(static_cast<int64_t>(static_cast<int32_t>(a)));
      w.end_array();
      w.field("old_uid", e.old_uid).field("old_euid", e.old_euid);
      w.field("old_gid", e.old_gid).field("old_egid", e.old_egid);
      break;
    case EventKind::kPrivCapset:
      w.field("effective", e.args[0]).field("permitted", e.args[1]).field("inheritable", e.args[2]);
      break;
    case EventKind::kPrivPtrace:
      w.field("request", e.args[0]).field("target_pid", e.args[1]);
      break;
    case EventKind::kPrivMount:
      if (!e.strings.empty()) w.field("source", e.strings[0]);
      if (e.strings.size() > 2) w.field("fstype", e.strings[2]);
      w.field("flags", e.args[1]);
      break;
    case EventKind::kPrivUnshare:
      w.field("flags", e.args[0]);
      break;
    case EventKind::kPrivSetns:
      w.field("nstype", e.args[0]).field("ns_inode", e.args[1]);
      break;
    case EventKind::kPrivMemfd:
      w.field("flags", e.args[0]);
      break;
    case EventKind::kPrivBpf:
      w.field("command", e.args[0]).field("prog_type", e.args[2]);
      break;
    case EventKind::kPrivModule:
      if (!e.strings.empty()) w.field("params", e.strings[0]);
      break;
    case EventKind::kNetDeny:
    case EventKind::kExecDeny:
    case EventKind::kFileDeny:
      write_enforcement(w, e);
      break;
    default:
      break;
  }
  w.end_object().end_object();
  w.end_object();
}

}  // namespace

void Formatter::format(const Event& e, std::string& out) {
  if (class_of(e.kind) == EventClass::kVirtualMachine) {
    format_vm(e, out);
    return;
  }
  const Classification c = classify(e);
  const bool denial = e.kind == EventKind::kNetDeny || e.kind == EventKind::kExecDeny ||
                      e.kind == EventKind::kFileDeny;
  const bool failed = denial ? e.enforcement.enforced
                             : e.result < 0 && e.kind != EventKind::kProcessExit &&
                                   !(e.kind == EventKind::kNetConnect && e.result == -EINPROGRESS);

  // The body goes first into its own buffer: metadata.profiles, which precedes it, lists the
  // profiles of the attributes the body actually carries.
  ProfileSet used = render_body([&](JsonWriter& w, ObjectWriter& ow, ProfileSet& profiles) {
    write_body(w, ow, host_, e, c, profiles);
  });
  JsonWriter w(out);
  w.begin_object();
  w.field("class_uid", c.class_uid).field("class_name", c.class_name);
  w.field("category_uid", c.category_uid).field("category_name", c.category_name);
  w.field("activity_id", c.activity_id).field("activity_name", c.activity_name);
  w.field("type_uid", c.class_uid * 100 + c.activity_id);
  w.field("severity_id", 1).field("severity", "Informational");
  w.field("time", e.wall_ns / 1'000'000ULL);
  w.field("status_id", failed ? 2 : 1).field("status", failed ? "Failure" : "Success");
  if (denial) {
    write_enforcement_outcome(w, e);
    used.add(Profile::kSecurityControl);
  } else if (failed) {
    const char* code = strerrorname_np(static_cast<int>(-e.result));
    if (code != nullptr) w.field("status_code", code);
    w.field("status_detail", strerror(static_cast<int>(-e.result)));
  }

  begin_metadata(w);
  write_profiles(w, used);
  w.field("sequence", e.seq);
  w.key("uid");
  write_event_uid(w, host_.run_id, e);
  w.end_object();

  append_body(w);
}

}  // namespace palisade::ocsf
