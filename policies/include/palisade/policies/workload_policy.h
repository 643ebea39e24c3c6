// WorkloadPolicy: what a selected workload may do: application lockdown (an executable
// allowlist), microsegmentation (egress and ingress by CIDR, ports, protocol) and file integrity
// (watched, read-only, writable and protected paths). Each violation is a decision with its
// reason, reported as "would block" in audit mode and "block" in enforce mode. Carrying the block
// out in the kernel is the enforcement layer's job (issue 5).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "palisade/model/container_view.h"
#include "palisade/policies/field.h"

namespace palisade::policies {

enum class Mode : uint8_t { kAudit, kEnforce };

// Container drift: an exec of a file that is not part of the container's image (written or
// changed after the container started, so it lies in the overlayfs upper layer), even when its
// path is allowlisted. kBlock refuses it like a file outside the allowlist; kAlert lets it run
// and reports it; kAllow does not check.
enum class DriftAction : uint8_t { kBlock, kAlert, kAllow };

struct ProcessAllowEntry {
  std::string path;                  // glob
  std::vector<std::string> parents;  // globs on the parent's executable; empty = any
  std::vector<uint32_t> users;       // real uids; empty = any
  std::string sha256;                // lowercase hex; empty = any content
};

// The sha256 of an exec event's executable, or empty when it cannot be read. The engine does no
// I/O itself: the agent supplies a cached hasher, tools may supply none (then entries that pin a
// hash cannot match, and the reason says the hash was unknown).
using ExecutableHasher = std::function<std::string(const Event& exec)>;

// A peer named by what it is rather than where: the pods of these namespaces with these labels,
// wherever they run (their IPs come from the Kubernetes API and follow the pods).
struct PeerSelector {
  std::vector<std::string> namespaces;  // globs; empty = any
  std::map<std::string, std::string> pod_labels;
  bool matches(const std::string& pod_namespace,
               const std::map<std::string, std::string>& labels) const;
};

// Whether an address is a current IP of a pod the selector names; the agent supplies it from
// its view of the cluster (none: such rules match nothing).
using PeerLookup = std::function<bool(const PeerSelector& selector, uint16_t family,
                                      const std::array<uint8_t, 16>& addr)>;

struct NetworkRule {
  uint16_t family = 0;  // 0 = any address
  std::array<uint8_t, 16> addr{};
  uint8_t prefix = 0;
  uint16_t port_low = 0;
  uint16_t port_high = 65535;
  uint8_t protocol = 0;                  // 0 = any, 6 = tcp, 17 = udp
  std::string text;                      // as written, for reasons
  std::optional<PeerSelector> workload;  // instead of an address
  // Egress rules match the remote address and port; ingress rules the remote (peer) address and
  // the local port, the one the workload serves.
  bool matches(const Event& event, bool ingress, const PeerLookup* peers = nullptr) const;
};

struct NetworkSection {
  bool present = false;
  bool default_allow = false;
  std::vector<NetworkRule> allow;
  std::vector<NetworkRule> deny;  // checked first
};

// A path in a files section: a glob when it has glob characters ('*' crosses '/'), otherwise the
// path itself and, when recursive, everything below it.
struct PathSpec {
  std::string text;
  bool is_glob = false;
  bool recursive = true;
  bool matches(std::string_view path) const;
};

enum FileAttribute : uint8_t { kAttrContent = 1, kAttrMode = 2, kAttrOwner = 4 };

struct WatchEntry {
  PathSpec path;
  std::vector<std::string> exclude;  // globs; without '/' they match the file name
  uint8_t attributes = kAttrContent | kAttrMode | kAttrOwner;
};

struct FilesSection {
  bool present = false;
  std::vector<WatchEntry> watch;    // file-integrity monitoring: every change is reported
  std::vector<PathSpec> read_only;  // writes are violations
  std::vector<PathSpec> protect;    // changes are violations the enforcer undoes (restore)
  std::vector<PathSpec> writable;   // when given, writes anywhere else are violations
};

struct WorkloadPolicy {
  std::string name;
  std::string source;
  int line = 0;
  std::vector<std::string> hosts;  // globs on the host name; empty = every host
  // Host workloads: the policy covers processes whose executable, or an ancestor's, matches one
  // of these globs (a daemon and everything it starts); empty = every process.
  std::vector<std::string> processes;
  // Cgroup v2 paths (globs, relative to the cgroup2 mount: "/system.slice/nginx.service"): the
  // policy covers the processes in those cgroups. Kernel enforcement is keyed by cgroup, so this
  // and the container selectors are what in-kernel enforcement can bind.
  std::vector<std::string> cgroups;
  // Container and Kubernetes selectors: when any is given, the policy covers only processes in
  // containers that match all of them. Globs, except pod labels (exact key = value, all required).
  std::vector<std::string> namespaces;
  std::map<std::string, std::string> pod_labels;
  std::vector<std::string> containers;
  std::vector<std::string> images;
  bool vm_selector = false;  // VM selectors belong to the hypervisor module (issue 6)
  bool has_process = false;
  Mode process_mode = Mode::kAudit;
  std::vector<ProcessAllowEntry> process_allow;
  DriftAction process_drift = DriftAction::kBlock;
  Mode network_mode = Mode::kAudit;
  NetworkSection egress;
  NetworkSection ingress;
  std::vector<NetworkRule> management;  // still allowed while the workload is isolated
  Mode files_mode = Mode::kAudit;
  FilesSection files;
};

// One section's verdict on one event.
struct Decision {
  std::string_view section;  // process, egress, ingress, files, read-only, writable, protect
  std::string reason;
  std::string_view verdict;  // "block (enforce)", "would block (audit)", "restore (enforce)", ...
};

// The policies' glob: fnmatch without flags, so '*' also crosses '/'.
bool path_glob_matches(const std::string& pattern, const std::string& text);

// Whether the policy selects by container (namespace, podLabels, container or image given).
bool has_container_selectors(const WorkloadPolicy& policy);
// Whether a container matches every container selector the policy gives (true when none is).
// The detector uses it for events, the enforcer's workload binder for the containers it binds.
bool container_matches(const WorkloadPolicy& policy, const ContainerView& container);

// Whether the event's process belongs to the policy's workload (the container, Kubernetes and
// processes selectors).
bool selects_process(const WorkloadPolicy& policy, const Event& event);

// Whether any section of the policy looks at events of this kind (a cheap pre-check).
bool concerns(const WorkloadPolicy& policy, EventKind kind);

// Appends the policy's decisions on the event (none when everything is allowed and nothing
// watched changed). Assumes the policy selects the event's workload.
void decide(const WorkloadPolicy& policy, const Event& event, const ExecutableHasher* hasher,
            std::vector<Decision>& out, const PeerLookup* peers = nullptr);

// Why an exec or a connection was (or would be) blocked; empty when allowed.
std::string process_violation(const WorkloadPolicy& policy, const Event& event,
                              const ExecutableHasher* hasher);
std::string network_violation(const NetworkSection& section, const Event& event, bool ingress,
                              const PeerLookup* peers = nullptr);

}  // namespace palisade::policies
