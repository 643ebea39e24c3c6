#include "palisade/agent/enforcer.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "enforce/enforce_abi.h"
#include "enforce/enforcer_impl.h"
#include "enforce/fanotify_guard.h"
#include "enforce/kernel_rules.h"
#include "enforce/pinned_maps.h"
#include "palisade/agent/sensor.h"
#include "palisade/base/cgroup.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/mountinfo.h"
#include "palisade/base/proc.h"

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;

// The mount points, as this host can reach them, of the filesystems a process can exec from:
// everything in its mount namespace but pseudo filesystems and noexec mounts (bounded).
std::vector<std::string> exec_mounts(uint32_t pid) {
  static const std::set<std::string> kNoExec = {
      "proc",    "sysfs",   "cgroup",     "cgroup2",    "devpts",   "mqueue",  "bpf",
      "tracefs", "debugfs", "securityfs", "pstore",     "configfs", "fusectl", "binfmt_misc",
      "nsfs",    "autofs",  "efivarfs",   "rpc_pipefs", "overlay"};
  const std::string prefix = pid != 0 ? "/proc/" + std::to_string(pid) + "/root" : std::string();
  std::vector<std::string> out;
  for (const base::MountEntry& mount : base::read_mountinfo(pid)) {
    if (out.size() >= 64) break;
    if (kNoExec.count(mount.fstype) != 0 || mount.has_mount_option("noexec")) continue;
    out.push_back(prefix + mount.mount_point);
  }
  return out;
}

std::shared_ptr<const std::set<std::string>> interpreters_of(const policies::WorkloadPolicy& policy,
                                                             const std::string& rootfs) {
  auto out = std::make_shared<std::set<std::string>>();
  for (const ExecutableFile& file : allowlisted_files(policy, rootfs)) {
    std::string interp = elf_interpreter(rootfs + file.path);
    if (!interp.empty()) out->insert(resolve_in_root(rootfs, interp));
  }
  return out;
}

}  // namespace

// The cgroups whose execs failing closed refuses: locked workloads, and new workloads under the
// guarded parents while the unidentified posture locks them.
std::vector<uint64_t> Enforcer::Impl::locked_cgroups(
    const std::vector<WorkloadBinding>& accepted) const {
  std::vector<uint64_t> out;
  for (const auto& b : accepted) {
    if (b.policy->has_process && b.policy->process_mode == policies::Mode::kEnforce) {
      out.push_back(b.cgroup_id);
    }
  }
  if (posture_policy.has_process) {
    for (const auto& parent : options.guarded_parents) {
      if (const uint64_t id = base::cgroup_id_of_path(parent); id != 0) out.push_back(id);
    }
  }
  return out;
}

std::optional<ExecLockdown::Target> Enforcer::Impl::posture_target(uint64_t cgroup_id,
                                                                   uint32_t pid) const {
  if (!posture_policy.has_process || guard_paths.empty() || identified.count(cgroup_id) != 0) {
    return std::nullopt;
  }
  const std::string path = base::cgroup_v2_path_of(pid);
  for (const auto& parent : guard_paths) {
    if (path.size() > parent.size() && path.compare(0, parent.size(), parent) == 0) {
      return ExecLockdown::Target{
          nullptr, &posture_policy, "unidentified cgroup " + path, kPostureSlot, "", nullptr};
    }
  }
  return std::nullopt;
}

