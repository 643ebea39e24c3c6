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
#include "enforce/exec_lockdown.h"
#include "enforce/fanotify_guard.h"
#include "enforce/write_guard.h"
#include "enforcer.skel.h"
#include "palisade/agent/sensor.h"
#include "palisade/base/bounded_queue.h"
#include "palisade/base/cgroup.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/mountinfo.h"
#include "palisade/base/proc.h"

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kUnboundSlot = 0;  // isolated cgroups no policy covers: no rules at all
constexpr uint32_t kCanarySlot = PAL_MAX_WORKLOAD_SLOTS - 1;  // deny everything
constexpr const char* kCanaryPolicy = "enforcement-canary";
constexpr uint32_t kPostureSlot = PAL_MAX_WORKLOAD_SLOTS - 2;  // unidentified workloads
constexpr const char* kPosturePolicy = "unidentified-workload";

// The unidentified posture as a policy (for the fanotify decider) and as kernel flags.
policies::WorkloadPolicy make_posture_policy(const std::string& posture) {
  policies::WorkloadPolicy p;
  p.name = kPosturePolicy;
  p.has_process = posture == "deny" || posture == "audit";
  p.process_mode = posture == "deny" ? policies::Mode::kEnforce : policies::Mode::kAudit;
  return p;
}

uint32_t posture_flags(const std::string& posture, bool kernel_exec) {
  uint32_t flags = 0;
  if (posture == "audit") flags = PAL_WL_EGRESS | PAL_WL_INGRESS;
  if (posture == "deny-network" || posture == "deny") {
    flags = PAL_WL_EGRESS | PAL_WL_EGRESS_ENFORCE | PAL_WL_INGRESS | PAL_WL_INGRESS_ENFORCE;
  }
  if (kernel_exec && posture == "audit") flags |= PAL_WL_EXEC;
  if (kernel_exec && posture == "deny") flags |= PAL_WL_EXEC | PAL_WL_EXEC_ENFORCE;
  return flags;
}

// The canary's workload: no executable allowed, no connection allowed, enforced.
policies::WorkloadPolicy make_canary_policy() {
  policies::WorkloadPolicy p;
  p.name = kCanaryPolicy;
  p.has_process = true;
  p.process_mode = policies::Mode::kEnforce;
  p.network_mode = policies::Mode::kEnforce;
  p.egress.present = true;
  return p;
}

std::string pin_directory(const std::string& pin_root) {
  return pin_root + "/enforce-v" + std::to_string(PAL_ENFORCE_ABI);
}

// Every key of a BPF hash map, taken before any is deleted (deleting while walking restarts it).
template <typename Key>
std::vector<Key> map_keys(int fd) {
  std::vector<Key> keys;
  Key key{};
  Key next{};
  const Key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  return keys;
}

