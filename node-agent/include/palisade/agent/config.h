// The agent's YAML configuration. Defaults live in config/palisade.yaml, compiled in; a file
// given with --config overrides them key by key; command-line flags override both.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "palisade/agent/enforcer.h"
#include "palisade/agent/process_table.h"
#include "palisade/agent/sensor.h"
#include "palisade/base/error.h"
#include "palisade/exporters/exporter.h"
#include "palisade/metrics/metrics.h"
#include "palisade/runtime/outputs.h"

namespace palisade::agent {

struct ContainersConfig {
  bool containerd = true;  // follow containerd (absent: retried with backoff, never fatal)
  std::string containerd_socket = "/run/containerd/containerd.sock";
  std::string containerd_namespace = "k8s.io";
  uint32_t max_containers = 4096;
  uint32_t exited_linger_seconds = 30;
};

struct KubernetesConfig {
  std::string enabled =
      "auto";              // auto: in a cluster (KUBERNETES_SERVICE_HOST) or with a kubeconfig
  std::string kubeconfig;  // use this kubeconfig instead of the in-cluster service account
  std::string context;     // kubeconfig context; empty = current-context
  std::string node_name;   // empty: NODE_NAME, else the host name
  bool policies = true;    // load PalisadePolicy / ClusterPalisadePolicy resources
  bool events = true;      // publish alerts as Kubernetes Events on their pod
  bool peers = true;       // watch every pod's IPs, for network rules naming peers by workload
};

struct EnforcementConfig {
  bool enabled = true;  // WorkloadPolicies in enforce mode are enforced in the kernel
  EnforcerOptions options;
  uint32_t rescan_ms = 1000;  // how often new cgroups and containers are bound to policies
  uint32_t canary_interval_seconds = 300;  // 0 = no canary checks
};

// Responses carried out when a detection rule asks for one (response: kill, isolate, quarantine).
struct ResponsesConfig {
  bool enabled = true;
  uint32_t max_per_minute = 60;  // beyond it responses are refused (counted), findings still go out
  std::string quarantine_directory = "/var/lib/palisade/quarantine";
};

// `palisade hv`, the hypervisor monitor (docs/hypervisor.md). It shares output, policies,
// responses and log_level with the agent; its store and status are its own.
struct HypervisorConfig {
  std::vector<std::string> connect = {"qemu:///system"};
  bool read_only = false;
  uint32_t stats_interval_seconds = 10;
  bool emit_stats = false;
  std::string store_path = "/var/lib/palisade/hv-events.db";
  std::string status_file = "/run/palisade/hv-status.json";
  uint32_t reconnect_max_seconds = 60;
  uint32_t max_domains = 10000;
  std::string evidence_directory = "/var/lib/palisade/hv-evidence";
  // palisade hv serves its metrics like the agent (the metrics section: address, TLS, token)
  // on its own port, so that both can run on one host.
  uint16_t metrics_port = 9478;
  uint32_t inspection_parallelism = 1;
  uint32_t inspection_max_pending = 64;
  std::string inspection_store = "/var/lib/palisade/hv-inspections.db";
  std::string inspection_overlay_directory = "/var/lib/palisade/hv-overlays";
  std::string inspection_backend;
  std::vector<std::string> inspection_backend_settings;
};

struct AgentConfig {
  runtime::OutputSettings outputs;  // the `output` and `store` sections
  SensorOptions sensor;
  ProcessTableLimits process_table;
  uint32_t status_interval_seconds = 30;
  std::string status_file = "/run/palisade/status.json";
  bool metrics_enabled = true;
  metrics::EndpointOptions metrics;
  std::vector<exporters::ExporterSettings> exporters;  // the `exporters` list (docs/exporters.md)
  std::string log_level = "info";
  // The group that may read the status file, JSON output and store (created 0640 for it);
  // empty: their owner only (0600).
  std::string file_group;
  std::string policy_directory = "/etc/palisade/policies";
  bool default_rules = true;
  ContainersConfig containers;
  KubernetesConfig kubernetes;
  EnforcementConfig enforcement;
  ResponsesConfig responses;
  // File integrity (docs/fim.md): the operator's baseline, the agent's approved copies.
  std::string fim_database = "/var/lib/palisade/fim.db";
  std::string fim_protect_database = "/var/lib/palisade/fim-protect.db";
  std::string fim_content_directory = "/var/lib/palisade/fim-content";
  uint32_t fim_rescan_interval_seconds = 3600;
  uint32_t fim_restore_delay_ms = 200;
  HypervisorConfig hypervisor;
};

// Errors in the configuration are palisade::ConfigurationError, formatted as
// "FILE:LINE:COLUMN: FIELD: problem".
std::string_view default_config_yaml();
AgentConfig default_config();
// Applies the YAML text on top of `base`; `source_name` names it in errors.
AgentConfig apply_config(const AgentConfig& base, const std::string& yaml_text,
                         const std::string& source_name);
// A configuration is one YAML document of at most this size, checked before it is parsed.
inline constexpr size_t kMaxConfigBytes = 1U << 20;
AgentConfig load_config_file(const std::string& path);  // defaults + file

}  // namespace palisade::agent