namespace {

uint32_t tgid_of(uint32_t tid) {
  const std::optional<base::ProcStatus> status = base::read_proc_status(tid);
  return status ? status->tgid : tid;
}

std::vector<std::byte> file_denial_record(const WriteRequest& request, uint64_t cgroup_id,
                                          uint32_t slot, uint8_t reason) {
  pal_record r{};
  r.h.kind = PAL_ENF_FILE_DENY;
  r.h.mono_ns = static_cast<__u64>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count());
  r.h.result = -EPERM;
  r.h.task.pid = request.tid;
  r.h.task.tgid = tgid_of(request.tid);
  r.h.task.auid = 0xffffffffU;
  r.h.task.cgroup_id = cgroup_id;
  pal_enforce_args a{};
  a.hook = PAL_HOOK_OPEN_FANOTIFY;
  a.verdict = PAL_VERDICT_DENIED;
  a.reason = reason;
  a.rule = -1;
  a.slot = static_cast<__u16>(slot);
  std::memcpy(&r.a, &a, sizeof(a));
  const size_t len = std::min<size_t>(request.path.size(), PAL_PATH_MAX);
  r.h.str_len[0] = static_cast<__u16>(len);
  r.h.total_len = static_cast<__u32>(sizeof(r) + len);
  std::vector<std::byte> out(sizeof(r) + len);
  std::memcpy(out.data(), &r, sizeof(r));
  std::memcpy(out.data() + sizeof(r), request.path.data(), len);
  return out;
}

}  // namespace

// Why a write-open is refused: the path is read-only for the thread's workload (enforce mode).
std::optional<std::string> Enforcer::Impl::write_violation(const WriteRequest& request) {
  const uint64_t cgroup_id = base::cgroup_id_of_process(request.tid);
  std::lock_guard lock(mutex);
  auto it = bound.find(cgroup_id);
  if (it == bound.end()) return std::nullopt;
  const WorkloadBinding& b = it->second;
  const policies::WorkloadPolicy& policy = *b.policy;
  if (policy.files_mode != policies::Mode::kEnforce) return std::nullopt;
  std::string path = request.path;
  if (!b.rootfs.empty() && path.rfind(b.rootfs + "/", 0) == 0) path = path.substr(b.rootfs.size());
  for (const auto& spec : policy.files.read_only) {
    if (!spec.matches(path)) continue;
    const std::string reason = path + " is read-only for WorkloadPolicy " + policy.name;
    file_denials.push(
        file_denial_record(request, cgroup_id, slot_of_policy[policy.name], PAL_REASON_READ_ONLY));
    return reason;
  }
  return std::nullopt;
}

void Enforcer::Impl::start_write_guard() {
  try {
    write_guard = WriteGuard::start(
        bpf_map__fd(skel->maps.pal_open_intent),
        [this](const WriteRequest& request) { return write_violation(request); },
        [](const WriteRequest& request, const std::string& reason) {
          spdlog::debug("write guard: refused {} (tid {}): {}", request.path, request.tid, reason);
        },
        read_only_warden_label(pin_dir));
    mechanisms.push_back(
        {"files: fanotify FAN_OPEN_PERM on read-only paths (synchronous, from "
         "the agent)",
         "active", ""});
  } catch (const std::exception& e) {
    mechanisms.push_back(
        {"files: fanotify FAN_OPEN_PERM on read-only paths", "unavailable", e.what()});
  }
}

// Marks the read-only paths of every enforce-mode binding (in its container's root).
void Enforcer::Impl::watch_read_only() {
  if (!write_guard) return;
  std::set<std::string> paths;
  for (const auto& [id, b] : bound) {
    if (b.policy->files_mode != policies::Mode::kEnforce) continue;
    for (const auto& spec : b.policy->files.read_only) {
      const std::string dir = spec.is_glob ? literal_directory(spec.text) : spec.text;
      paths.insert(b.rootfs + dir);
    }
  }
  write_guard->watch(std::vector<std::string>(paths.begin(), paths.end()));
}

