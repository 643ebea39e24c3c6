#include "palisade/ocsf/formatter.h"

#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>

#include "palisade/base/path_text.h"
#include "palisade/ocsf/container_object.h"
#include "palisade/ocsf/json_writer.h"
#include "palisade/ocsf/mapping.h"
#include "vm_objects.h"

namespace palisade::ocsf {
namespace {

constexpr size_t kMaxUserNames = 4096;
constexpr int kErrInProgress = 115;
constexpr int kErrConnRefused = 111;

std::string_view decimal(char (&buf)[16], uint32_t value) {
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string_view(buf, static_cast<size_t>(end - buf));
}

// run.cpu.class.seq: unique across the agent's runs on a host; findings link to events by it.
void write_event_uid(JsonWriter& w, const std::string& run_id, const Event& e) {
  char buf[96];
  int n = std::snprintf(buf, sizeof(buf), "%s.%u.%u.%llu", run_id.c_str(), unsigned{e.cpu},
                        static_cast<unsigned>(class_of(e.kind)),
                        static_cast<unsigned long long>(e.seq));
  w.value(
      std::string_view(buf, n > 0 ? static_cast<size_t>(std::min<int>(n, sizeof(buf) - 1)) : 0));
}

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

void write_file(JsonWriter& w, std::string_view path, int type_id) {
  w.begin_object();
  w.field("path", path).field("name", base::path_basename(path));
  auto parent = base::path_dirname(path);
  if (!parent.empty()) w.field("parent_folder", parent);
  w.field("type_id", type_id).field("type", type_id == 2 ? "Folder" : "Regular File");
  w.end_object();
}

void write_endpoint(JsonWriter& w, const NetEndpoint& ep, uint16_t family) {
  w.begin_object().field("ip", ep.to_string(family)).field("port", unsigned{ep.port}).end_object();
}

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

}  // namespace

Classification classify(const Event& event) {
  const KindMapping* m = mapping_of(event.kind);
  if (m == nullptr) return Classification{0, "Base Event", 0, "Uncategorized", 0, "Unknown"};
  const OcsfClass& k = *m->ocsf_class;
  Classification c{k.class_uid,     k.class_name,   k.category_uid,
                   k.category_name, m->activity_id, m->activity_name};
  // The one activity that depends on the outcome (the declaration's note says so).
  if (event.kind == EventKind::kNetConnect && event.result != 0 &&
      event.result != -kErrInProgress) {
    const bool refused = event.result == -kErrConnRefused;
    c.activity_id = refused ? 5 : 4;
    c.activity_name = refused ? "Refuse" : "Fail";
  }
  return c;
}

HostInfo HostInfo::detect() {
  HostInfo info;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0) info.hostname = name;
  info.machine_id = read_first_line("/etc/machine-id");
  utsname uts{};
  if (uname(&uts) == 0) info.kernel_release = uts.release;
  timespec boot{};
  timespec real{};
  clock_gettime(CLOCK_BOOTTIME, &boot);
  clock_gettime(CLOCK_REALTIME, &real);
  info.boot_wall_offset_ns = (static_cast<int64_t>(real.tv_sec) - boot.tv_sec) * 1'000'000'000LL +
                             (real.tv_nsec - boot.tv_nsec);
  info.run_id = std::to_string(static_cast<int64_t>(real.tv_sec) * 1000 + real.tv_nsec / 1'000'000);
  return info;
}

Formatter::Formatter(HostInfo host) : host_(std::move(host)) {}

std::string_view Formatter::user_name(uint32_t uid) {
  auto it = user_names_.find(uid);
  if (it != user_names_.end()) return it->second;
  if (user_names_.size() >= kMaxUserNames) user_names_.clear();
  passwd pwd{};
  passwd* found = nullptr;
  char buf[1024];
  std::string name;
  if (getpwuid_r(uid, &pwd, buf, sizeof(buf), &found) == 0 && found != nullptr) name = pwd.pw_name;
  return user_names_.emplace(uid, std::move(name)).first->second;
}

namespace {

struct Writer {
  JsonWriter& w;
  Formatter& formatter;
  const HostInfo& host;
  std::string_view (*lookup)(Formatter&, uint32_t);
  ProfileSet* used = nullptr;  // the profiles whose attributes were written (null: not tracked)

  void uses(Profile profile) {
    if (used != nullptr) used->add(profile);
  }