// bpffs must be mounted for anything to be pinned; production agents mount it themselves.
void ensure_bpffs(const std::string& pin_root) {
  const fs::path mount_point = fs::path(pin_root).parent_path();
  struct statfs st {};
  if (statfs(mount_point.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC) return;
  if (mount("bpf", mount_point.c_str(), "bpf", 0, "mode=0700") != 0) {
    throw std::runtime_error("bpffs is not mounted at " + mount_point.string() +
                             " and mounting it failed (" + base::errno_text(errno) +
                             "): enforcement could not survive the agent");
  }
}

// The kernel's dev_t (MKDEV: major << 20 | minor), which the programs read from the superblock.
uint64_t kernel_dev(dev_t dev) {
  return (static_cast<uint64_t>(major(dev)) << 20) | minor(dev);
}

void set_rule_addr(pal_net_rule& out, const policies::NetworkRule& rule) {
  out.family = static_cast<__u8>(rule.family);
  out.prefix = rule.prefix;
  std::copy(rule.addr.begin(), rule.addr.end(), out.addr);
}

// The kernel form of one policy's network sections; rules beyond the limit are an error.
struct SlotRules {
  pal_rule_set set{};
  std::vector<std::string> texts;                            // by index, for reports
  std::vector<std::optional<policies::PeerSelector>> peers;  // by index: named by workload
  std::string error;
};

SlotRules compile_rules(const policies::WorkloadPolicy& policy) {
  SlotRules out;
  auto add = [&out](const std::vector<policies::NetworkRule>& rules, pal_rule_list list) {
    for (const auto& rule : rules) {
      if (out.set.count >= PAL_MAX_NET_RULES) {
        out.error = "more than " + std::to_string(PAL_MAX_NET_RULES) +
                    " network rules: only the first ones are enforced in the kernel";
        return;
      }
      pal_net_rule& r = out.set.rules[out.set.count++];
      r.list = static_cast<__u8>(list);
      r.protocol = rule.protocol;
      r.port_low = rule.port_low;
      r.port_high = rule.port_high;
      set_rule_addr(r, rule);
      r.peer_set = rule.workload ? 1 : 0;
      out.texts.push_back(rule.text);
      out.peers.push_back(rule.workload);
    }
  };
  add(policy.egress.deny, PAL_LIST_EGRESS_DENY);
  add(policy.egress.allow, PAL_LIST_EGRESS_ALLOW);
  add(policy.ingress.deny, PAL_LIST_INGRESS_DENY);
  add(policy.ingress.allow, PAL_LIST_INGRESS_ALLOW);
  add(policy.management, PAL_LIST_MANAGEMENT);
  return out;
}

uint32_t workload_flags(const policies::WorkloadPolicy& policy, bool kernel_exec) {
  using policies::Mode;
  uint32_t flags = 0;
  auto section = [&](const policies::NetworkSection& s, uint32_t present, uint32_t enforce,
                     uint32_t default_allow) {
    if (!s.present) return;
    flags |= present;
    if (policy.network_mode == Mode::kEnforce) flags |= enforce;
    if (s.default_allow) flags |= default_allow;
  };
  section(policy.egress, PAL_WL_EGRESS, PAL_WL_EGRESS_ENFORCE, PAL_WL_EGRESS_DEFAULT_ALLOW);
  section(policy.ingress, PAL_WL_INGRESS, PAL_WL_INGRESS_ENFORCE, PAL_WL_INGRESS_DEFAULT_ALLOW);
  if (kernel_exec && policy.has_process && policy.process_mode == Mode::kEnforce) {
    flags |= PAL_WL_EXEC | PAL_WL_EXEC_ENFORCE;
  }
  if (policy.files_mode == Mode::kEnforce && !policy.files.read_only.empty()) flags |= PAL_WL_FILES;
  return flags;
}

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

bool network_enforceable(const policies::WorkloadPolicy& policy) {
  return policy.egress.present || policy.ingress.present || !policy.management.empty();
}

}  // namespace

// ------------------------------------------------------------------------------------ binding

bool enforceable(const policies::WorkloadPolicy& policy) {
  const bool by_cgroup = !policy.cgroups.empty();
  const bool by_container = !policy.namespaces.empty() || !policy.pod_labels.empty() ||
                            !policy.containers.empty() || !policy.images.empty();
  const bool exec = policy.has_process && policy.process_mode == policies::Mode::kEnforce;
  const bool files =
      policy.files_mode == policies::Mode::kEnforce && !policy.files.read_only.empty();
  return (by_cgroup || by_container) && (network_enforceable(policy) || exec || files);
}

std::vector<CgroupEntry> scan_cgroups(size_t limit) {
  std::vector<CgroupEntry> out;
  const fs::path root = base::cgroup2_mount();
  std::error_code ec;
  struct stat st {};
  if (stat(root.c_str(), &st) == 0) out.push_back({"/", st.st_ino});
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator() && out.size() < limit; it.increment(ec)) {
    if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
    if (stat(it->path().c_str(), &st) != 0) continue;
    out.push_back({"/" + fs::relative(it->path(), root, ec).string(), st.st_ino});
  }
  return out;
}

namespace {

// A container matches when every container and Kubernetes selector the policy gives matches.
bool selects_container(const policies::WorkloadPolicy& policy, const ContainerView& c) {
  auto any = [](const std::vector<std::string>& globs, const std::string& text) {
    return std::any_of(globs.begin(), globs.end(),
                       [&](const std::string& g) { return policies::path_glob_matches(g, text); });
  };
  if (!policy.namespaces.empty() && !any(policy.namespaces, c.pod_namespace)) return false;
  if (!policy.containers.empty() && !any(policy.containers, c.name)) return false;
  if (!policy.images.empty() && !any(policy.images, c.image)) return false;
  for (const auto& [key, value] : policy.pod_labels) {
    auto it = c.pod_labels.find(key);
    if (it == c.pod_labels.end() || it->second != value) return false;
  }
  return policy.namespaces.size() + policy.containers.size() + policy.images.size() +
             policy.pod_labels.size() >
         0;
}

std::string describe_container(const ContainerView& c) {
  std::string out = "container " + c.name;
  if (!c.pod_name.empty()) out += " (pod " + c.pod_namespace + "/" + c.pod_name + ")";
  return out;
}

}  // namespace