// The addresses of every rule that names its peers by workload, written as a difference so that
// an allowed peer is never briefly missing.
void Enforcer::Impl::write_peer_addresses() {
  const int fd = bpf_map__fd(skel->maps.pal_peer_addrs);
  auto key_less = [](const pal_peer_key& a, const pal_peer_key& b) {
    return std::memcmp(&a, &b, sizeof(a)) < 0;
  };
  std::set<pal_peer_key, decltype(key_less)> wanted(key_less);
  for (const auto& [slot, rules] : slots) {
    for (size_t i = 0; i < rules.peers.size(); ++i) {
      if (!rules.peers[i] || !peer_resolver) continue;
      for (const PeerAddress& a : peer_resolver(*rules.peers[i])) {
        pal_peer_key key{};
        key.slot = static_cast<__u16>(slot);
        key.rule = static_cast<__u16>(i);
        key.family = a.family;
        std::copy(a.addr.begin(), a.addr.end(), key.addr);
        wanted.insert(key);
      }
    }
  }
  std::vector<pal_peer_key> stale;
  for (const auto& key : map_keys<pal_peer_key>(fd)) {
    if (wanted.count(key) == 0) stale.push_back(key);
  }
  const __u8 one = 1;
  for (const auto& k : wanted) {
    if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0) {
      errors.push_back("peer address map full: some workload peers are not allowed");
      break;
    }
  }
  for (const auto& k : stale) bpf_map_delete_elem(fd, &k);
  peer_addresses = wanted.size();
}

// Identified cgroups no policy binds get an entry with no flags: known, so the unidentified
// posture no longer applies to them, and nothing enforced.
void Enforcer::Impl::write_identified() {
  const int fd = bpf_map__fd(skel->maps.pal_workloads);
  const pal_workload known{kUnboundSlot, 0};
  for (uint64_t id : identified) {
    if (bound.count(id) != 0) continue;
    bpf_map_update_elem(fd, &id, &known, BPF_NOEXIST);
  }
}

void Enforcer::Impl::write_guards() {
  const int fd = bpf_map__fd(skel->maps.pal_guards);
  const std::string& posture = options.unidentified_posture;
  const bool kernel_exec = exec_mechanism == "lsm" || exec_mechanism == "kill";
  std::set<uint64_t> wanted;
  guard_paths.clear();
  if (posture != "allow") {
    pal_rule_set none{};
    bpf_map_update_elem(bpf_map__fd(skel->maps.pal_net_rules), &kPostureSlot, &none, BPF_ANY);
    const pal_workload value{kPostureSlot, posture_flags(posture, kernel_exec)};
    for (const auto& parent : options.guarded_parents) {
      const uint64_t id = base::cgroup_id_of_path(parent);
      if (id == 0) {
        errors.push_back("guarded parent cgroup " + parent + " does not exist (yet)");
        continue;
      }
      bpf_map_update_elem(fd, &id, &value, BPF_ANY);
      wanted.insert(id);
      guard_paths.push_back(parent == "/" ? parent : parent + "/");
    }
  }
  for (uint64_t id : map_keys<uint64_t>(fd)) {
    if (wanted.count(id) == 0) bpf_map_delete_elem(fd, &id);
  }
}

namespace {

// Appends the strings user space knows and the kernel does not: the policy, the rule and the
// workload. Records come back unnumbered (seq 0): the kernel counts what it could not queue.
void pack_annotated(const pal_record& in, std::string_view exe, std::string_view policy,
                    std::string_view rule, std::string_view workload, std::vector<std::byte>& out) {
  const std::string_view strings[PAL_MAX_STRINGS] = {exe, policy, rule, workload};
  pal_record r = in;
  r.h.seq = 0;
  size_t total = sizeof(pal_record);
  for (size_t i = 0; i < PAL_MAX_STRINGS; ++i) {
    const size_t len = std::min<size_t>(strings[i].size(), PAL_PATH_MAX);
    r.h.str_len[i] = static_cast<__u16>(len);
    total += len;
  }
  r.h.total_len = static_cast<__u32>(total);
  out.resize(total);
  std::memcpy(out.data(), &r, sizeof(r));
  size_t at = sizeof(pal_record);
  for (size_t i = 0; i < PAL_MAX_STRINGS; ++i) {
    std::memcpy(out.data() + at, strings[i].data(), r.h.str_len[i]);
    at += r.h.str_len[i];
  }
}

}  // namespace