  uint64_t to_wall_ms(uint64_t boot_ns) const {
    return static_cast<uint64_t>(static_cast<int64_t>(boot_ns) + host.boot_wall_offset_ns) /
           1'000'000ULL;
  }

  void user(uint32_t uid) {
    char digits[16];
    w.begin_object().field("uid", decimal(digits, uid));
    auto name = lookup(formatter, uid);
    if (!name.empty()) w.field("name", name);
    w.field("type_id", uid == 0 ? 2 : 1).field("type", uid == 0 ? "Admin" : "User");
    w.end_object();
  }

  // Writes the view's members, rendered once per view and then copied.
  void process_core(const ProcessView& p) {
    if (p.json_members.empty()) {
      {
        JsonWriter cache(p.json_members);
        Writer{cache, formatter, host, lookup}.render_core(p);
      }
      p.json_members.shrink_to_fit();  // the writer works with generous room; keep what is used
    }
    w.raw(p.json_members);
    if (p.auid != TaskIdentity::kNoLoginUid) uses(Profile::kLinuxUsers);  // render_core wrote it
  }

  std::string_view quoted_exe(const ProcessView& p) {
    if (p.json_exe.empty()) {
      append_json_string(p.json_exe, p.exe.empty() ? std::string_view("?") : p.exe);
      p.json_exe.shrink_to_fit();
    }
    return p.json_exe;
  }

  void render_core(const ProcessView& p) {
    w.field("pid", p.pid);
    char uid[48];
    auto [end, ec] = std::to_chars(uid, uid + 20, p.pid);
    *end++ = '-';
    end = std::to_chars(end, uid + sizeof(uid), p.start_ns).ptr;
    w.field("uid", std::string_view(uid, static_cast<size_t>(end - uid)));
    auto name = p.exe.empty() ? std::string_view(p.comm) : base::path_basename(p.exe);
    w.field("name", name);
    if (!p.cmdline.empty()) w.field("cmd_line", p.cmdline);
    if (!p.exe.empty()) {
      w.key("file");
      write_file(w, p.exe, 1);
    }
    if (p.start_ns != 0) w.field("created_time", to_wall_ms(p.start_ns));
    w.key("user");
    user(p.uid);
    if (p.auid != TaskIdentity::kNoLoginUid) w.field("auid", p.auid);
  }

  // The acting process: identity from the event, details and ancestry from the process table.
  void process(const Event& e, const ProcessView& p, bool with_lineage) {
    w.begin_object();
    process_core(p);
    if (p.pid == e.task.tgid) {
      w.field("tid", e.task.pid).field("euid", e.task.euid).field("egid", e.task.egid);
      uses(Profile::kLinuxUsers);
    }
    if (e.parent && with_lineage) {
      w.key("parent_process").begin_object();
      process_core(*e.parent);
      w.end_object();
    }
    if (with_lineage) {
      w.key("lineage").begin_array();
      for (const auto& a : e.lineage) w.raw(quoted_exe(*a));
      w.end_array();
    }
    w.end_object();
  }

  void actor(const Event& e) {
    uses(Profile::kHost);
    w.key("actor").begin_object();
    w.key("process");
    // For a fork, the event's process view is the child; the actor is the parent.
    if (e.kind == EventKind::kProcessFork || e.kind == EventKind::kProcessExec) {
      if (e.parent) {
        w.begin_object();
        process_core(*e.parent);
        w.end_object();
      } else {
        w.begin_object().field("pid", e.task.ppid).end_object();
      }
    } else if (e.process) {
      process(e, *e.process, true);
    } else {
      w.begin_object().field("pid", e.task.tgid).field("name", e.task.comm).end_object();
    }
    w.key("user");
    user(e.task.auid != TaskIdentity::kNoLoginUid ? e.task.auid : e.task.uid);
    w.end_object();
  }
};

}  // namespace

