// VirtualMachinePolicy documents: parsing, validation and VM selection.
#include <fnmatch.h>

#include "document_reader.h"
#include "palisade/policies/policy_set.h"
#include "vm_policy_loader.h"

namespace palisade::policies {
namespace {

using detail::DocumentReader;

bool glob_any(const std::vector<std::string>& globs, const std::string& text) {
  if (globs.empty()) return true;
  for (const auto& g : globs) {
    if (fnmatch(g.c_str(), text.c_str(), 0) == 0) return true;
  }
  return false;
}

int64_t positive_number(const DocumentReader& r, const YAML::Node& map, const std::string& where,
                        const char* key, int64_t fallback) {
  const YAML::Node node = map[key];
  if (!node) return fallback;
  int64_t value = 0;
  const std::string text = node.IsScalar() ? node.as<std::string>() : std::string();
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value <= 0) {
    r.fail(node, where + "." + key, "expected a positive whole number, got '" + text + "'");
  }
  return value;
}

uint64_t duration_at(const DocumentReader& r, const YAML::Node& map, const std::string& where,
                     const char* key, uint64_t fallback) {
  const YAML::Node node = map[key];
  if (!node) return fallback;
  return detail::parse_duration_ns(r, node, where + "." + key);
}

// The parts every detection has: enabled by being present, `for`, `response`, `severity`.
void read_detection(const DocumentReader& r, const YAML::Node& node, const std::string& where,
                    const VmPolicy& policy, const char* name, const char* description,
                    uint64_t default_sustained, VmDetection& out) {
  out.enabled = true;
  out.sustained_ns = duration_at(r, node, where, "for", default_sustained);
  out.configured_response =
      node["response"] ? detail::parse_response(r, node["response"]) : Response::kAlert;
  if (out.configured_response == Response::kKill ||
      out.configured_response == Response::kQuarantine) {
    r.fail(node["response"], where + ".response",
           "expected alert, suspend, snapshot, isolate or shutdown (kill and quarantine act on "
           "processes and files, not VMs)");
  }
  auto rule = std::make_shared<DetectionRule>();
  rule->name = "vm-policy/" + policy.name + "/" + name;
  rule->description = std::string(description);
  rule->severity = node["severity"] ? detail::parse_severity(r, node["severity"]) : Severity::kHigh;
  rule->response = policy.mode == Mode::kEnforce ? out.configured_response : Response::kAlert;
  rule->tags = {"vm", name};
  rule->source = policy.source;
  rule->line = node.Mark().line + 1 + r.line_offset();
  out.rule = std::move(rule);
}

void read_detections(const DocumentReader& r, const YAML::Node& node, VmPolicy& policy) {
  const std::string where = "spec.detections";
  r.known_keys(node, where, {"cpuSaturation", "egressSpike", "diskWriteBurst"});
  if (const YAML::Node cpu = node["cpuSaturation"]) {
    const std::string at = where + ".cpuSaturation";
    r.known_keys(cpu, at, {"percent", "for", "response", "severity"});
    policy.cpu.percent = positive_number(r, cpu, at, "percent", policy.cpu.percent);
    if (policy.cpu.percent > 100) r.fail(cpu["percent"], at + ".percent", "expected 1 to 100");
    read_detection(r, cpu, at, policy, "cpu-saturation",
                   "Sustained CPU saturation (typical of coin miners)", 300'000'000'000ULL,
                   policy.cpu);
  }
  if (const YAML::Node egress = node["egressSpike"]) {
    const std::string at = where + ".egressSpike";
    r.known_keys(egress, at,
                 {"factor", "minBytesPerSecond", "learning", "for", "response", "severity"});
    if (egress["factor"]) {
      const std::string text = egress["factor"].as<std::string>();
      char* end = nullptr;
      policy.egress.factor = std::strtod(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0' || policy.egress.factor <= 1) {
        r.fail(egress["factor"], at + ".factor", "expected a number above 1, got '" + text + "'");
      }
    }
    policy.egress.min_bytes_per_second =
        positive_number(r, egress, at, "minBytesPerSecond", policy.egress.min_bytes_per_second);
    policy.egress.learning_ns = duration_at(r, egress, at, "learning", policy.egress.learning_ns);
    read_detection(r, egress, at, policy, "egress-spike",
                   "Outbound traffic far above the VM's baseline (exfiltration)", 60'000'000'000ULL,
                   policy.egress);
  }
  if (const YAML::Node disk = node["diskWriteBurst"]) {
    const std::string at = where + ".diskWriteBurst";
    r.known_keys(disk, at, {"bytesPerSecond", "for", "response", "severity"});
    policy.disk_writes.bytes_per_second =
        positive_number(r, disk, at, "bytesPerSecond", policy.disk_writes.bytes_per_second);
    read_detection(r, disk, at, policy, "disk-write-burst",
                   "Disk-write burst (mass rewriting, typical of ransomware)", 30'000'000'000ULL,
                   policy.disk_writes);
  }
}

void read_inspection(const DocumentReader& r, const YAML::Node& node, VmInspectionSpec& out) {
  const std::string where = "spec.inspection";
  r.known_keys(node, where, {"interval", "method", "paths", "timeLimit"});
  out.enabled = true;
  out.interval_ns = duration_at(r, node, where, "interval", out.interval_ns);
  out.time_limit_ns = duration_at(r, node, where, "timeLimit", out.time_limit_ns);
  if (node["method"]) {
    out.method = r.string_at(node, where, "method", true);
    if (out.method != "snapshot" && out.method != "live") {
      r.fail(node["method"], where + ".method",
             "expected snapshot or live, got '" + out.method + "'");
    }
  }
  out.paths = r.strings_at(node, where, "paths");
  for (const auto& p : out.paths) {
    if (p.empty() || p[0] != '/') {
      r.fail(node["paths"], where + ".paths", "expected absolute guest paths, got '" + p + "'");
    }
  }
}

}  // namespace