void Enforcer::Impl::annotate_and_deliver(const std::byte* data, size_t size) {
  if (size < sizeof(pal_record) || deliver == nullptr) return;
  pal_record record;
  std::memcpy(&record, data, sizeof(record));
  pal_enforce_args args{};
  std::memcpy(&args, &record.a, sizeof(args));
  const size_t exe_len = std::min<size_t>(record.h.str_len[0], size - sizeof(pal_record));
  const std::string_view exe(reinterpret_cast<const char*>(data) + sizeof(pal_record), exe_len);
  std::string policy, rule, workload;
  {
    std::lock_guard lock(mutex);
    denials++;
    for (const auto& [name, slot] : slot_of_policy) {
      if (slot == args.slot) policy = name;
    }
    if (args.slot == kCanarySlot) policy = kCanaryPolicy;
    if (args.slot == kPostureSlot) policy = kPosturePolicy;
    auto it = slots.find(args.slot);
    if (it != slots.end() && args.rule >= 0 &&
        static_cast<size_t>(args.rule) < it->second.texts.size()) {
      rule = it->second.texts[static_cast<size_t>(args.rule)];
    }
    auto b = bound.find(record.h.task.cgroup_id);
    workload =
        b != bound.end() ? b->second.workload : "cgroup " + std::to_string(record.h.task.cgroup_id);
  }
  pack_annotated(record, exe, policy, rule, workload, scratch);
  (*deliver)(RecordView(scratch));
}

void Enforcer::Impl::choose_exec_mechanism() {
  const std::string want = options.exec_mechanism;
  const std::string lsm = probe_bpf_lsm();
  const bool lsm_ok = lsm == "available";
  std::string fanotify_error;
  const bool fanotify_ok = ExecLockdown::fanotify_available(fanotify_error);
  if ((want == "auto" && lsm_ok) || want == "lsm") {
    if (!lsm_ok) throw std::runtime_error("exec mechanism lsm requested but BPF-LSM is " + lsm);
    exec_mechanism = "lsm";
  } else if ((want == "auto" && fanotify_ok) || want == "fanotify") {
    if (!fanotify_ok) {
      throw std::runtime_error("exec mechanism fanotify requested but " + fanotify_error);
    }
    exec_mechanism = "fanotify";
  } else if (want == "auto" || want == "kill") {
    exec_mechanism = "kill";
  } else {
    throw std::runtime_error("unknown exec mechanism '" + want +
                             "' (expected auto, lsm, fanotify or kill)");
  }
  auto state = [&](const std::string& name) {
    return exec_mechanism == name ? std::string("active") : std::string("standby");
  };
  mechanisms.push_back({"exec: BPF-LSM bprm_check_security (synchronous, in the kernel)",
                        lsm_ok ? state("lsm") : "unavailable", lsm_ok ? "" : lsm});
  mechanisms.push_back({"exec: fanotify FAN_OPEN_EXEC_PERM (synchronous, from the agent)",
                        fanotify_ok ? state("fanotify") : "unavailable", fanotify_error});
  mechanisms.push_back({"exec: SIGKILL at exec (reactive: the new image is killed before it runs)",
                        state("kill"), ""});
}

void Enforcer::Impl::attach_all() {
  const std::string cgroup_root = base::cgroup2_mount();
  if (cgroup_root.empty()) throw std::runtime_error("no cgroup v2 hierarchy is mounted");
  const int cgroup_fd = open(cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cgroup_fd < 0) {
    throw std::runtime_error("cannot open the cgroup v2 root " + cgroup_root + ": " +
                             base::errno_text(errno));
  }
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) {
    if (!bpf_program__autoload(prog)) continue;
    const std::string name = bpf_program__name(prog);
    const std::string pin = pin_dir + "/link_" + name;
    const bpf_prog_type type = bpf_program__type(prog);
    const bool cgroup_hook =
        type == BPF_PROG_TYPE_CGROUP_SOCK_ADDR || type == BPF_PROG_TYPE_CGROUP_SKB;
    bpf_link* previous = bpf_link__open(pin.c_str());
    // Adopt: a pinned cgroup attachment now runs this agent's program, with no gap in between.
    if (previous != nullptr && cgroup_hook && bpf_link__update_program(previous, prog) == 0) {
      links.push_back(previous);
      continue;
    }
    // Tracing links cannot be updated: attach the new one first, then let the old one go.
    bpf_link* link =
        cgroup_hook ? bpf_program__attach_cgroup(prog, cgroup_fd) : bpf_program__attach(prog);
    if (link == nullptr) {
      const int err = errno;
      if (previous != nullptr) bpf_link__destroy(previous);
      close(cgroup_fd);
      throw std::runtime_error("cannot attach enforcement program " + name + ": " +
                               base::errno_text(err));
    }
    if (previous != nullptr) {
      bpf_link__unpin(previous);
      bpf_link__destroy(previous);
    }
    if (int err = bpf_link__pin(link, pin.c_str()); err != 0) {
      spdlog::warn("enforcement: cannot pin {} ({}): it stops with the agent", pin,
                   base::errno_text(err));
    }
    links.push_back(link);
  }
  close(cgroup_fd);
}

