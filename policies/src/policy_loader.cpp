// Parses and validates policy documents (YAML, Kubernetes style) and compiles them.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdio>
#include <set>

#include "document_reader.h"
#include "palisade/policies/policy_set.h"
#include "vm_policy_loader.h"

namespace palisade::policies {
namespace {

using detail::DocumentError;
using detail::DocumentReader;
using detail::parse_duration_ns;
using detail::parse_response;
using detail::parse_severity;
using detail::ParsedDocument;

using detail::kApiVersion;

struct DocumentText {
  std::string text;
  int first_line;  // 0-based line of the document's first line in its file
};

// Splits a multi-document stream at "---" and "..." lines. yaml-cpp 0.7's LoadAll never returns
// on some malformed streams (found by the fuzzer: ", a" loops forever); loading one document at
// a time with YAML::Load does not loop. Separator lines are blanked, not removed, so that marks
// keep their columns.
std::vector<DocumentText> split_documents(const std::string& stream) {
  std::vector<DocumentText> docs;
  DocumentText current{{}, 0};
  int line_no = 0;
  size_t pos = 0;
  while (pos <= stream.size()) {
    size_t end = stream.find('\n', pos);
    if (end == std::string::npos) end = stream.size();
    std::string line = stream.substr(pos, end - pos);
    const bool separator = line.rfind("---", 0) == 0 && (line.size() == 3 || line[3] == ' ' ||
                                                         line[3] == '\t' || line[3] == '\r');
    const bool terminator = line.rfind("...", 0) == 0 && (line.size() == 3 || line[3] == ' ');
    if (separator || terminator) {
      docs.push_back(std::move(current));
      current = DocumentText{{}, line_no + 1};
      if (separator && line.size() > 4) {
        // "--- {inline: document}": keep what follows the marker on the new document's first line.
        current.first_line = line_no;
        current.text = std::string(4, ' ') + line.substr(4) + '\n';
      }
    } else {
      current.text += line;
      current.text += '\n';
    }
    if (end == stream.size()) break;
    pos = end + 1;
    ++line_no;
  }
  docs.push_back(std::move(current));
  return docs;
}

bool only_comments(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    const size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#') return false;
    pos = end + 1;
  }
  return true;
}

// Compiles a condition, translating an error's column into the YAML file's coordinates.
Expression compile_condition(const DocumentReader& r, const YAML::Node& node,
                             const std::string& field, const Definitions& defs) {
  if (!node.IsScalar()) r.fail(node, field, "expected a condition string");
  const std::string text = node.as<std::string>();
  auto result = compile_expression(text, defs);
  if (auto* error = std::get_if<CompileError>(&result)) {
    // Quoted scalars start one column later; block scalars start on the next line (the column
    // is then approximate).
    const bool quoted = node.Tag() == "!";
    r.fail(
        node, field,
        error->message + " (at column " + std::to_string(error->column + 1) + " of the condition)",
        error->column + (quoted ? 1 : 0));
  }
  return std::get<Expression>(std::move(result));
}

void validate_template(const DocumentReader& r, const YAML::Node& node, const std::string& text) {
  size_t pos = 0;
  while ((pos = text.find('{', pos)) != std::string::npos) {
    size_t end = text.find('}', pos);
    if (end == std::string::npos)
      r.fail(node, "spec.output", "unclosed '{' in the output template");
    const std::string name = text.substr(pos + 1, end - pos - 1);
    if (find_field(name) == nullptr) {
      r.fail(node, "spec.output", "unknown field '{" + name + "}' in the output template");
    }
    pos = end + 1;
  }
}

std::unique_ptr<DetectionRule> compile_rule(const DocumentReader& r, const ParsedDocument& doc,
                                            const Definitions& defs) {
  const YAML::Node& spec = doc.spec;
  r.known_keys(spec, "spec",
               {"description", "condition", "output", "severity", "tags", "exceptions", "response",
                "threshold", "dedupe", "tests", "namespaces"});
  auto rule = std::make_unique<DetectionRule>();
  rule->name = doc.name;
  rule->source = r.source();
  rule->line = doc.line;
  rule->description = r.string_at(spec, "spec", "description", false);
  rule->condition_text = r.string_at(spec, "spec", "condition", true);
  rule->condition = compile_condition(r, spec["condition"], "spec.condition", defs);
  rule->output = r.string_at(spec, "spec", "output", true);
  validate_template(r, spec["output"], rule->output);
  if (spec["severity"]) rule->severity = parse_severity(r, spec["severity"]);
  if (spec["response"]) rule->response = parse_response(r, spec["response"]);
  rule->tags = r.strings_at(spec, "spec", "tags");
  rule->namespaces = r.strings_at(spec, "spec", "namespaces");
  if (const YAML::Node exceptions = spec["exceptions"]) {
    if (!exceptions.IsSequence())
      r.fail(exceptions, "spec.exceptions", "expected a list of conditions");
    for (const auto& e : exceptions) {
      rule->exceptions.push_back(compile_condition(r, e, "spec.exceptions[]", defs));
    }
  }
  if (const YAML::Node t = spec["threshold"]) {
    r.known_keys(t, "spec.threshold", {"count", "window", "by"});
    Threshold threshold;
    if (!t["count"] || !t["window"]) r.fail(t, "spec.threshold", "needs count and window");
    try {
      threshold.count = t["count"].as<uint32_t>();
    } catch (const YAML::Exception&) {
      r.fail(t["count"], "spec.threshold.count", "expected a positive number");
    }
    if (threshold.count < 2) r.fail(t["count"], "spec.threshold.count", "must be at least 2");
    threshold.window_ns = parse_duration_ns(r, t["window"], "spec.threshold.window");
    const std::string by = t["by"] ? t["by"].as<std::string>() : "process";
    if (by == "process") {
      threshold.by = Threshold::By::kProcess;
    } else if (by == "parent") {
      threshold.by = Threshold::By::kParent;
    } else if (by == "user") {
      threshold.by = Threshold::By::kUser;
    } else if (by == "global") {
      threshold.by = Threshold::By::kGlobal;
    } else {
      r.fail(t["by"], "spec.threshold.by", "expected process, parent, user or global");
    }
    rule->threshold = threshold;
  }
  if (const YAML::Node d = spec["dedupe"]) {
    r.known_keys(d, "spec.dedupe", {"fields", "window"});
    Dedupe dedupe;
    for (const auto& name : r.strings_at(d, "spec.dedupe", "fields")) {
      const FieldDef* field = find_field(name);
      if (field == nullptr || field->any_of != nullptr) {
        r.fail(d["fields"], "spec.dedupe.fields", "unknown or multi-valued field '" + name + "'");
      }
      dedupe.fields.push_back(field);
    }
    if (dedupe.fields.empty()) r.fail(d, "spec.dedupe.fields", "needs at least one field");
    if (!d["window"]) r.fail(d, "spec.dedupe.window", "required field is missing");
    dedupe.window_ns = parse_duration_ns(r, d["window"], "spec.dedupe.window");
    rule->dedupe = dedupe;
  }
  if (const YAML::Node tests = spec["tests"]) {
    if (!tests.IsSequence()) r.fail(tests, "spec.tests", "expected a list of test cases");
    for (const auto& t : tests) {
      r.known_keys(t, "spec.tests[]", {"name", "event", "expect"});
      RuleTestCase tc;
      tc.line = t.Mark().line + 1;
      tc.name = r.string_at(t, "spec.tests[]", "name", false);
      const std::string expect = r.string_at(t, "spec.tests[]", "expect", true);
      if (expect != "match" && expect != "no-match") {
        r.fail(t["expect"], "spec.tests[].expect", "expected match or no-match");
      }
      tc.expect_match = expect == "match";
      const YAML::Node event = t["event"];
      if (!event || !event.IsMap())
        r.fail(t, "spec.tests[].event", "expected a mapping of field: value");
      for (const auto& kv : event) {
        const std::string field = kv.first.as<std::string>();
        const FieldDef* def = find_field(field);
        if (def == nullptr) r.fail(kv.first, "spec.tests[].event", "unknown field '" + field + "'");
        if (def->assign == nullptr) {
          r.fail(kv.first, "spec.tests[].event",
                 "'" + field + "' is derived; set the field it comes from");
        }
        const YAML::Node value = kv.second;
        if (value.IsSequence()) {  // multi-valued (ancestor.exe)
          for (const auto& v : value) tc.fields.emplace_back(field, v.as<std::string>());
        } else {
          tc.fields.emplace_back(field, value.as<std::string>());
        }
      }
      rule->tests.push_back(std::move(tc));
    }
  }
  return rule;
}

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
    if (!ok)
      r.fail(ports, field + ".ports",
             "expected a port or a range like 8000-8080, got '" + text + "'");
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

// Decisions of a WorkloadPolicy section are reported through a rule of their own.
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

std::string fnv_digest(const std::vector<PolicySource>& sources) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& s : sources) {
    for (unsigned char c : s.name + '\0' + s.text + '\0') {
      h ^= c;
      h *= 1099511628211ULL;
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace

std::string Diagnostic::to_string() const {
  return source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: " + field +
         ": " + message;
}

std::shared_ptr<PolicySet> PolicySet::compile(const std::vector<PolicySource>& sources,
                                              std::vector<Diagnostic>& errors) {
  const size_t errors_before = errors.size();
  std::vector<std::pair<DocumentReader, ParsedDocument>> rules;
  std::vector<std::pair<DocumentReader, ParsedDocument>> workloads;
  std::vector<std::pair<DocumentReader, ParsedDocument>> vm_policies;
  Definitions defs;
  std::set<std::string> names;

  // Pass 1: parse every document, collect lists and macros (visible to all rules).
  for (const auto& source : sources) {
    for (const auto& piece : split_documents(source.text)) {
      if (only_comments(piece.text)) continue;
      DocumentReader r(source.name, piece.first_line);
      try {
        YAML::Node doc;
        try {
          doc = YAML::Load(piece.text);
        } catch (const YAML::ParserException& e) {
          errors.push_back(Diagnostic{source.name, e.mark.line + 1 + piece.first_line,
                                      e.mark.column + 1, "(yaml)", e.msg});
          continue;
        }
        if (!doc || !doc.IsMap()) {
          errors.push_back(
              Diagnostic{source.name, piece.first_line + 1, 1, "(document)",
                         "expected a mapping with apiVersion, kind, metadata and spec"});
          continue;
        }
        r.known_keys(doc, "", {"apiVersion", "kind", "metadata", "spec"});
        const std::string api = r.string_at(doc, "", "apiVersion", true);
        if (api != kApiVersion) {
          r.fail(doc["apiVersion"], "apiVersion",
                 "expected " + std::string(kApiVersion) + ", got '" + api + "'");
        }
        ParsedDocument parsed;
        parsed.kind = r.string_at(doc, "", "kind", true);
        if (!doc["metadata"]) r.fail(doc, "metadata", "required field is missing");
        r.known_keys(doc["metadata"], "metadata", {"name", "labels", "annotations", "namespace"});
        parsed.name = r.string_at(doc["metadata"], "metadata", "name", true);
        parsed.spec = doc["spec"];
        parsed.line = doc.Mark().line + 1;
        if (!parsed.spec) r.fail(doc, "spec", "required field is missing");
        const std::string key = parsed.kind + "/" + parsed.name;
        if (!names.insert(key).second) {
          r.fail(doc["metadata"]["name"], "metadata.name", "duplicate " + key);
        }
        if (parsed.kind == "List") {
          r.known_keys(parsed.spec, "spec", {"items"});
          defs.lists[parsed.name] = r.strings_at(parsed.spec, "spec", "items");
        } else if (parsed.kind == "Macro") {
          r.known_keys(parsed.spec, "spec", {"condition"});
          defs.macros[parsed.name] = r.string_at(parsed.spec, "spec", "condition", true);
        } else if (parsed.kind == "DetectionRule") {
          rules.emplace_back(r, std::move(parsed));
        } else if (parsed.kind == "WorkloadPolicy") {
          workloads.emplace_back(r, std::move(parsed));
        } else if (parsed.kind == "VirtualMachinePolicy") {
          vm_policies.emplace_back(r, std::move(parsed));
        } else {
          r.fail(doc["kind"], "kind",
                 "unknown kind '" + parsed.kind +
                     "' (expected DetectionRule, WorkloadPolicy, VirtualMachinePolicy, List or "
                     "Macro)");
        }
      } catch (const DocumentError& e) {
        errors.push_back(e.diagnostic);
      } catch (const YAML::Exception& e) {
        errors.push_back(Diagnostic{source.name, e.mark.line + 1 + r.line_offset(),
                                    e.mark.column + 1, "(yaml)", e.msg});
      }
    }
  }

  // Pass 2: compile rules against the complete definitions.
  auto set = std::shared_ptr<PolicySet>(new PolicySet());
  for (auto& [reader, doc] : rules) {
    try {
      set->rules_.push_back(compile_rule(reader, doc, defs));
    } catch (const DocumentError& e) {
      errors.push_back(e.diagnostic);
    } catch (const YAML::Exception& e) {
      errors.push_back(Diagnostic{reader.source(), e.mark.line + 1 + reader.line_offset(),
                                  e.mark.column + 1, "(yaml)", e.msg});
    }
  }
  for (auto& [reader, doc] : workloads) {
    try {
      auto policy = compile_workload(reader, doc);
      if (policy->has_process) {
        set->workload_rules_.push_back(decision_rule(*policy, "process", policy->process_mode));
      }
      for (auto [section, present] :
           {std::pair{"egress", policy->egress.present}, {"ingress", policy->ingress.present}}) {
        if (present) {
          set->workload_rules_.push_back(decision_rule(*policy, section, policy->network_mode));
        }
      }
      if (policy->files.present) {
        for (const char* section : {"files", "read-only", "writable", "protect"}) {
          set->workload_rules_.push_back(decision_rule(*policy, section, policy->files_mode));
        }
      }
      set->workloads_.push_back(std::move(policy));
    } catch (const DocumentError& e) {
      errors.push_back(e.diagnostic);
    } catch (const YAML::Exception& e) {
      errors.push_back(Diagnostic{reader.source(), e.mark.line + 1 + reader.line_offset(),
                                  e.mark.column + 1, "(yaml)", e.msg});
    }
  }
  for (auto& [reader, doc] : vm_policies) {
    try {
      set->vm_policies_.push_back(compile_vm_policy(reader, doc));
    } catch (const DocumentError& e) {
      errors.push_back(e.diagnostic);
    } catch (const YAML::Exception& e) {
      errors.push_back(Diagnostic{reader.source(), e.mark.line + 1 + reader.line_offset(),
                                  e.mark.column + 1, "(yaml)", e.msg});
    }
  }
  if (errors.size() != errors_before) return nullptr;
  set->set_hostname("");

  set->state_.resize(set->rules_.size());
  set->build_index();
  set->digest_ = fnv_digest(sources);
  return set;
}

}  // namespace palisade::policies