std::vector<WorkloadBinding> bind_workloads(const policies::PolicySet& set,
                                            const std::vector<ContainerRef>& containers,
                                            const std::vector<CgroupEntry>& cgroups) {
  std::vector<WorkloadBinding> out;
  std::set<uint64_t> bound;
  for (const auto& policy : set.workload_policies()) {
    if (!enforceable(*policy)) continue;
    if (!policy->cgroups.empty()) {
      for (const auto& cg : cgroups) {
        if (bound.count(cg.id) != 0) continue;
        const bool match = std::any_of(
            policy->cgroups.begin(), policy->cgroups.end(),
            [&](const std::string& g) { return policies::path_glob_matches(g, cg.path); });
        if (!match) continue;
        bound.insert(cg.id);
        out.push_back({cg.id, cg.path, "cgroup " + cg.path, policy.get(), 0, ""});
      }
      continue;
    }
    for (const auto& c : containers) {
      if (c->sandbox || c->cgroup_id == 0 || bound.count(c->cgroup_id) != 0) continue;
      if (!selects_container(*policy, *c)) continue;
      bound.insert(c->cgroup_id);
      out.push_back({c->cgroup_id, c->cgroup_path, describe_container(*c), policy.get(),
                     c->init_pid,
                     "/run/containerd/io.containerd.runtime.v2.task/" + c->runtime_namespace + "/" +
                         c->id + "/rootfs"});
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------ enforcer

struct Enforcer::Impl {
  EnforcerOptions options;
  std::string pin_dir;
  enforcer* skel = nullptr;
  std::vector<bpf_link*> links;
  ring_buffer* ring = nullptr;
  bool adopted = false;
  std::vector<MechanismStatus> mechanisms;
  std::string exec_mechanism;  // lsm, fanotify, kill or none
  std::unique_ptr<ExecLockdown> lockdown;
  std::unique_ptr<WriteGuard> write_guard;
  // From the write guard's thread to the agent's; refused (and counted) when full.
  base::BoundedQueue<std::vector<std::byte>> file_denials{4096, base::OnFull::kReject};

  // Written by apply() and read by poll() on the agent's thread, and by the exec guard's threads.
  mutable std::mutex mutex;
  std::shared_ptr<const policies::PolicySet> set;
  std::unordered_map<uint64_t, WorkloadBinding> bound;  // by cgroup id
  std::map<std::string, uint32_t> slot_of_policy;       // stable across reloads
  std::map<uint32_t, SlotRules> slots;
  PeerResolver peer_resolver;
  uint64_t peer_addresses = 0;
  std::map<uint64_t, std::shared_ptr<const std::set<std::string>>> interpreters;  // by cgroup
  std::vector<std::string> errors;
  uint64_t denials = 0;
  uint64_t exec_allow_entries = 0;

  uint64_t canary_cgroup = 0;  // while a canary runs
  // False while an adopting agent's container and pod sources have not synced: releasing
  // pinned bindings then would lift enforcement from workloads it simply has not seen yet.
  bool may_release = true;
  const policies::WorkloadPolicy canary_policy = make_canary_policy();
  policies::WorkloadPolicy posture_policy;
  std::vector<std::string> guard_paths;  // "/k8s.io/" (with the slash) for prefix checks
  std::set<uint64_t> identified;

  const RecordCallback* deliver = nullptr;  // valid during poll() only
  std::vector<std::byte> scratch;

  ~Impl() {
    lockdown.reset();  // before the maps it reads go
    write_guard.reset();
    if (ring != nullptr) ring_buffer__free(ring);
    for (bpf_link* link : links) {
      // The pin keeps the attachment: closing our descriptor must not detach it.
      bpf_link__disconnect(link);
      bpf_link__destroy(link);
    }
    if (skel != nullptr) enforcer__destroy(skel);
  }

  static int on_record(void* ctx, void* data, size_t size) {
    static_cast<Impl*>(ctx)->annotate_and_deliver(static_cast<const std::byte*>(data), size);
    return 0;
  }

  void annotate_and_deliver(const std::byte* data, size_t size);
  void choose_exec_mechanism();
  void attach_all();
  void write_slot(uint32_t slot, const policies::WorkloadPolicy& policy);
  void write_workloads(const std::vector<WorkloadBinding>& bindings);
  void collect_exec_allowlist(uint32_t slot, const WorkloadBinding& binding,
                              std::map<std::vector<uint8_t>, pal_exec_allowed>& out);
  void write_exec_allowlists(const std::map<std::vector<uint8_t>, pal_exec_allowed>& allow);
  void write_guards();
  void write_identified();
  void write_peer_addresses();
  void start_write_guard();
  std::optional<std::string> write_violation(const WriteRequest& request);
  void watch_read_only();
  // An unidentified cgroup under a guarded parent gets the posture (mutex held).
  std::optional<ExecLockdown::Target> posture_target(uint64_t cgroup_id, uint32_t pid) const;
};

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
        });
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
      if (!b.rootfs.empty()) d.lockdown->watch(b.rootfs);
      // Every filesystem the workload can exec from (a tmpfs emptyDir, a volume, /dev/shm),
      // not only its root: an unmarked filesystem is never asked about.
      for (const auto& mount : exec_mounts(b.root_pid)) d.lockdown->watch(mount);
      d.interpreters[b.cgroup_id] = interpreters_of(*b.policy, b.rootfs);
    }
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