Enforcer::Enforcer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Enforcer::~Enforcer() = default;

std::unique_ptr<Enforcer> Enforcer::start(const EnforcerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->pin_dir = pin_directory(options.pin_root);
  ensure_bpffs(options.pin_root);
  std::error_code ec;
  fs::create_directories(impl->pin_dir, ec);
  if (ec) throw std::runtime_error("cannot create " + impl->pin_dir + ": " + ec.message());
  impl->adopted = fs::exists(impl->pin_dir + "/pal_workloads");
  impl->choose_exec_mechanism();

  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = impl->pin_dir.c_str());
  impl->skel = enforcer__open_opts(&open_opts);
  if (impl->skel == nullptr) throw std::runtime_error("cannot open the enforcement programs");
  bpf_program__set_autoload(impl->skel->progs.enforce_exec_lsm, impl->exec_mechanism == "lsm");
  // Syscall tracepoints this kernel lacks (open and creat are not on every architecture).
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, impl->skel->obj) {
    const std::string section = bpf_program__section_name(prog);
    const std::string prefix = "tracepoint/syscalls/";
    if (section.rfind(prefix, 0) != 0) continue;
    if (!fs::exists("/sys/kernel/tracing/events/syscalls/" + section.substr(prefix.size()))) {
      bpf_program__set_autoload(prog, false);
    }
  }
  if (int err = enforcer__load(impl->skel); err != 0) {
    throw std::runtime_error(
        "the kernel refused the enforcement programs (" + base::errno_text(err) +
        "): cgroup socket and skb programs need CAP_BPF and CAP_NET_ADMIN; pinned maps of "
        "another layout under " +
        impl->pin_dir + " are removed by `palisade agent --uninstall`");
  }
  impl->attach_all();
  impl->ring = ring_buffer__new(bpf_map__fd(impl->skel->maps.pal_denials), &Impl::on_record,
                                impl.get(), nullptr);
  if (impl->ring == nullptr) throw std::runtime_error("cannot map the denial ring buffer");
  impl->mechanisms.insert(
      impl->mechanisms.begin(),
      MechanismStatus{"network: cgroup/connect4|6, sendmsg4|6, cgroup_skb/ingress|egress", "active",
                      ""});
  if (impl->exec_mechanism == "fanotify") {
    ExecLockdownOptions lockdown;
    lockdown.mounts = options.fanotify_mounts;
    lockdown.timeout_ms = options.fanotify_timeout_ms;
    lockdown.fail_closed = options.fanotify_fail_closed;
    lockdown.warden_label = exec_warden_label(impl->pin_dir);
    Impl* raw = impl.get();
    impl->lockdown = ExecLockdown::start(
        lockdown, [raw](uint64_t cgroup_id, uint32_t pid) -> std::optional<ExecLockdown::Target> {
          std::lock_guard lock(raw->mutex);
          if (cgroup_id != 0 && cgroup_id == raw->canary_cgroup) {
            return ExecLockdown::Target{
                nullptr, &raw->canary_policy, "enforcement canary", kCanarySlot, "", nullptr};
          }
          auto it = raw->bound.find(cgroup_id);
          if (it == raw->bound.end()) return raw->posture_target(cgroup_id, pid);
          const policies::WorkloadPolicy& p = *it->second.policy;
          if (!p.has_process || p.process_mode != policies::Mode::kEnforce) return std::nullopt;
          auto interp = raw->interpreters.find(cgroup_id);
          return ExecLockdown::Target{raw->set,
                                      &p,
                                      it->second.workload,
                                      raw->slot_of_policy[p.name],
                                      it->second.rootfs,
                                      interp == raw->interpreters.end() ? nullptr : interp->second};
        });
  }
  impl->posture_policy = make_posture_policy(options.unidentified_posture);
  impl->may_release = !impl->adopted;
  impl->start_write_guard();
  spdlog::info("enforcement programs {} ({}); exec mechanism: {}",
               impl->adopted ? "adopted from a previous agent" : "loaded and pinned", impl->pin_dir,
               impl->exec_mechanism);
  return std::unique_ptr<Enforcer>(new Enforcer(std::move(impl)));
}

