// WorkloadPolicy documents: selector, process allowlist, network sections, files.
#include "workload_policy_loader.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdio>
#include <set>

namespace palisade::policies {
namespace {

using detail::DocumentReader;
using detail::ParsedDocument;

Mode parse_mode(const DocumentReader& r, const YAML::Node& node, const std::string& field) {
  const std::string s = node.as<std::string>();
  if (s == "audit") return Mode::kAudit;
  if (s == "enforce") return Mode::kEnforce;
  r.fail(node, field, "expected audit or enforce, got '" + s + "'");
}

NetworkRule parse_network_rule(const DocumentReader& r, const YAML::Node& node,
                               const std::string& field) {
  r.known_keys(node, field, {"cidr", "workload", "ports", "protocol"});
  NetworkRule rule;
  if (const YAML::Node workload = node["workload"]) {
    if (node["cidr"]) r.fail(workload, field + ".workload", "give cidr or workload, not both");
    r.known_keys(workload, field + ".workload", {"namespace", "podLabels"});
    PeerSelector peer;
    if (const YAML::Node ns = workload["namespace"]) {
      peer.namespaces = ns.IsScalar() ? std::vector<std::string>{ns.as<std::string>()}
                                      : r.strings_at(workload, field + ".workload", "namespace");
    }
    if (const YAML::Node labels = workload["podLabels"]) {
      if (!labels.IsMap()) {
        r.fail(labels, field + ".workload.podLabels", "expected a mapping of label: value");
      }
      for (const auto& kv : labels) {
        peer.pod_labels[kv.first.as<std::string>()] = kv.second.as<std::string>();
      }
    }
    if (peer.namespaces.empty() && peer.pod_labels.empty()) {
      r.fail(workload, field + ".workload", "expected namespace, podLabels or both");
    }
    rule.text = "workload{";
    for (const auto& ns : peer.namespaces) rule.text += "ns=" + ns + ",";
    for (const auto& [k, v] : peer.pod_labels) rule.text += k + "=" + v + ",";
    rule.text.back() = '}';
    rule.workload = std::move(peer);
  }
  if (const YAML::Node cidr = node["cidr"]) {
    const std::string text = cidr.as<std::string>();
    const auto slash = text.find('/');
    const std::string address = text.substr(0, slash);
    rule.family = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    if (inet_pton(rule.family, address.c_str(), rule.addr.data()) != 1) {
      r.fail(cidr, field + ".cidr", "not an IPv4 or IPv6 address: '" + address + "'");
    }
    const int max = rule.family == AF_INET ? 32 : 128;
    int prefix = max;
    if (slash != std::string::npos) {
      auto [end, ec] = std::from_chars(text.data() + slash + 1, text.data() + text.size(), prefix);
      if (ec != std::errc() || end != text.data() + text.size() || prefix < 0 || prefix > max) {
        r.fail(cidr, field + ".cidr", "bad prefix length in '" + text + "'");
      }
    }
    rule.prefix = static_cast<uint8_t>(prefix);
    rule.text = text;
  }
  if (const YAML::Node ports = node["ports"]) {
    const std::string text = ports.as<std::string>();
    const auto dash = text.find('-');
    int low = 0;
    int high = 0;
    auto parse = [&](std::string_view s, int& out) {
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
      return ec == std::errc() && end == s.data() + s.size() && out >= 0 && out <= 65535;
    };
    const std::string_view view(text);
    bool ok = dash == std::string::npos ? parse(view, low) && parse(view, high)
                                        : parse(view.substr(0, dash), low) &&
                                              parse(view.substr(dash + 1), high) && low <= high;
    if (!ok) {
      r.fail(ports, field + ".ports",
             "expected a port or a range like 8000-8080, got '" + text + "'");
    }
    rule.port_low = static_cast<uint16_t>(low);
    rule.port_high = static_cast<uint16_t>(high);
    rule.text += (rule.text.empty() ? "*:" : ":") + text;
  }
  if (const YAML::Node protocol = node["protocol"]) {
    const std::string text = protocol.as<std::string>();
    if (text == "tcp") {
      rule.protocol = 6;
    } else if (text == "udp") {
      rule.protocol = 17;
    } else if (text != "any") {
      r.fail(protocol, field + ".protocol", "expected tcp, udp or any");
    }
    rule.text += "/" + text;
  }
  if (rule.text.empty()) rule.text = "any";
  return rule;
}

NetworkSection parse_network_section(const DocumentReader& r, const YAML::Node& node,
                                     const std::string& field) {
  r.known_keys(node, field, {"default", "allow", "deny"});
  NetworkSection section;
  section.present = true;
  const std::string def = r.string_at(node, field, "default", false);
  if (!def.empty() && def != "deny" && def != "allow") {
    r.fail(node["default"], field + ".default", "expected deny or allow, got '" + def + "'");
  }
  section.default_allow = def == "allow";
  for (const char* list : {"allow", "deny"}) {
    const YAML::Node rules = node[list];
    if (!rules) continue;
    const std::string where = field + "." + list;
    if (!rules.IsSequence()) r.fail(rules, where, "expected a list");
    for (const auto& item : rules) {
      (std::string(list) == "allow" ? section.allow : section.deny)
          .push_back(parse_network_rule(r, item, where + "[]"));
    }
  }
  return section;
}

PathSpec parse_path_spec(const DocumentReader& r, const YAML::Node& node,
                         const std::string& field) {
  if (!node.IsScalar()) r.fail(node, field, "expected a path");
  PathSpec spec;
  spec.text = node.as<std::string>();
  if (spec.text.empty() || spec.text[0] != '/') {
    r.fail(node, field, "expected an absolute path or glob, got '" + spec.text + "'");
  }
  spec.is_glob = spec.text.find_first_of("*?[") != std::string::npos;
  // "/etc/" and "/etc" mean the same directory; events carry paths without a trailing slash.
  while (!spec.is_glob && spec.text.size() > 1 && spec.text.back() == '/') spec.text.pop_back();
  return spec;
}

std::vector<PathSpec> parse_path_list(const DocumentReader& r, const YAML::Node& map,
                                      const std::string& where, const char* key) {
  std::vector<PathSpec> out;
  const YAML::Node list = map[key];
  if (!list) return out;
  const std::string field = where + "." + key;
  if (!list.IsSequence()) r.fail(list, field, "expected a list of paths");
  for (const auto& item : list) out.push_back(parse_path_spec(r, item, field + "[]"));
  return out;
}

FilesSection parse_files_section(const DocumentReader& r, const YAML::Node& node) {
  const std::string where = "spec.files";
  r.known_keys(node, where, {"mode", "watch", "readOnly", "protect", "writable"});
  FilesSection files;
  files.present = true;
  if (const YAML::Node watch = node["watch"]) {
    if (!watch.IsSequence()) r.fail(watch, where + ".watch", "expected a list");
    for (const auto& item : watch) {
      const std::string field = where + ".watch[]";
      r.known_keys(item, field, {"path", "recursive", "exclude", "attributes"});
      if (!item["path"]) r.fail(item, field + ".path", "required field is missing");
      WatchEntry entry;
      entry.path = parse_path_spec(r, item["path"], field + ".path");
      if (const YAML::Node recursive = item["recursive"]) {
        if (!recursive.IsScalar() ||
            (recursive.Scalar() != "true" && recursive.Scalar() != "false"))
          r.fail(recursive, field + ".recursive", "expected true or false");
        entry.path.recursive = recursive.Scalar() == "true";
      }
      entry.exclude = r.strings_at(item, field, "exclude");
      if (item["attributes"]) {
        entry.attributes = 0;
        for (const auto& a : r.strings_at(item, field, "attributes")) {
          if (a == "content") {
            entry.attributes |= kAttrContent;
          } else if (a == "mode") {
            entry.attributes |= kAttrMode;
          } else if (a == "owner") {
            entry.attributes |= kAttrOwner;
          } else {
            r.fail(item["attributes"], field + ".attributes",
                   "expected content, mode or owner, got '" + a + "'");
          }
        }
      }
      files.watch.push_back(std::move(entry));
    }
  }
  files.read_only = parse_path_list(r, node, where, "readOnly");
  files.protect = parse_path_list(r, node, where, "protect");
  files.writable = parse_path_list(r, node, where, "writable");
  if (files.watch.empty() && files.read_only.empty() && files.protect.empty() &&
      files.writable.empty()) {
    r.fail(node, where, "expected at least one of watch, readOnly, protect, writable");
  }
  return files;
}

}  // namespace

std::unique_ptr<WorkloadPolicy> compile_workload(const DocumentReader& r,
                                                 const ParsedDocument& doc) {
  const YAML::Node& spec = doc.spec;
  r.known_keys(spec, "spec", {"selector", "mode", "process", "network", "files"});
  auto policy = std::make_unique<WorkloadPolicy>();
  policy->name = doc.name;
  policy->source = r.source();
  policy->line = doc.line;
  const YAML::Node selector = spec["selector"];
  if (!selector) r.fail(spec, "spec.selector", "required field is missing");
  r.known_keys(
      selector, "spec.selector",
      {"hosts", "processes", "cgroups", "namespace", "podLabels", "container", "image", "vm"});
  policy->hosts = r.strings_at(selector, "spec.selector", "hosts");
  policy->cgroups = r.strings_at(selector, "spec.selector", "cgroups");
  for (const auto& g : policy->cgroups) {
    if (g.empty() || g[0] != '/') {
      r.fail(selector["cgroups"], "spec.selector.cgroups",
             "expected cgroup v2 paths or globs starting with '/', got '" + g + "'");
    }
  }
  policy->processes = r.strings_at(selector, "spec.selector", "processes");
  // namespace, container and image take one glob or a list of them.
  auto one_or_many = [&](const char* key) {
    const YAML::Node node = selector[key];
    if (node && node.IsScalar()) return std::vector<std::string>{node.as<std::string>()};
    return r.strings_at(selector, "spec.selector", key);
  };
  policy->namespaces = one_or_many("namespace");
  policy->containers = one_or_many("container");
  policy->images = one_or_many("image");
  if (const YAML::Node labels = selector["podLabels"]) {
    if (!labels.IsMap())
      r.fail(labels, "spec.selector.podLabels", "expected a mapping of label: value");
    for (const auto& kv : labels) {
      if (!kv.second.IsScalar()) {
        r.fail(kv.second, "spec.selector.podLabels." + kv.first.as<std::string>(),
               "expected a string value");
      }
      policy->pod_labels[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
  }
  policy->vm_selector = static_cast<bool>(selector["vm"]);
  const Mode mode = spec["mode"] ? parse_mode(r, spec["mode"], "spec.mode") : Mode::kAudit;
  if (const YAML::Node files = spec["files"]) {
    policy->files_mode = files["mode"] ? parse_mode(r, files["mode"], "spec.files.mode") : mode;
    policy->files = parse_files_section(r, files);
  }
  if (const YAML::Node process = spec["process"]) {
    r.known_keys(process, "spec.process", {"mode", "allow", "drift"});
    policy->has_process = true;
    policy->process_mode =
        process["mode"] ? parse_mode(r, process["mode"], "spec.process.mode") : mode;
    const YAML::Node allow = process["allow"];
    if (!allow || !allow.IsSequence())
      r.fail(process, "spec.process.allow", "expected a list of executables");
    for (const auto& item : allow) {
      r.known_keys(item, "spec.process.allow[]", {"path", "parents", "users", "sha256"});
      ProcessAllowEntry entry;
      entry.path = r.string_at(item, "spec.process.allow[]", "path", true);
      entry.parents = r.strings_at(item, "spec.process.allow[]", "parents");
      for (const auto& u : r.strings_at(item, "spec.process.allow[]", "users")) {
        uint32_t uid = 0;
        auto [end, ec] = std::from_chars(u.data(), u.data() + u.size(), uid);
        if (ec != std::errc() || end != u.data() + u.size()) {
          r.fail(item["users"], "spec.process.allow[].users",
                 "expected numeric uids, got '" + u + "'");
        }
        entry.users.push_back(uid);
      }
      entry.sha256 = r.string_at(item, "spec.process.allow[]", "sha256", false);
      if (!entry.sha256.empty() &&
          (entry.sha256.size() != 64 ||
           entry.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)) {
        r.fail(item["sha256"], "spec.process.allow[].sha256", "expected 64 lowercase hex digits");
      }
      policy->process_allow.push_back(std::move(entry));
    }
    if (process["drift"]) {
      const std::string drift = r.string_at(process, "spec.process", "drift", true);
      if (drift == "alert") {
        policy->process_drift = DriftAction::kAlert;
      } else if (drift == "allow") {
        policy->process_drift = DriftAction::kAllow;
      } else if (drift != "block") {
        r.fail(process["drift"], "spec.process.drift",
               "expected block, alert or allow, got '" + drift + "'");
      }
    }
  }
  if (const YAML::Node network = spec["network"]) {
    r.known_keys(network, "spec.network", {"mode", "egress", "ingress", "management"});
    if (!network["egress"] && !network["ingress"]) {
      r.fail(network, "spec.network", "expected egress, ingress or both");
    }
    policy->network_mode =
        network["mode"] ? parse_mode(r, network["mode"], "spec.network.mode") : mode;
    if (network["egress"])
      policy->egress = parse_network_section(r, network["egress"], "spec.network.egress");
    if (network["ingress"])
      policy->ingress = parse_network_section(r, network["ingress"], "spec.network.ingress");
    // What stays allowed, both ways, while the workload is isolated by a response.
    if (const YAML::Node management = network["management"]) {
      if (!management.IsSequence())
        r.fail(management, "spec.network.management", "expected a list");
      for (const auto& item : management) {
        policy->management.push_back(parse_network_rule(r, item, "spec.network.management[]"));
      }
    }
  }
  return policy;
}

std::unique_ptr<DetectionRule> decision_rule(const WorkloadPolicy& policy, const char* section,
                                             Mode mode) {
  auto rule = std::make_unique<DetectionRule>();
  rule->name = "workload-policy/" + policy.name + "/" + section;
  rule->description = std::string("WorkloadPolicy ") + policy.name + ": " + section +
                      (mode == Mode::kEnforce ? " (enforce)" : " (audit)");
  const std::string_view name(section);
  const bool watch_only = name == "files";  // a watched path changed: a report, not a violation
  rule->severity = watch_only ? Severity::kMedium : Severity::kHigh;
  rule->tags = {watch_only ? "file-integrity" : "policy-violation", section};
  if (mode == Mode::kAudit || watch_only) {
    rule->response = Response::kAlert;
  } else {
    rule->response = name == "protect" ? Response::kRestore : Response::kBlock;
  }
  rule->source = policy.source;
  rule->line = policy.line;
  return rule;
}

}  // namespace palisade::policies
