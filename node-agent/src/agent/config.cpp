#include "palisade/agent/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <set>
#include <sstream>

#include "palisade/base/bounded_read.h"
#include "palisade/base/private_files.h"
#include "palisade/policies/policy_set.h"

namespace palisade::agent {
namespace {

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& field,
                         const std::string& problem) const {
    const YAML::Mark mark = node.Mark();
    std::ostringstream out;
    out << source_ << ':' << (mark.line + 1) << ':' << (mark.column + 1) << ": " << field << ": "
        << problem;
    throw ConfigurationError(out.str());
  }

  // Rejects keys the schema does not know: a typo must not silently keep a default.
  void known_keys(const YAML::Node& map, const std::string& where,
                  const std::set<std::string>& keys) const {
    if (!map.IsMap()) fail(map, where, "expected a mapping");
    for (const auto& item : map) {
      if (!item.first.IsScalar()) fail(item.first, where, "a key must be a plain name");
      auto key = item.first.as<std::string>();
      if (keys.count(key) == 0) {
        std::string known;
        for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
        fail(item.first, join(where, key), "unknown key (known: " + known + ")");
      }
    }
  }

  template <typename T>
  void read(const YAML::Node& map, const std::string& where, const char* key, T& out) const {
    const YAML::Node node = map[key];
    if (!node) return;
    try {
      out = node.as<T>();
    } catch (const YAML::Exception&) {
      fail(node, join(where, key), std::string("expected ") + type_name<T>());
    }
  }

  // A string that must be one of `choices`; the error lists them ("expected a, b or c").
  void read_choice(const YAML::Node& map, const std::string& where, const char* key,
                   std::string& out, const std::vector<std::string>& choices) const {
    read(map, where, key, out);
    if (std::find(choices.begin(), choices.end(), out) != choices.end()) return;
    std::string expected;
    for (size_t i = 0; i < choices.size(); ++i) {
      expected += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
    }
    fail(map[key], join(where, key), "expected " + expected);
  }

  template <typename T>
  void read_positive(const YAML::Node& map, const std::string& where, const char* key, T& out,
                     T max) const {
    read(map, where, key, out);
    if (map[key] && (out <= 0 || out > max)) {
      fail(map[key], join(where, key), "must be between 1 and " + std::to_string(max));
    }
  }

  // A list of strings, any text.
  void read_strings(const YAML::Node& map, const std::string& where, const char* key,
                    std::vector<std::string>& out) const {
    const YAML::Node node = map[key];
    if (!node) return;
    if (!node.IsSequence()) fail(node, join(where, key), "expected a list of strings");
    out.clear();
    for (const auto& item : node) {
      if (!item.IsScalar()) fail(item, join(where, key), "expected a string");
      out.push_back(item.as<std::string>());
    }
  }

  // A list of absolute paths (or path prefixes).
  void read_list(const YAML::Node& map, const std::string& where, const char* key,
                 std::vector<std::string>& out) const {
    read_strings(map, where, key, out);
    size_t i = 0;
    for (const auto& item : map[key]) {
      const std::string& value = out[i++];
      if (value.empty() || value.front() != '/') {
        fail(item, join(where, key), "path prefix must be absolute, got '" + value + "'");
      }
    }
  }

 private:
  static std::string join(const std::string& where, const std::string& key) {
    return where.empty() ? key : where + "." + key;
  }
  template <typename T>
  static const char* type_name() {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_same_v<T, std::string>) return "a string";
    return "a number";
  }
  std::string source_;
};

}  // namespace

void read_metrics(const Reader& r, const YAML::Node& n, AgentConfig& c) {
  r.known_keys(n, "metrics",
               {"enabled", "address", "port", "tls_certificate", "tls_key", "bearer_token_file"});
  r.read(n, "metrics", "enabled", c.metrics_enabled);
  r.read(n, "metrics", "address", c.metrics.address);
  uint32_t port = c.metrics.port;
  r.read_positive<uint32_t>(n, "metrics", "port", port, 65535);
  c.metrics.port = static_cast<uint16_t>(port);
  r.read(n, "metrics", "tls_certificate", c.metrics.tls_certificate);
  r.read(n, "metrics", "tls_key", c.metrics.tls_key);
  if (c.metrics.tls_certificate.empty() != c.metrics.tls_key.empty()) {
    r.fail(n, "metrics", "tls_certificate and tls_key go together");
  }
  r.read(n, "metrics", "bearer_token_file", c.metrics.bearer_token_file);
}