void Enforcer::Impl::write_slot(uint32_t slot, const policies::WorkloadPolicy& policy) {
  SlotRules rules = compile_rules(policy);
  rules.set.generation = slot;
  if (!rules.error.empty()) errors.push_back("WorkloadPolicy " + policy.name + ": " + rules.error);
  bpf_map_update_elem(bpf_map__fd(skel->maps.pal_net_rules), &slot, &rules.set, BPF_ANY);
  slots[slot] = std::move(rules);
}

void Enforcer::Impl::collect_exec_allowlist(uint32_t slot, const WorkloadBinding& binding,
                                            std::map<std::vector<uint8_t>, pal_exec_allowed>& out) {
  const std::string root =
      binding.root_pid != 0 ? "/proc/" + std::to_string(binding.root_pid) + "/root" : std::string();
  for (const ExecutableFile& file : allowlisted_files(*binding.policy, root)) {
    pal_exec_key key{};
    key.slot = slot;
    key.dev = kernel_dev(file.dev);
    key.ino = file.ino;
    const auto* bytes = reinterpret_cast<const uint8_t*>(&key);
    out[std::vector<uint8_t>(bytes, bytes + sizeof(key))] = pal_exec_allowed{file.ctime_ns};
  }
}

void Enforcer::Impl::write_exec_allowlists(
    const std::map<std::vector<uint8_t>, pal_exec_allowed>& allow) {
  const int fd = bpf_map__fd(skel->maps.pal_exec_allow);
  for (const auto& [bytes, value] : allow) {
    if (bpf_map_update_elem(fd, bytes.data(), &value, BPF_ANY) != 0) {
      errors.push_back("exec allowlist map full: not every allowlisted file is allowed");
      break;
    }
  }
  for (const auto& key : map_keys<pal_exec_key>(fd)) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&key);
    if (allow.count(std::vector<uint8_t>(bytes, bytes + sizeof(key))) == 0) {
      bpf_map_delete_elem(fd, &key);
    }
  }
  exec_allow_entries = allow.size();
}