bool VmSelector::matches(const VmView& vm) const {
  if (!glob_any(names, vm.name) || !glob_any(hosts, vm.host)) return false;
  for (const auto& [key, value] : labels) {
    const std::string* have = vm.label(key);
    if (have == nullptr || *have != value) return false;
  }
  return true;
}

std::unique_ptr<VmPolicy> compile_vm_policy(const DocumentReader& r,
                                            const detail::ParsedDocument& doc) {
  const YAML::Node& spec = doc.spec;
  r.known_keys(spec, "spec", {"mode", "selector", "detections", "inspection"});
  auto policy = std::make_unique<VmPolicy>();
  policy->name = doc.name;
  policy->source = r.source();
  policy->line = doc.line;
  if (const YAML::Node mode = spec["mode"]) {
    const std::string m = r.string_at(spec, "spec", "mode", true);
    if (m != "audit" && m != "enforce")
      r.fail(mode, "spec.mode", "expected audit or enforce, got '" + m + "'");
    policy->mode = m == "enforce" ? Mode::kEnforce : Mode::kAudit;
  }
  const YAML::Node selector = spec["selector"];
  if (!selector) r.fail(spec, "spec.selector", "required field is missing");
  r.known_keys(selector, "spec.selector", {"names", "hosts", "labels"});
  policy->selector.names = r.strings_at(selector, "spec.selector", "names");
  policy->selector.hosts = r.strings_at(selector, "spec.selector", "hosts");
  if (const YAML::Node labels = selector["labels"]) {
    if (!labels.IsMap()) r.fail(labels, "spec.selector.labels", "expected a mapping of key: value");
    for (const auto& kv : labels) {
      if (!kv.second.IsScalar()) {
        r.fail(kv.second, "spec.selector.labels." + kv.first.as<std::string>(),
               "expected a string value");
      }
      policy->selector.labels[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
  }
  if (const YAML::Node detections = spec["detections"]) read_detections(r, detections, *policy);
  if (const YAML::Node inspection = spec["inspection"]) {
    read_inspection(r, inspection, policy->inspection);
  }
  if (!policy->cpu.enabled && !policy->egress.enabled && !policy->disk_writes.enabled &&
      !policy->inspection.enabled) {
    r.fail(spec, "spec", "expected detections, inspection or both");
  }
  return policy;
}

}  // namespace palisade::policies