namespace {

// The policy engine's severity names (its OCSF severity_id is the enum's value), lower case.
int severity_id_of(const std::string& name) {
  for (int id = 1; id <= static_cast<int>(policies::Severity::kCritical); ++id) {
    const std::string_view known = policies::severity_name(static_cast<policies::Severity>(id));
    if (std::equal(known.begin(), known.end(), name.begin(), name.end(),
                   [](char a, char b) { return std::tolower(a) == b; }))
      return id;
  }
  return -1;
}

void read_nats(const Reader& r, const YAML::Node& n, const std::string& where,
               exporters::NatsSettings& nats) {
  r.known_keys(n, where,
               {"servers", "subject_prefix", "ca_file", "certificate", "key", "credentials_file",
                "max_in_flight", "ack_timeout_ms"});
  r.read_strings(n, where, "servers", nats.servers);
  if (nats.servers.empty()) r.fail(n, where + ".servers", "at least one server URL");
  r.read(n, where, "subject_prefix", nats.subject_prefix);
  if (nats.subject_prefix.empty() ||
      nats.subject_prefix.find_first_of("*> \t") != std::string::npos) {
    r.fail(n, where + ".subject_prefix", "a subject without wildcards or spaces");
  }
  r.read(n, where, "ca_file", nats.ca_file);
  r.read(n, where, "certificate", nats.certificate);
  r.read(n, where, "key", nats.key);
  if (nats.certificate.empty() != nats.key.empty()) {
    r.fail(n, where + ".certificate", "certificate and key go together");
  }
  r.read(n, where, "credentials_file", nats.credentials_file);
  r.read_positive<uint32_t>(n, where, "max_in_flight", nats.max_in_flight, 1U << 20);
  r.read_positive<uint32_t>(n, where, "ack_timeout_ms", nats.ack_timeout_ms, 600000);
}

exporters::ExporterSettings read_exporter(const Reader& r, const YAML::Node& n,
                                          const std::string& where) {
  exporters::ExporterSettings e;
  if (!n.IsMap()) r.fail(n, where, "expected a mapping (name, type, ...)");
  r.known_keys(n, where,
               {"name", "type", "classes", "min_severity", "rules", "rate_limit", "redact",
                "queue_events", "spool", "nats"});
  r.read(n, where, "name", e.name);
  if (e.name.empty() ||
      e.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") != std::string::npos) {
    r.fail(n, where + ".name", "a name of lower-case letters, digits, '-' and '_'");
  }
  r.read_choice(n, where, "type", e.type, {"nats"});
  r.read_strings(n, where, "classes", e.classes);
  for (const auto& c : e.classes) {
    static const std::vector<std::string> kClasses = {"process",     "file", "network", "privilege",
                                                      "enforcement", "vm",   "finding", "audit"};
    if (std::find(kClasses.begin(), kClasses.end(), c) == kClasses.end()) {
      r.fail(n["classes"], where + ".classes",
             "unknown class '" + c +
                 "' (process, file, network, privilege, enforcement, vm, "
                 "finding, audit)");
    }
  }
  std::string severity;
  r.read(n, where, "min_severity", severity);
  if (!severity.empty()) {
    e.min_severity_id = severity_id_of(severity);
    if (e.min_severity_id < 0) {
      r.fail(n["min_severity"], where + ".min_severity",
             "expected informational, low, medium, high or critical");
    }
  }
  r.read_strings(n, where, "rules", e.rules);
  if (auto limit = n["rate_limit"]) {
    const std::string at = where + ".rate_limit";
    r.known_keys(limit, at, {"events_per_second", "burst"});
    r.read(limit, at, "events_per_second", e.rate_per_second);
    r.read(limit, at, "burst", e.burst);
    if (e.rate_per_second < 0 || e.burst < 0) r.fail(limit, at, "must not be negative");
  }
  r.read_strings(n, where, "redact", e.redact);
  for (const auto& path : e.redact) {
    if (path.empty() || path.front() == '.' || path.back() == '.' ||
        path.find("..") != std::string::npos) {
      r.fail(n["redact"], where + ".redact", "'" + path + "' is not a dotted field path");
    }
  }
  r.read_positive<size_t>(n, where, "queue_events", e.queue_events, size_t{1} << 24);
  e.spool.directory = "/var/lib/palisade/spool/" + e.name;
  if (auto s = n["spool"]) {
    const std::string at = where + ".spool";
    r.known_keys(s, at, {"directory", "max_mib", "when_full"});
    std::string directory = e.spool.directory.string();
    r.read(s, at, "directory", directory);
    e.spool.directory = directory;
    uint64_t mib = e.spool.max_bytes >> 20;
    r.read_positive<uint64_t>(s, at, "max_mib", mib, 1U << 20);
    e.spool.max_bytes = mib << 20;
    std::string when_full = "drop_newest";
    r.read_choice(s, at, "when_full", when_full, {"drop_newest", "drop_oldest"});
    e.spool.when_full = when_full == "drop_oldest" ? exporters::WhenFull::kDropOldest
                                                   : exporters::WhenFull::kDropNewest;
  }
  if (auto nats = n["nats"]) read_nats(r, nats, where + ".nats", e.nats);
  return e;
}

}  // namespace