namespace {

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

// Everything after metadata: device, actor, container, the class's objects, unmapped.
void write_body(JsonWriter& w, Writer& ow, const HostInfo& host, const Event& e,
                const Classification& c, ProfileSet& used) {
  used.add(Profile::kHost);  // device
  w.key("device").begin_object();
  w.field("hostname", host.hostname).field("type_id", 1).field("type", "Server");
  if (!host.machine_id.empty()) w.field("uid", host.machine_id);
  w.key("os").begin_object();
  w.field("name", "Linux").field("type_id", 200).field("type", "Linux");
  w.field("version", host.kernel_release);
  w.end_object().end_object();

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

// The node that observed what it reports (for VMs, the hypervisor host running palisade hv).
void write_observer(JsonWriter& w, const HostInfo& host) {
  w.key("observer").begin_object();
  w.field("hostname", host.hostname).field("type_id", 1).field("type", "Server");
  if (!host.machine_id.empty()) w.field("uid", host.machine_id);
  w.end_object();
}

// Everything of a finding after metadata.
void write_finding_body(JsonWriter& w, Writer& ow, const HostInfo& host, const FindingView& finding,
                        const Event& e, std::string_view trigger_json,
                        std::string_view policy_digest, ProfileSet& used) {
  w.key("finding_info").begin_object();
  std::string uid = std::string(finding.rule) + ":";
  {
    std::string trigger_uid;
    {
      JsonWriter tw(trigger_uid);
      write_event_uid(tw, host.run_id, e);
    }
    uid += trigger_uid.substr(1, trigger_uid.size() - 2);  // without the quotes
  }
  w.field("uid", uid).field("title", finding.title);
  w.field("desc", finding.message);
  w.key("analytic").begin_object();
  w.field("name", finding.rule)
      .field("uid", finding.rule)
      .field("type_id", 1)
      .field("type", "Rule");
  w.end_object();
  w.key("attacks").begin_array();
  for (const auto& tag : finding.tags) {
    if (tag.size() < 2 || tag[0] != 'T' || !std::isdigit(static_cast<unsigned char>(tag[1])))
      continue;
    w.begin_object().key("technique").begin_object().field("uid", tag).end_object().end_object();
  }
  w.end_array();
  w.key("types").begin_array();
  for (const auto& tag : finding.tags) w.value(tag);
  w.end_array();
  w.key("related_events").begin_array().begin_object();
  w.key("uid");
  write_event_uid(w, host.run_id, e);
  const Classification c = classify(e);
  w.field("type_uid", c.class_uid * 100 + c.activity_id);
  w.end_object().end_array();
  w.end_object();

  if (e.vm) {
    // A VM's finding is about the VM; the hypervisor host that saw it is the observer.
    w.key("device");
    write_vm_device(w, *e.vm);
    write_observer(w, host);
    w.key("evidences").begin_array().begin_object().key("device");
    write_vm_device(w, *e.vm);
    w.end_object().end_array();
  } else {
    w.key("device").begin_object();
    w.field("hostname", host.hostname).field("type_id", 1).field("type", "Server");
    if (!host.machine_id.empty()) w.field("uid", host.machine_id);
    w.end_object();
    used.add(Profile::kHost);
    ow.actor(e);
    if (e.container) {
      write_container(w, *e.container);
      used.add(Profile::kContainer);
    }
    w.key("evidences").begin_array().begin_object().key("process");
    if (e.process) {
      ow.process(e, *e.process, true);
    } else {
      w.begin_object().field("pid", e.task.tgid).end_object();
    }
    w.end_object().end_array();
  }

  w.key("unmapped").begin_object().key("palisade").begin_object();
  w.field("rule", finding.rule).field("rule_source", finding.rule_source);
  w.field("response", finding.response);
  w.field("count", finding.count).field("policy_digest", policy_digest);
  write_kubernetes(w, e);
  if (e.vm) write_vm_details(w, *e.vm);
  if (!finding.verdict.empty()) w.field("verdict", finding.verdict);
  if (!trigger_json.empty()) w.key("trigger").raw(trigger_json);
  w.end_object().end_object();
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

}  // namespace

void Formatter::format(const Event& e, std::string& out) {
  if (class_of(e.kind) == EventClass::kVirtualMachine) {
    format_vm(e, out);
    return;
  }
  const Classification c = classify(e);
  const bool denial = e.kind == EventKind::kNetDeny || e.kind == EventKind::kExecDeny ||
                      e.kind == EventKind::kFileDeny;
  const bool failed = denial
                          ? e.enforcement.enforced
                          : e.result < 0 && e.kind != EventKind::kProcessExit &&
                                !(e.kind == EventKind::kNetConnect && e.result == -kErrInProgress);

  // The body goes first into its own buffer: metadata.profiles, which precedes it, lists the
  // profiles of the attributes the body actually carries.
  ProfileSet used;
  body_.clear();
  {
    JsonWriter w(body_);
    Writer ow{w, *this, host_, [](Formatter& f, uint32_t uid) { return f.user_name(uid); }, &used};
    w.begin_object();
    write_body(w, ow, host_, e, c, used);
  }
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

  // The body's members (without its braces) close the record.
  w.raw(std::string_view(body_).substr(1, body_.size() - 2));
  w.end_object();
}

void Formatter::format_finding(const FindingView& finding, const Event& e,
                               std::string_view trigger_json, std::string_view policy_digest,
                               std::string& out) {
  // As for events: the body first, so that metadata.profiles can list what it carries.
  ProfileSet used;
  body_.clear();
  {
    JsonWriter w(body_);
    Writer ow{w, *this, host_, [](Formatter& f, uint32_t uid) { return f.user_name(uid); }, &used};
    w.begin_object();
    write_finding_body(w, ow, host_, finding, e, trigger_json, policy_digest, used);
  }
  JsonWriter w(out);
  w.begin_object();
  w.field("class_uid", 2004).field("class_name", "Detection Finding");
  w.field("category_uid", 2).field("category_name", "Findings");
  w.field("activity_id", 1).field("activity_name", "Create").field("type_uid", 200401);
  w.field("severity_id", finding.severity_id).field("severity", finding.severity);
  w.field("time", e.wall_ns / 1'000'000ULL);
  w.field("message", finding.message);
  w.field("status_id", 1).field("status", "New");

  begin_metadata(w);
  write_profiles(w, used);
  w.end_object();

  w.raw(std::string_view(body_).substr(1, body_.size() - 2));
  w.end_object();
}

void Formatter::format_vm(const Event& e, std::string& out) {
  JsonWriter w(out);
  const Classification c = classify(e);
  const bool failed = e.kind == EventKind::kVmInspection && e.vm_activity.action == "failed";
  const bool lost = e.kind == EventKind::kVmHost && e.vm_activity.action == "lost";
  const bool crashed = e.kind == EventKind::kVmLifecycle && e.vm_activity.action == "crashed";
  w.begin_object();
  w.field("class_uid", c.class_uid).field("class_name", c.class_name);
  w.field("category_uid", c.category_uid).field("category_name", c.category_name);
  w.field("activity_id", c.activity_id).field("activity_name", c.activity_name);
  w.field("type_uid", c.class_uid * 100 + c.activity_id);
  if (lost || crashed || failed) {
    w.field("severity_id", 3).field("severity", "Medium");
  } else {
    w.field("severity_id", 1).field("severity", "Informational");
  }
  w.field("time", e.wall_ns / 1'000'000ULL);
  w.field("status_id", failed || lost ? 2 : 1)
      .field("status", failed || lost ? "Failure" : "Success");
  if (!e.vm_activity.message.empty()) w.field("message", e.vm_activity.message);
  begin_metadata(w);
  w.field("sequence", e.seq);
  w.key("uid");
  write_event_uid(w, host_.run_id, e);
  w.end_object();
  if (e.vm) {
    w.key("device");
    write_vm_device(w, *e.vm);
  }
  write_observer(w, host_);
  w.key("unmapped").begin_object().key("palisade").begin_object();
  w.field("event", kind_name(e.kind));
  write_vm_activity(w, e);
  if (e.vm) write_vm_details(w, *e.vm);
  w.end_object().end_object();
  w.end_object();
}

void Formatter::format_agent_event(std::string_view message, uint64_t wall_ns,
                                   std::string_view details_json, std::string& out) {
  JsonWriter w(out);
  w.begin_object();
  w.field("class_uid", 0).field("class_name", "Base Event");
  w.field("category_uid", 0).field("category_name", "Uncategorized");
  w.field("activity_id", 99).field("activity_name", "Other").field("type_uid", 99);
  w.field("severity_id", 1).field("severity", "Informational");
  w.field("time", wall_ns / 1'000'000ULL).field("message", message);
  begin_metadata(w);
  w.end_object();
  w.key("device").begin_object().field("hostname", host_.hostname).field("type_id", 1);
  w.end_object();
  w.key("unmapped").begin_object().key("palisade").raw(details_json);
  w.end_object();
  w.end_object();
}

}  // namespace palisade::ocsf
