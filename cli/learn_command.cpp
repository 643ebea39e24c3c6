// `palisade policy learn`: observes a workload (from the local store, over a past window or for a
// duration from now while the agent records) and writes a WorkloadPolicy that allows exactly what
// it saw, in audit mode, ready to review and switch to enforce.
#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "learn.h"
#include "palisade/base/file_hash_cache.h"
#include "palisade/ocsf/reader.h"
#include "palisade/runtime/event_store.h"

namespace palisade::cli {
namespace {

struct Observed {
  std::map<std::string, std::set<std::string>> executables;        // exe -> parents seen
  std::set<std::tuple<std::string, uint16_t, std::string>> peers;  // ip, port, protocol
  std::set<std::pair<uint16_t, std::string>> served;               // local port, protocol
  std::set<std::string> written;                                   // paths changed
  size_t events = 0;
};

// The writable paths for a policy: each written file, except that a directory in which more than
// a few distinct files were written (logs, caches, temporary files) is allowed as a whole.
std::vector<std::string> writable_paths(const std::set<std::string>& written) {
  constexpr size_t kFilesPerDirectory = 3;
  std::map<std::string, std::vector<std::string>> by_directory;
  for (const auto& path : written) {
    const auto slash = path.rfind('/');
    by_directory[slash == 0 ? "/" : path.substr(0, slash)].push_back(path);
  }
  std::vector<std::string> out;
  for (auto& [directory, files] : by_directory) {
    if (files.size() > kFilesPerDirectory) {
      out.push_back(directory);
    } else {
      out.insert(out.end(), files.begin(), files.end());
    }
  }
  return out;
}

void emit_network_rule(YAML::Emitter& out, const std::string& cidr, uint16_t port,
                       const std::string& protocol) {
  out << YAML::Flow << YAML::BeginMap;
  if (!cidr.empty()) out << YAML::Key << "cidr" << YAML::Value << cidr;
  out << YAML::Key << "ports" << YAML::Value << std::to_string(port) << YAML::Key << "protocol"
      << YAML::Value << protocol << YAML::EndMap;
}

bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace

LearnResult learn_workload_policy(const LearnOptions& options) {
  if (options.duration_seconds > 0) {
    std::cerr << "observing for " << options.duration_seconds
              << " s (the agent must be running and writing " << options.db << ")\n";
    std::this_thread::sleep_for(std::chrono::seconds(options.duration_seconds));
  }
  runtime::EventReader reader(options.db);
  runtime::EventQuery query;
  query.since_ms = options.since_ms;
  query.limit = options.limit;
  Observed seen;
  for (const auto& line : reader.events(query)) {
    auto event = ocsf::event_from_ocsf(nlohmann::json::parse(line));
    if (!event || !event->process) continue;
    if (!options.exe_glob.empty() && !glob_match(options.exe_glob, event->process->exe)) {
      bool descendant = false;
      for (const auto& a : event->lineage)
        descendant = descendant || glob_match(options.exe_glob, a->exe);
      if (!descendant) continue;
    }
    seen.events++;
    if (event->kind == EventKind::kProcessExec && !event->process->exe.empty()) {
      seen.executables[event->process->exe].insert(event->parent ? event->parent->exe : "");
    } else if (event->kind == EventKind::kNetConnect && event->result >= -115 &&
               event->family != 0) {
      seen.peers.emplace(event->remote.to_string(event->family), event->remote.port,
                         event->protocol == 17 ? "udp" : "tcp");
    } else if (event->kind == EventKind::kNetAccept && event->local.port != 0) {
      seen.served.emplace(event->local.port, event->protocol == 17 ? "udp" : "tcp");
    } else if (class_of(event->kind) == EventClass::kFile && event->result >= 0) {
      if (!event->path.empty()) seen.written.insert(event->path);
      if (!event->path2.empty()) seen.written.insert(event->path2);
    }
  }

  base::FileHashCache hashes;
  YAML::Emitter out;
  out << YAML::Comment("Learned by palisade policy learn from " + std::to_string(seen.events) +
                       " events; review, then set mode: enforce.");
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << "palisade.dev/v1";
  out << YAML::Key << "kind" << YAML::Value << "WorkloadPolicy";
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap << YAML::Key << "name"
      << YAML::Value << options.name << YAML::EndMap;
  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "selector" << YAML::Value << YAML::BeginMap << YAML::Key << "hosts"
      << YAML::Value << YAML::Flow << options.hosts;
  if (!options.exe_glob.empty()) {
    out << YAML::Key << "processes" << YAML::Value << YAML::Flow
        << std::vector<std::string>{options.exe_glob};
  }
  out << YAML::EndMap;
  out << YAML::Key << "mode" << YAML::Value << "audit";
  out << YAML::Key << "process" << YAML::Value << YAML::BeginMap << YAML::Key << "allow"
      << YAML::Value << YAML::BeginSeq;
  for (const auto& [exe, parents] : seen.executables) {
    out << YAML::BeginMap << YAML::Key << "path" << YAML::Value << exe;
    std::vector<std::string> known;
    for (const auto& p : parents) {
      if (!p.empty()) known.push_back(p);
    }
    if (!known.empty() && known.size() == parents.size()) {
      out << YAML::Key << "parents" << YAML::Value << YAML::Flow << known;
    }
    const std::string digest = hashes.sha256(exe);
    if (!digest.empty()) out << YAML::Key << "sha256" << YAML::Value << digest;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  out << YAML::Key << "network" << YAML::Value << YAML::BeginMap << YAML::Key << "egress"
      << YAML::Value << YAML::BeginMap << YAML::Key << "default" << YAML::Value << "deny"
      << YAML::Key << "allow" << YAML::Value << YAML::BeginSeq;
  for (const auto& [ip, port, protocol] : seen.peers) {
    const bool v6 = ip.find(':') != std::string::npos;
    emit_network_rule(out, ip + (v6 ? "/128" : "/32"), port, protocol);
  }
  out << YAML::EndSeq << YAML::EndMap;
  // Clients of a served port are many and change; the port is what the workload offers.
  out << YAML::Key << "ingress" << YAML::Value << YAML::BeginMap << YAML::Key << "default"
      << YAML::Value << "deny" << YAML::Key << "allow" << YAML::Value << YAML::BeginSeq;
  for (const auto& [port, protocol] : seen.served) emit_network_rule(out, "", port, protocol);
  out << YAML::EndSeq << YAML::EndMap << YAML::EndMap;
  const std::vector<std::string> writable = writable_paths(seen.written);
  if (!writable.empty()) {
    out << YAML::Key << "files" << YAML::Value << YAML::BeginMap << YAML::Key << "writable"
        << YAML::Value << writable << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
  return LearnResult{std::string(out.c_str()) + "\n",
                     seen.events,
                     seen.executables.size(),
                     seen.peers.size(),
                     seen.served.size(),
                     writable.size()};
}

namespace {
bool glob_match(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}
}  // namespace

}  // namespace palisade::cli