void read_exporters(const Reader& r, const YAML::Node& n, AgentConfig& c) {
  if (!n.IsSequence()) r.fail(n, "exporters", "expected a list of exporters");
  c.exporters.clear();
  for (size_t i = 0; i < n.size(); ++i) {
    exporters::ExporterSettings e = read_exporter(r, n[i], "exporters[" + std::to_string(i) + "]");
    for (const auto& other : c.exporters) {
      if (other.name == e.name) r.fail(n[i]["name"], "exporters", "two exporters named " + e.name);
    }
    c.exporters.push_back(std::move(e));
  }
}

void read_hypervisor(const Reader& r, const YAML::Node& n, HypervisorConfig& h) {
  r.known_keys(
      n, "hypervisor",
      {"connect", "read_only", "stats_interval_seconds", "emit_stats", "store_path", "status_file",
       "reconnect_max_seconds", "max_domains", "evidence_directory", "metrics_port", "inspection"});
  r.read_strings(n, "hypervisor", "connect", h.connect);
  r.read(n, "hypervisor", "read_only", h.read_only);
  r.read_positive<uint32_t>(n, "hypervisor", "stats_interval_seconds", h.stats_interval_seconds,
                            86400);
  r.read(n, "hypervisor", "emit_stats", h.emit_stats);
  r.read(n, "hypervisor", "store_path", h.store_path);
  r.read(n, "hypervisor", "status_file", h.status_file);
  r.read_positive<uint32_t>(n, "hypervisor", "reconnect_max_seconds", h.reconnect_max_seconds,
                            3600);
  r.read_positive<uint32_t>(n, "hypervisor", "max_domains", h.max_domains, 1000000);
  r.read(n, "hypervisor", "evidence_directory", h.evidence_directory);
  uint32_t port = h.metrics_port;
  r.read_positive<uint32_t>(n, "hypervisor", "metrics_port", port, 65535);
  h.metrics_port = static_cast<uint16_t>(port);
  if (auto i = n["inspection"]) {
    const std::string where = "hypervisor.inspection";
    r.known_keys(i, where,
                 {"parallelism", "max_pending", "store", "overlay_directory", "backend",
                  "backend_settings"});
    r.read_positive<uint32_t>(i, where, "parallelism", h.inspection_parallelism, 64);
    r.read_positive<uint32_t>(i, where, "max_pending", h.inspection_max_pending, 100000);
    r.read(i, where, "store", h.inspection_store);
    r.read(i, where, "overlay_directory", h.inspection_overlay_directory);
    r.read(i, where, "backend", h.inspection_backend);
    r.read_strings(i, where, "backend_settings", h.inspection_backend_settings);
  }
}