void Enforcer::Impl::write_workloads(const std::vector<WorkloadBinding>& bindings) {
  const int fd = bpf_map__fd(skel->maps.pal_workloads);
  std::set<uint64_t> wanted;
  const bool kernel_exec = exec_mechanism == "lsm" || exec_mechanism == "kill";
  // The kernel allowlists, computed whole first and then written as a difference: an allowed
  // program is never briefly missing (which would refuse or kill it).
  std::map<std::vector<uint8_t>, pal_exec_allowed> allow;
  for (const auto& b : bindings) {
    const uint32_t slot = slot_of_policy.at(b.policy->name);
    pal_workload value{slot, workload_flags(*b.policy, kernel_exec)};
    pal_workload old{};
    if (bpf_map_lookup_elem(fd, &b.cgroup_id, &old) == 0) {
      value.flags |= old.flags & PAL_WL_ISOLATED;
    }
    if (bpf_map_update_elem(fd, &b.cgroup_id, &value, BPF_ANY) != 0) {
      errors.push_back("workload map full: " + b.workload + " is not enforced");
    }
    wanted.insert(b.cgroup_id);
    if ((value.flags & PAL_WL_EXEC) != 0) collect_exec_allowlist(slot, b, allow);
  }
  write_exec_allowlists(allow);
  if (!may_release) return;  // an adopting agent keeps what is pinned until its sources synced
  // Cgroups no longer bound are released: identified ones keep an entry with nothing to enforce
  // (so the unidentified posture does not catch them), unknown ones are removed; an isolation a
  // response set stays.
  for (uint64_t id : map_keys<uint64_t>(fd)) {
    if (wanted.count(id) != 0) continue;
    pal_workload old{};
    if (bpf_map_lookup_elem(fd, &id, &old) != 0) continue;
    const uint32_t isolated = old.flags & PAL_WL_ISOLATED;
    if (isolated != 0 || identified.count(id) != 0) {
      const pal_workload released{kUnboundSlot, isolated};
      if (old.slot != released.slot || old.flags != released.flags) {
        bpf_map_update_elem(fd, &id, &released, BPF_ANY);
      }
    } else {
      bpf_map_delete_elem(fd, &id);
    }
  }
}

void Enforcer::apply(std::shared_ptr<const policies::PolicySet> set,
                     const std::vector<WorkloadBinding>& bindings,
                     const std::vector<uint64_t>& identified) {
  Impl& d = *impl_;
  std::lock_guard lock(d.mutex);
  d.errors.clear();
  d.identified = std::set<uint64_t>(identified.begin(), identified.end());
  d.write_guards();
  d.set = std::move(set);
  // Slot numbers follow policy names so that a reload does not move a policy's rules.
  std::map<std::string, uint32_t> slots;
  std::set<uint32_t> taken;
  for (const auto& b : bindings) {
    auto it = d.slot_of_policy.find(b.policy->name);
    if (it != d.slot_of_policy.end()) {
      slots[b.policy->name] = it->second;
      taken.insert(it->second);
    }
  }
  uint32_t next_free = 1;
  for (const auto& b : bindings) {
    if (slots.count(b.policy->name) != 0) continue;
    while (taken.count(next_free) != 0) next_free++;
    const uint32_t slot = next_free;
    if (slot >= kPostureSlot) {  // the last two slots are the posture's and the canary's
      d.errors.push_back("too many enforced policies; " + b.policy->name + " is not enforced");
      continue;
    }
    slots[b.policy->name] = slot;
    taken.insert(slot);
  }
  d.slot_of_policy = slots;
  d.slots.clear();
  const policies::WorkloadPolicy none;
  d.write_slot(kUnboundSlot, none);
  std::vector<WorkloadBinding> accepted;
  for (const auto& b : bindings) {
    if (slots.count(b.policy->name) == 0) continue;
    if (d.slots.count(slots[b.policy->name]) == 0) d.write_slot(slots[b.policy->name], *b.policy);
    accepted.push_back(b);
  }
  d.bound.clear();
  for (const auto& b : accepted) {
    d.bound[b.cgroup_id] = b;
  }
  d.write_peer_addresses();
  d.write_workloads(accepted);
  if (d.options.unidentified_posture != "allow") d.write_identified();
  d.watch_read_only();
  if (d.lockdown) {
    d.interpreters.clear();
    if (d.posture_policy.has_process && !d.guard_paths.empty()) d.lockdown->arm();
    for (const auto& b : accepted) {
      if (!b.policy->has_process || b.policy->process_mode != policies::Mode::kEnforce) continue;
      d.lockdown->arm();
      if (!b.rootfs.empty()) d.lockdown->watch(b.rootfs, "root filesystem of " + b.workload);
      // Every filesystem the workload can exec from (a tmpfs emptyDir, a volume, /dev/shm),
      // not only its root: an unmarked filesystem is never asked about. Pseudo and noexec
      // filesystems are not marked: nothing is executed from them.
      for (const auto& mount : exec_mounts(b.root_pid)) {
        d.lockdown->watch(mount, "exec-capable mount of " + b.workload);
      }
      d.interpreters[b.cgroup_id] = interpreters_of(*b.policy, b.rootfs);
    }
    d.lockdown->set_locked_cgroups(d.locked_cgroups(accepted));
    d.lockdown->policy_changed();
  }
  for (const auto& e : d.errors) spdlog::warn("enforcement: {}", e);
}