nlohmann::json CanaryResult::to_json() const {
  return {{"time_ms", time_ms},
          {"passed", passed()},
          {"network", {{"passed", network.passed}, {"detail", network.detail}}},
          {"exec", {{"passed", exec.passed}, {"detail", exec.detail}}}};
}

namespace {

// What the canary's child does, with only async-signal-safe calls (the agent has threads): join
// the cgroup, try a connect and an exec, report both errnos through the pipe.
[[noreturn]] void canary_child(const char* procs, int report_fd) {
  char pid_text[24];
  int n = 0;
  char digits[24];
  for (pid_t p = getpid(); p > 0; p /= 10) digits[n++] = static_cast<char>('0' + p % 10);
  for (int i = 0; i < n; ++i) pid_text[i] = digits[n - 1 - i];
  const int procs_fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (procs_fd < 0 || write(procs_fd, pid_text, static_cast<size_t>(n)) != n) _exit(101);
  close(procs_fd);
  int results[2] = {0, 0};
  const int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  results[0] = connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 ? 0 : errno;
  close(sock);
  if (write(report_fd, &results[0], sizeof(int)) != sizeof(int)) _exit(102);
  char* const argv[] = {const_cast<char*>("/usr/bin/true"), nullptr};
  execv(argv[0], argv);
  results[1] = errno;
  if (write(report_fd, &results[1], sizeof(int)) != sizeof(int)) _exit(102);
  _exit(100);
}

}  // namespace