namespace {

// Before any parsing: one document, at most kMaxConfigBytes.
void check_config_limits(const std::string& yaml_text, const std::string& source_name) {
  if (yaml_text.size() > kMaxConfigBytes) {
    throw ConfigurationError(source_name + ":1:1: " + std::to_string(yaml_text.size()) +
                             " bytes or more, more than the " + std::to_string(kMaxConfigBytes) +
                             " a configuration file may have");
  }
  bool content = false;
  int line_no = 0;
  std::istringstream lines(yaml_text);
  for (std::string line; std::getline(lines, line); ++line_no) {
    const bool separator = line.rfind("---", 0) == 0 &&
                           (line.size() == 3 || std::isspace(static_cast<unsigned char>(line[3])));
    if (separator && content) {
      throw ConfigurationError(source_name + ":" + std::to_string(line_no + 1) +
                               ":1: a second YAML document starts here; a configuration file "
                               "holds one");
    }
    const size_t first = line.find_first_not_of(" \t\r");
    if (!separator && first != std::string::npos && line[first] != '#') content = true;
  }
}

}  // namespace

AgentConfig default_config() {
  return apply_config(AgentConfig{}, std::string(default_config_yaml()), "<built-in defaults>");
}

namespace {
AgentConfig apply_config_text(const AgentConfig& base, const std::string& yaml_text,
                              const std::string& source_name);
}  // namespace