void Enforcer::poll(const RecordCallback& deliver) {
  impl_->deliver = &deliver;
  ring_buffer__consume(impl_->ring);
  if (impl_->lockdown) {
    impl_->lockdown->drain([this](const std::vector<std::byte>& record) {
      pal_record r;
      std::memcpy(&r, record.data(), sizeof(r));
      impl_->annotate_and_deliver(record.data(), record.size());
    });
  }
  for (const auto& record : impl_->file_denials.take_all()) {
    impl_->annotate_and_deliver(record.data(), record.size());
  }
  impl_->deliver = nullptr;
}

void Enforcer::sources_synced() {
  std::lock_guard lock(impl_->mutex);
  impl_->may_release = true;
}

void Enforcer::set_peer_resolver(PeerResolver resolver) {
  std::lock_guard lock(impl_->mutex);
  impl_->peer_resolver = std::move(resolver);
}

const std::string* Enforcer::path_of(uint64_t cgroup_id) const {
  // The pipeline's thread is the only writer's thread too (apply), so no lock is needed here.
  auto it = impl_->bound.find(cgroup_id);
  return it == impl_->bound.end() ? nullptr : &it->second.cgroup_path;
}

std::vector<MechanismStatus> Enforcer::mechanisms() const {
  return impl_->mechanisms;
}

bool Enforcer::adopted() const {
  return impl_->adopted;
}

uint64_t Enforcer::lost() const {
  const int ncpus = libbpf_num_possible_cpus();
  std::vector<__u64> values(static_cast<size_t>(ncpus));
  const __u32 key = 1;
  uint64_t total = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(impl_->skel->maps.pal_denial_counters), &key,
                          values.data()) == 0) {
    for (auto v : values) total += v;
  }
  return total;
}

nlohmann::json Enforcer::status() const {
  using nlohmann::json;
  const Impl& d = *impl_;
  json mechanisms = json::array();
  for (const auto& m : d.mechanisms) {
    json entry = {{"mechanism", m.name}, {"state", m.state}};
    if (!m.detail.empty()) entry["detail"] = m.detail;
    mechanisms.push_back(entry);
  }
  json workloads = json::array();
  std::lock_guard lock(d.mutex);
  for (const auto& [id, b] : d.bound) {
    workloads.push_back({{"cgroup_id", id},
                         {"cgroup", b.cgroup_path},
                         {"workload", b.workload},
                         {"policy", b.policy->name}});
  }
  json out = {{"pins", d.pin_dir},
              {"adopted", d.adopted},
              {"exec_mechanism", d.exec_mechanism},
              {"mechanisms", mechanisms},
              {"workloads", workloads},
              {"denials", d.denials},
              {"lost", lost()},
              {"exec_allowlist_entries", d.exec_allow_entries},
              {"peer_addresses", d.peer_addresses},
              {"errors", d.errors}};
  if (d.lockdown) out["exec_guard"] = d.lockdown->status();
  if (d.write_guard) {
    const WriteGuardStats w = d.write_guard->stats();
    out["write_guard"] = {{"requests", w.requests},
                          {"denied", w.denied},
                          {"no_intent", w.no_intent},
                          {"marked", w.marked},
                          {"mark_errors", w.mark_errors},
                          {"unreported_denials", d.file_denials.stats().rejected_full},
                          {"answered_by_warden", w.answered_by_warden},
                          {"warden", warden_status(w.warden)}};
  }
  return out;
}

}  // namespace palisade::agent