CanaryResult Enforcer::run_canary() {
  Impl& d = *impl_;
  CanaryResult result;
  result.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::string dir = base::cgroup2_mount() + "/palisade-canary-" + std::to_string(getpid());
  mkdir(dir.c_str(), 0700);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    result.network.detail = result.exec.detail = "cannot create the canary cgroup " + dir;
    return result;
  }
  const uint64_t cgroup_id = st.st_ino;
  const bool kernel_exec = d.exec_mechanism == "lsm" || d.exec_mechanism == "kill";
  const int workloads = bpf_map__fd(d.skel->maps.pal_workloads);
  {
    std::lock_guard lock(d.mutex);
    pal_rule_set none{};
    bpf_map_update_elem(bpf_map__fd(d.skel->maps.pal_net_rules), &kCanarySlot, &none, BPF_ANY);
    pal_workload canary{kCanarySlot, PAL_WL_EGRESS | PAL_WL_EGRESS_ENFORCE};
    if (kernel_exec) canary.flags |= PAL_WL_EXEC | PAL_WL_EXEC_ENFORCE;
    bpf_map_update_elem(workloads, &cgroup_id, &canary, BPF_ANY);
    d.canary_cgroup = cgroup_id;
    if (d.lockdown) d.lockdown->policy_changed();
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) report[0] = report[1] = -1;
  const std::string procs = dir + "/cgroup.procs";
  const pid_t child = report[0] >= 0 ? fork() : -1;
  if (child == 0) canary_child(procs.c_str(), report[1]);
  if (report[1] >= 0) close(report[1]);
  int status = 0;
  bool reaped = false;
  // A stuck exec (a decider that never answers) must not stall the agent: 5 s, then kill.
  for (int waited = 0; child > 0 && waited < 500 && !reaped; ++waited) {
    reaped = waitpid(child, &status, WNOHANG) == child;
    if (!reaped) usleep(10'000);
  }
  if (child > 0 && !reaped) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
  }
  int errnos[2] = {-1, -1};
  if (report[0] >= 0) {
    for (int& e : errnos) {
      if (read(report[0], &e, sizeof(e)) != sizeof(e)) break;
    }
    close(report[0]);
  }
  {
    std::lock_guard lock(d.mutex);
    bpf_map_delete_elem(workloads, &cgroup_id);
    d.canary_cgroup = 0;
  }
  rmdir(dir.c_str());

  result.network.passed = errnos[0] == EPERM;
  result.network.detail =
      result.network.passed
          ? "connect to 127.0.0.1:9 refused with EPERM by cgroup/connect4"
          : "connect to 127.0.0.1:9 from the canary cgroup was not refused by the kernel (" +
                (errnos[0] < 0    ? std::string("no answer from the canary")
                 : errnos[0] == 0 ? std::string("it connected")
                                  : std::string(std::strerror(errnos[0]))) +
                ")";
  const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  if (d.exec_mechanism == "fanotify" && d.lockdown && !d.lockdown->armed()) {
    result.exec.passed = true;
    result.exec.detail =
        "not checked: no workload is locked down, so the fanotify exec guard marks nothing yet";
  } else if (d.exec_mechanism == "kill") {
    result.exec.passed = killed && errnos[1] == -1;
    result.exec.detail = result.exec.passed ? "/usr/bin/true killed at exec (SIGKILL)"
                                            : "/usr/bin/true was not killed at exec";
  } else {
    result.exec.passed = errnos[1] == EPERM;
    result.exec.detail = result.exec.passed
                             ? "exec of /usr/bin/true refused with EPERM (" + d.exec_mechanism + ")"
                             : "exec of /usr/bin/true in the canary cgroup was not refused (" +
                                   d.exec_mechanism + ")";
  }
  if (!reaped) result.exec.detail += "; the canary hung and was killed";
  return result;
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
                          {"unreported_denials", d.file_denials.stats().rejected_full}};
  }
  return out;
}

// ------------------------------------------------------------------------------------ tools

std::vector<std::string> uninstall_enforcement(const std::string& pin_root) {
  std::vector<std::string> removed;
  const std::string dir = pin_directory(pin_root);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return removed;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    // Unpinning drops the last reference: links detach, maps are freed.
    if (unlink(entry.path().c_str()) != 0) {
      throw std::runtime_error("cannot remove " + entry.path().string() + ": " +
                               base::errno_text(errno));
    }
    removed.push_back(entry.path().string());
  }
  rmdir(dir.c_str());
  rmdir(pin_root.c_str());
  return removed;
}

bool set_isolation(const std::string& pin_root, uint64_t cgroup_id, bool isolated,
                   std::string& error) {
  const std::string path = pin_directory(pin_root) + "/pal_workloads";
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    error = "the enforcement programs are not installed (" + path + ": " + base::errno_text(errno) +
            "): start the agent first";
    return false;
  }
  pal_workload value{kUnboundSlot, 0};
  const bool known = bpf_map_lookup_elem(fd, &cgroup_id, &value) == 0;
  int err = 0;
  if (isolated) {
    value.flags |= PAL_WL_ISOLATED;
    err = bpf_map_update_elem(fd, &cgroup_id, &value, BPF_ANY);
  } else if (known) {
    // An unbound entry stays as a known marker (no flags): deleting it could put an identified
    // container under the unidentified posture; the agent prunes it when it is not identified.
    value.flags &= ~static_cast<uint32_t>(PAL_WL_ISOLATED);
    err = bpf_map_update_elem(fd, &cgroup_id, &value, BPF_ANY);
  }
  close(fd);
  if (err != 0) {
    error = "cannot update " + path + ": " + base::errno_text(err);
    return false;
  }
  return true;
}

}  // namespace palisade::agent