// Whatever yaml-cpp throws from a node the readers did not expect is still an error in this
// file, at its line (found by tests/fuzz/config_fuzzer: a mapping used as a key).
AgentConfig apply_config(const AgentConfig& base, const std::string& yaml_text,
                         const std::string& source_name) {
  try {
    return apply_config_text(base, yaml_text, source_name);
  } catch (const YAML::Exception& e) {
    throw ConfigurationError(source_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                             std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

namespace {

AgentConfig apply_config_text(const AgentConfig& base, const std::string& yaml_text,
                              const std::string& source_name) {
  AgentConfig c = base;
  Reader r(source_name);
  check_config_limits(yaml_text, source_name);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    std::ostringstream out;
    out << source_name << ':' << (e.mark.line + 1) << ':' << (e.mark.column + 1)
        << ": YAML syntax error: " << e.msg;
    throw ConfigurationError(out.str());
  }
  if (!root || root.IsNull()) return c;
  r.known_keys(root, "",
               {"output", "store", "sensor", "process_table", "status", "metrics", "exporters",
                "policies", "containers", "kubernetes", "enforcement", "responses",
                "file_integrity", "hypervisor", "log_level", "file_group"});
  if (auto n = root["metrics"]) read_metrics(r, n, c);
  if (auto n = root["exporters"]) read_exporters(r, n, c);
  if (auto n = root["hypervisor"]) read_hypervisor(r, n, c.hypervisor);
  if (auto n = root["file_integrity"]) {
    r.known_keys(n, "file_integrity",
                 {"database", "protect_database", "content_directory", "rescan_interval_seconds",
                  "restore_delay_ms"});
    r.read(n, "file_integrity", "database", c.fim_database);
    r.read(n, "file_integrity", "protect_database", c.fim_protect_database);
    r.read(n, "file_integrity", "content_directory", c.fim_content_directory);
    r.read(n, "file_integrity", "rescan_interval_seconds", c.fim_rescan_interval_seconds);
    r.read(n, "file_integrity", "restore_delay_ms", c.fim_restore_delay_ms);
  }
  if (auto n = root["responses"]) {
    r.known_keys(n, "responses", {"enabled", "max_per_minute", "quarantine_directory"});
    r.read(n, "responses", "enabled", c.responses.enabled);
    r.read_positive<uint32_t>(n, "responses", "max_per_minute", c.responses.max_per_minute, 100000);
    r.read(n, "responses", "quarantine_directory", c.responses.quarantine_directory);
  }
  if (auto n = root["enforcement"]) {
    r.known_keys(n, "enforcement",
                 {"enabled", "pin_directory", "exec_mechanism", "rescan_ms",
                  "canary_interval_seconds", "fanotify", "unidentified"});
    if (auto u = n["unidentified"]) {
      r.known_keys(u, "enforcement.unidentified", {"parents", "posture"});
      r.read_list(u, "enforcement.unidentified", "parents", c.enforcement.options.guarded_parents);
      r.read_choice(u, "enforcement.unidentified", "posture",
                    c.enforcement.options.unidentified_posture,
                    {"allow", "audit", "deny-network", "deny"});
    }
    r.read(n, "enforcement", "canary_interval_seconds", c.enforcement.canary_interval_seconds);
    r.read(n, "enforcement", "enabled", c.enforcement.enabled);
    r.read(n, "enforcement", "pin_directory", c.enforcement.options.pin_root);
    r.read_choice(n, "enforcement", "exec_mechanism", c.enforcement.options.exec_mechanism,
                  {"auto", "lsm", "fanotify", "kill"});
    r.read_positive<uint32_t>(n, "enforcement", "rescan_ms", c.enforcement.rescan_ms, 3600000);
    if (auto f = n["fanotify"]) {
      r.known_keys(f, "enforcement.fanotify", {"timeout_ms", "on_timeout", "mounts"});
      r.read_positive<uint32_t>(f, "enforcement.fanotify", "timeout_ms",
                                c.enforcement.options.fanotify_timeout_ms, 60000);
      std::string on_timeout = c.enforcement.options.fanotify_fail_closed ? "deny" : "allow";
      r.read_choice(f, "enforcement.fanotify", "on_timeout", on_timeout, {"allow", "deny"});
      c.enforcement.options.fanotify_fail_closed = on_timeout == "deny";
      r.read_list(f, "enforcement.fanotify", "mounts", c.enforcement.options.fanotify_mounts);
    }
  }
  if (auto n = root["kubernetes"]) {
    r.known_keys(n, "kubernetes",
                 {"enabled", "kubeconfig", "context", "node_name", "policies", "events", "peers"});
    r.read(n, "kubernetes", "peers", c.kubernetes.peers);
    r.read_choice(n, "kubernetes", "enabled", c.kubernetes.enabled, {"auto", "true", "false"});
    r.read(n, "kubernetes", "kubeconfig", c.kubernetes.kubeconfig);
    r.read(n, "kubernetes", "context", c.kubernetes.context);
    r.read(n, "kubernetes", "node_name", c.kubernetes.node_name);
    r.read(n, "kubernetes", "policies", c.kubernetes.policies);
    r.read(n, "kubernetes", "events", c.kubernetes.events);
  }
  if (auto n = root["containers"]) {
    r.known_keys(n, "containers", {"containerd", "max_containers", "exited_linger_seconds"});
    if (auto d = n["containerd"]) {
      r.known_keys(d, "containers.containerd", {"enabled", "socket", "namespace"});
      r.read(d, "containers.containerd", "enabled", c.containers.containerd);
      r.read(d, "containers.containerd", "socket", c.containers.containerd_socket);
      r.read(d, "containers.containerd", "namespace", c.containers.containerd_namespace);
    }
    r.read_positive<uint32_t>(n, "containers", "max_containers", c.containers.max_containers,
                              1U << 20);
    r.read_positive<uint32_t>(n, "containers", "exited_linger_seconds",
                              c.containers.exited_linger_seconds, 3600);
  }
  if (auto n = root["policies"]) {
    r.known_keys(n, "policies", {"directory", "default_rules"});
    r.read(n, "policies", "directory", c.policy_directory);
    r.read(n, "policies", "default_rules", c.default_rules);
  }

  if (auto n = root["output"]) {
    r.known_keys(n, "output", {"stdout", "json_file"});
    r.read(n, "output", "stdout", c.outputs.stdout_enabled);
    r.read(n, "output", "json_file", c.outputs.json_file);
  }
  if (auto n = root["store"]) {
    r.known_keys(n, "store", {"enabled", "path", "max_age_hours", "max_size_mib", "min_free_mib"});
    r.read(n, "store", "enabled", c.outputs.store_enabled);
    r.read(n, "store", "path", c.outputs.store.path);
    uint64_t hours = c.outputs.store.max_age_seconds / 3600;
    uint64_t mib = c.outputs.store.max_bytes >> 20;
    r.read_positive<uint64_t>(n, "store", "max_age_hours", hours, uint64_t{24} * 3650);
    r.read_positive<uint64_t>(n, "store", "max_size_mib", mib, 1U << 20);
    c.outputs.store.max_age_seconds = hours * 3600;
    c.outputs.store.max_bytes = mib << 20;
    uint64_t free_mib = c.outputs.store.min_free_bytes >> 20;
    r.read(n, "store", "min_free_mib", free_mib);
    c.outputs.store.min_free_bytes = free_mib << 20;
  }
  if (auto n = root["sensor"]) {
    r.known_keys(n, "sensor",
                 {"ring_buffer_mib", "argv_max_bytes", "file_exclude_prefixes",
                  "file_include_prefixes", "wakeup_kib", "max_latency_ms", "kernel_time_stats"});
    r.read(n, "sensor", "kernel_time_stats", c.sensor.kernel_time_stats);
    uint64_t wakeup_kib = c.sensor.wakeup_bytes >> 10;
    r.read_positive<uint64_t>(n, "sensor", "wakeup_kib", wakeup_kib, 1U << 20);
    c.sensor.wakeup_bytes = wakeup_kib << 10;
    r.read_positive<uint32_t>(n, "sensor", "max_latency_ms", c.sensor.max_latency_ms, 10000);
    uint32_t mib = c.sensor.ring_buffer_bytes >> 20;
    r.read_positive<uint32_t>(n, "sensor", "ring_buffer_mib", mib, 1024);
    if ((mib & (mib - 1)) != 0)
      r.fail(n["ring_buffer_mib"], "sensor.ring_buffer_mib", "must be a power of two");
    c.sensor.ring_buffer_bytes = mib << 20;
    r.read_positive<uint32_t>(n, "sensor", "argv_max_bytes", c.sensor.argv_max_bytes, 16383);
    r.read_list(n, "sensor", "file_exclude_prefixes", c.sensor.file_rules.exclude);
    r.read_list(n, "sensor", "file_include_prefixes", c.sensor.file_rules.include);
  }
  if (auto n = root["process_table"]) {
    r.known_keys(n, "process_table", {"max_entries", "max_memory_mib", "linger_seconds"});
    r.read_positive<size_t>(n, "process_table", "max_entries", c.process_table.max_entries,
                            size_t{1} << 24);
    size_t mib = c.process_table.max_bytes >> 20;
    r.read_positive<size_t>(n, "process_table", "max_memory_mib", mib, 1U << 16);
    c.process_table.max_bytes = mib << 20;
    uint64_t linger = c.process_table.linger_ns / 1'000'000'000ULL;
    r.read(n, "process_table", "linger_seconds", linger);
    c.process_table.linger_ns = linger * 1'000'000'000ULL;
  }
  if (auto n = root["status"]) {
    r.known_keys(n, "status", {"interval_seconds", "file"});
    r.read_positive<uint32_t>(n, "status", "interval_seconds", c.status_interval_seconds, 86400);
    r.read(n, "status", "file", c.status_file);
  }
  r.read(root, "", "log_level", c.log_level);
  r.read(root, "", "file_group", c.file_group);
  if (!c.file_group.empty()) {
    try {
      base::group_id(c.file_group, "file_group");
    } catch (const ConfigurationError&) {
      r.fail(root["file_group"], "file_group",
             "no group named '" + c.file_group + "' on this host");
    }
  }
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (kLevels.count(c.log_level) == 0)
    r.fail(root["log_level"], "log_level", "unknown level '" + c.log_level + "'");
  return c;
}

}  // namespace

AgentConfig load_config_file(const std::string& path) {
  std::string text;
  try {
    text = base::read_file_prefix(path, kMaxConfigBytes);
  } catch (const EnvironmentError& e) {
    throw ConfigurationError(std::string(e.what()) + " (the configuration file)");
  }
  return apply_config(default_config(), text, path);
}

}  // namespace palisade::agent
