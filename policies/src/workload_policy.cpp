#include "palisade/policies/workload_policy.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

#include "palisade/model/container_view.h"

namespace palisade::policies {

bool path_glob_matches(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

namespace {

bool glob(const std::string& pattern, const std::string& text) {
  return path_glob_matches(pattern, text);
}

bool prefix_matches(const std::array<uint8_t, 16>& want, const std::array<uint8_t, 16>& have,
                    uint8_t prefix) {
  const size_t bytes = prefix / 8;
  if (!std::equal(want.begin(), want.begin() + static_cast<long>(bytes), have.begin()))
    return false;
  const unsigned bits = prefix % 8;
  if (bits == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (want[bytes] & mask) == (have[bytes] & mask);
}

}  // namespace

bool PeerSelector::matches(const std::string& pod_namespace,
                           const std::map<std::string, std::string>& labels) const {
  if (!namespaces.empty() &&
      std::none_of(namespaces.begin(), namespaces.end(),
                   [&](const std::string& g) { return path_glob_matches(g, pod_namespace); })) {
    return false;
  }
  for (const auto& [key, value] : pod_labels) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

bool NetworkRule::matches(const Event& e, bool ingress, const PeerLookup* peers) const {
  if (protocol != 0 && protocol != e.protocol) return false;
  const uint16_t port = ingress ? e.local.port : e.remote.port;
  if (port < port_low || port > port_high) return false;
  if (workload) return peers != nullptr && *peers && (*peers)(*workload, e.family, e.remote.addr);
  if (family == 0) return true;
  if (family != e.family) return false;
  return prefix_matches(addr, e.remote.addr, prefix);
}

bool any_glob(const std::vector<std::string>& globs, const std::string& text) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& g) { return glob(g, text); });
}

bool selects_container(const WorkloadPolicy& policy, const Event& event) {
  if (!has_container_selectors(policy)) return true;
  if (!event.container) return false;  // a host process, or a container not identified yet
  return container_matches(policy, *event.container);
}

bool has_container_selectors(const WorkloadPolicy& policy) {
  return !policy.namespaces.empty() || !policy.pod_labels.empty() || !policy.containers.empty() ||
         !policy.images.empty();
}

bool container_matches(const WorkloadPolicy& policy, const ContainerView& c) {
  if (!policy.namespaces.empty() && !any_glob(policy.namespaces, c.pod_namespace)) return false;
  if (!policy.containers.empty() && !any_glob(policy.containers, c.name)) return false;
  if (!policy.images.empty() && !any_glob(policy.images, c.image)) return false;
  for (const auto& [key, value] : policy.pod_labels) {
    auto it = c.pod_labels.find(key);
    if (it == c.pod_labels.end() || it->second != value) return false;
  }
  return true;
}

bool selects_process(const WorkloadPolicy& policy, const Event& event) {
  if (!selects_container(policy, event)) return false;
  if (!policy.cgroups.empty() && !any_glob(policy.cgroups, event.cgroup_path)) return false;
  if (policy.processes.empty()) return true;
  auto matches = [&](const std::string& exe) {
    return std::any_of(policy.processes.begin(), policy.processes.end(),
                       [&](const std::string& g) { return glob(g, exe); });
  };
  if (event.process && matches(event.process->exe)) return true;
  return std::any_of(event.lineage.begin(), event.lineage.end(),
                     [&](const ProcessRef& a) { return matches(a->exe); });
}

std::string process_violation(const WorkloadPolicy& policy, const Event& event,
                              const ExecutableHasher* hasher) {
  const std::string exe = event.process ? event.process->exe : std::string();
  const std::string parent = event.parent ? event.parent->exe : std::string();
  std::string hash;  // computed at most once, and only when an entry pins one
  bool hashed = false;
  std::string hash_mismatch;
  for (const auto& entry : policy.process_allow) {
    if (!glob(entry.path, exe)) continue;
    if (!entry.parents.empty() &&
        std::none_of(entry.parents.begin(), entry.parents.end(),
                     [&](const std::string& p) { return glob(p, parent); })) {
      continue;
    }
    if (!entry.users.empty() &&
        std::find(entry.users.begin(), entry.users.end(), event.task.uid) == entry.users.end()) {
      continue;
    }
    if (!entry.sha256.empty()) {
      if (!hashed) {
        hash = hasher && *hasher ? (*hasher)(event) : std::string();
        hashed = true;
      }
      if (hash != entry.sha256) {
        hash_mismatch = hash.empty() ? "its sha256 could not be computed"
                                     : "its sha256 " + hash + " is not the allowed " + entry.sha256;
        continue;
      }
    }
    return {};
  }
  const std::string who = "executable " + (exe.empty() ? std::string("<unknown>") : exe) +
                          " (parent " + (parent.empty() ? std::string("<unknown>") : parent) +
                          ", uid " + std::to_string(event.task.uid) + ")";
  if (!hash_mismatch.empty()) return who + " is allowlisted by path but " + hash_mismatch;
  return who + " matches no entry of the process allowlist";
}

std::string network_violation(const NetworkSection& section, const Event& event, bool ingress,
                              const PeerLookup* peers) {
  const std::string peer = event.remote.to_string(event.family) +
                           (ingress ? " to local port " + std::to_string(event.local.port)
                                    : ":" + std::to_string(event.remote.port)) +
                           (event.protocol == 17 ? "/udp" : "/tcp");
  const std::string what = ingress ? "connection from " + peer : "connection to " + peer;
  for (const auto& rule : section.deny) {
    if (rule.matches(event, ingress, peers)) return what + " matches deny rule " + rule.text;
  }
  if (section.default_allow) return {};
  for (const auto& rule : section.allow) {
    if (rule.matches(event, ingress, peers)) return {};
  }
  return what + " matches no " + (ingress ? "ingress" : "egress") + " allow rule (default deny)";
}

bool PathSpec::matches(std::string_view path) const {
  if (is_glob) return glob(text, std::string(path));
  if (path.size() < text.size() || path.compare(0, text.size(), text) != 0) return false;
  if (path.size() == text.size()) return true;
  if (text != "/" && path[text.size()] != '/') return false;  // /etc must not match /etcetera
  if (recursive) return true;
  const size_t rest = text == "/" ? text.size() : text.size() + 1;
  return path.find('/', rest) == std::string_view::npos;  // a direct child
}

namespace {

// What a file event changed, as FileAttribute bits and in words.
struct FileChange {
  uint8_t attribute = 0;
  std::string what;
};

FileChange describe_change(const Event& e, bool second_path) {
  switch (e.kind) {
    case EventKind::kFileOpen:
      return {kAttrContent,
              (e.flags & O_CREAT) != 0 ? "created or opened for writing" : "opened for writing"};
    case EventKind::kFileUnlink:
    case EventKind::kFileRmdir:
      return {kAttrContent, "deleted"};
    case EventKind::kFileRename:
      return {kAttrContent,
              second_path ? "replaced by a rename of " + e.path : "renamed to " + e.path2};
    case EventKind::kFileChmod: {
      char mode[16];
      std::snprintf(mode, sizeof(mode), "%04o", e.mode & 07777U);
      return {kAttrMode, std::string("mode set to ") + mode};
    }
    case EventKind::kFileChown:
      return {kAttrOwner, "owner set to " + std::to_string(static_cast<int32_t>(e.target_uid)) +
                              ":" + std::to_string(static_cast<int32_t>(e.target_gid))};
    default:
      return {};
  }
}

bool any_matches(const std::vector<PathSpec>& specs, std::string_view path) {
  return std::any_of(specs.begin(), specs.end(),
                     [&](const PathSpec& spec) { return spec.matches(path); });
}

bool excluded(const WatchEntry& entry, const std::string& path) {
  const std::string name = path.substr(path.rfind('/') + 1);
  return std::any_of(entry.exclude.begin(), entry.exclude.end(), [&](const std::string& g) {
    return glob(g, g.find('/') == std::string::npos ? name : path);
  });
}

std::string_view block_verdict(Mode mode) {
  return mode == Mode::kEnforce ? "block (enforce)" : "would block (audit)";
}

std::string by_whom(const Event& e) {
  return " by " + (e.process && !e.process->exe.empty() ? e.process->exe : e.task.comm) + " (pid " +
         std::to_string(e.task.tgid) + ", uid " + std::to_string(e.task.uid) + ")";
}

// The files section's decisions on one changed path. A path yields at most one decision, the
// strongest: read-only, then writable, then protect, then watch.
void decide_file(const WorkloadPolicy& policy, const Event& event, const std::string& path,
                 bool second_path, std::vector<Decision>& out) {
  if (path.empty()) return;
  const FilesSection& files = policy.files;
  const FileChange change = describe_change(event, second_path);
  if (change.attribute == 0) return;
  const std::string head = path + " " + change.what + by_whom(event);
  if (any_matches(files.read_only, path)) {
    out.push_back(
        {"read-only", head + ": the path is read-only", block_verdict(policy.files_mode)});
    return;
  }
  if (!files.writable.empty() && !any_matches(files.writable, path)) {
    out.push_back({"writable", head + ": the path is outside the writable paths",
                   block_verdict(policy.files_mode)});
    return;
  }
  if (any_matches(files.protect, path)) {
    out.push_back(
        {"protect", head + ": the path is protected",
         policy.files_mode == Mode::kEnforce ? "restore (enforce)" : "would restore (audit)"});
    return;
  }
  for (const WatchEntry& entry : files.watch) {
    if ((entry.attributes & change.attribute) == 0 || !entry.path.matches(path)) continue;
    if (excluded(entry, path)) continue;
    out.push_back({"files", head, "changed"});
    return;
  }
}

}  // namespace

bool concerns(const WorkloadPolicy& policy, EventKind kind) {
  switch (class_of(kind)) {
    case EventClass::kProcess:
      return kind == EventKind::kProcessExec && policy.has_process;
    case EventClass::kNetwork:
      return (kind == EventKind::kNetConnect && policy.egress.present) ||
             (kind == EventKind::kNetAccept && policy.ingress.present);
    case EventClass::kFile:
      return policy.files.present;
    default:
      return false;
  }
}

void decide(const WorkloadPolicy& policy, const Event& event, const ExecutableHasher* hasher,
            std::vector<Decision>& out, const PeerLookup* peers) {
  if (event.kind == EventKind::kProcessExec && policy.has_process) {
    std::string reason = process_violation(policy, event, hasher);
    if (!reason.empty())
      out.push_back({"process", std::move(reason), block_verdict(policy.process_mode)});
  } else if (event.kind == EventKind::kNetConnect && policy.egress.present) {
    std::string reason = network_violation(policy.egress, event, false, peers);
    if (!reason.empty())
      out.push_back({"egress", std::move(reason), block_verdict(policy.network_mode)});
  } else if (event.kind == EventKind::kNetAccept && policy.ingress.present) {
    std::string reason = network_violation(policy.ingress, event, true, peers);
    if (!reason.empty())
      out.push_back({"ingress", std::move(reason), block_verdict(policy.network_mode)});
  } else if (class_of(event.kind) == EventClass::kFile && policy.files.present) {
    if (event.result < 0) return;  // the change did not happen
    decide_file(policy, event, event.path, false, out);
    if (event.kind == EventKind::kFileRename) decide_file(policy, event, event.path2, true, out);
  }
}

}  // namespace palisade::policies
