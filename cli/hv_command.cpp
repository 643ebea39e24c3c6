// `palisade hv`: the hypervisor monitor and its tools. Without a subcommand it follows the VMs of
// every --connect URI until stopped; `list`, `inspect`, `respond` and `status` act once.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "commands.h"
#include "palisade/agent/config.h"
#include "palisade/agent/respond.h"
#include "palisade/base/private_files.h"
#include "palisade/exporters/exporter.h"
#include "palisade/hypervisor/monitor.h"
#include "palisade/hypervisor/vm_inspector.h"
#include "palisade/hypervisor/vm_responses.h"
#include "palisade/metrics/metrics.h"
#include "palisade/ocsf/remediation.h"
#include "palisade/runtime/control_signals.h"
#include "palisade/runtime/detector.h"
#include "palisade/runtime/outputs.h"
#include "palisade/runtime/status_file.h"

namespace palisade::cli {
namespace {

using nlohmann::json;
namespace hv = palisade::hypervisor;

struct HvFlags {
  std::string config;
  std::vector<std::string> connect;
  std::string json_file;
  std::string store;
  bool no_stdout = false;
  bool no_store = false;
  std::string policy_dir;
  bool no_default_rules = false;
  uint32_t stats_interval = 0;
  bool emit_stats = false;
  bool read_only = false;
  std::string status_file;
  std::string log_level;
  std::string inspection_store;
  std::string evidence_dir;
  std::string overlay_dir;
  std::vector<std::string> backend_settings;
  std::string backend;
  int metrics_port = -1;
  bool no_metrics = false;
};

agent::AgentConfig load(const HvFlags& f) {
  agent::AgentConfig c =
      f.config.empty() ? agent::default_config() : agent::load_config_file(f.config);
  auto& h = c.hypervisor;
  if (!f.connect.empty()) h.connect = f.connect;
  if (!f.json_file.empty()) c.outputs.json_file = f.json_file;
  if (!f.store.empty()) h.store_path = f.store;
  if (f.no_stdout) c.outputs.stdout_enabled = false;
  if (f.no_store) c.outputs.store_enabled = false;
  if (!f.policy_dir.empty()) c.policy_directory = f.policy_dir;
  if (f.no_default_rules) c.default_rules = false;
  if (f.stats_interval != 0) h.stats_interval_seconds = f.stats_interval;
  if (f.emit_stats) h.emit_stats = true;
  if (f.read_only) h.read_only = true;
  if (!f.status_file.empty()) h.status_file = f.status_file;
  if (!f.log_level.empty()) c.log_level = f.log_level;
  if (!f.inspection_store.empty()) h.inspection_store = f.inspection_store;
  if (!f.evidence_dir.empty()) h.evidence_directory = f.evidence_dir;
  if (!f.overlay_dir.empty()) h.inspection_overlay_directory = f.overlay_dir;
  if (!f.backend.empty()) h.inspection_backend = f.backend;
  if (!f.backend_settings.empty()) h.inspection_backend_settings = f.backend_settings;
  if (f.metrics_port > 0) h.metrics_port = static_cast<uint16_t>(f.metrics_port);
  if (f.no_metrics) c.metrics_enabled = false;
  return c;
}

hv::InspectionSettings inspection_settings(const agent::HypervisorConfig& h) {
  hv::InspectionSettings s;
  s.parallelism = h.inspection_parallelism;
  s.max_pending = h.inspection_max_pending;
  s.store_path = h.inspection_store;
  s.overlay_directory = h.inspection_overlay_directory;
  s.backend = h.inspection_backend;
  s.backend_settings = h.inspection_backend_settings;
  return s;
}

std::shared_ptr<policies::PolicySet> compile_policies(const agent::AgentConfig& c) {
  std::vector<policies::Diagnostic> errors;
  auto set = policies::PolicySet::compile(
      runtime::agent_policy_sources(c.policy_directory, c.default_rules), errors);
  for (const auto& e : errors) std::cerr << e.to_string() << '\n';
  return set;
}

// The outputs every hv command writes to: the agent's output settings with hv's own store.
std::unique_ptr<runtime::Outputs> open_outputs(const agent::AgentConfig& c) {
  runtime::OutputSettings settings = c.outputs;
  settings.store.path = c.hypervisor.store_path;
  auto outputs = std::make_unique<runtime::Outputs>(
      settings, std::make_shared<ocsf::Formatter>(ocsf::HostInfo::detect()));
  for (exporters::ExporterSettings e : c.exporters) {
    // Its own spool: the agent on the same host may export with the same configuration.
    e.spool.directory += "-hv";
    outputs->add(e.name, exporters::open_exporter(e, outputs->formatter()));
  }
  return outputs;
}

// Like the agent's: an endpoint that cannot start is reported and hv runs without it.
std::unique_ptr<metrics::Endpoint> start_metrics(const agent::AgentConfig& c) {
  if (!c.metrics_enabled) return nullptr;
  metrics::EndpointOptions options = c.metrics;
  options.port = c.hypervisor.metrics_port;
  try {
    auto endpoint = metrics::Endpoint::start(options);
    spdlog::info("hv: metrics at {}", endpoint->url());
    return endpoint;
  } catch (const std::exception& e) {
    spdlog::error("hv: {}; running without the metrics endpoint", e.what());
    return nullptr;
  }
}

int run_monitor(const HvFlags& f) {
  runtime::ControlSignals::install();  // before any thread starts
  const agent::AgentConfig c = load(f);
  spdlog::set_level(spdlog::level::from_str(c.log_level));
  const auto& h = c.hypervisor;
  if (h.connect.empty()) {
    std::cerr << "palisade hv: no libvirt URI to follow (--connect or hypervisor.connect)\n";
    return 2;
  }
  auto policy = compile_policies(c);
  if (!policy) return 2;
  auto outputs = open_outputs(c);
  hv::MonitorOptions options;
  options.uris = h.connect;
  options.read_only = h.read_only;
  options.stats_interval_ms = h.stats_interval_seconds * 1000;
  options.emit_stats = h.emit_stats;
  options.backoff_max_ms = h.reconnect_max_seconds * 1000;
  options.max_domains = h.max_domains;
  options.responses = c.responses.enabled && !h.read_only;
  options.max_responses_per_minute = c.responses.max_per_minute;
  options.response.evidence_directory = h.evidence_directory;
  options.inspection = inspection_settings(h);
  options.status_file = h.status_file;
  runtime::check_status_file_path(options.status_file);
  if (!c.file_group.empty()) base::set_reader_group(base::group_id(c.file_group, "file_group"));
  hv::MonitorOutputs monitor_outputs{outputs->sinks(),
                                     [&](const json& r) { outputs->write_audit(r); }};
  const std::unique_ptr<metrics::Endpoint> endpoint = start_metrics(c);
  if (endpoint) {
    monitor_outputs.metrics = endpoint.get();
    monitor_outputs.output_metrics = [&](metrics::Snapshot& s) { outputs->add_metrics(s); };
  }
  hv::Monitor monitor(options, outputs->formatter(), std::move(monitor_outputs));
  monitor.set_policy(policy);
  {
    runtime::ReloadThread reloader([&] {
      // A bad document keeps the last good policy set (the errors name file, line and field).
      if (auto next = compile_policies(c)) {
        monitor.set_policy(next);
        spdlog::info("hv: policies reloaded");
      } else {
        spdlog::error("hv: policies not reloaded: the previous set stays in force");
      }
    });
    spdlog::info("hv: following {} host(s)", h.connect.size());
    monitor.run(runtime::ControlSignals::stop_flag());
  }
  outputs->drain();
  return 0;
}

std::string labels_text(const VmView& vm) {
  std::string out;
  for (const auto& [k, v] : vm.labels) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out.empty() ? "-" : out;
}

int list_command(const std::string& uri, bool as_json) {
  auto conn = hv::Connection::open(uri, true);
  const std::string type = conn->hypervisor_type();
  if (!as_json) {
    std::printf("%-24s %-9s %5s %10s  %-36s %s\n", "NAME", "STATE", "VCPUS", "MEMORY_MIB", "UUID",
                "LABELS");
  }
  for (const auto& d : conn->list_domains()) {
    const VmView vm = hv::describe_domain(d.get(), uri, type);
    if (as_json) {
      json disks = json::array();
      for (const auto& disk : vm.disks) {
        disks.push_back({{"target", disk.target},
                         {"source", disk.source},
                         {"format", disk.format},
                         {"device", disk.device}});
      }
      json nics = json::array();
      for (const auto& nic : vm.nics) {
        nics.push_back({{"mac", nic.mac},
                        {"type", nic.type},
                        {"source", nic.source},
                        {"link_up", nic.link_up}});
      }
      json labels = json::object();
      for (const auto& [k, v] : vm.labels) labels[k] = v;
      std::cout << json{{"name", vm.name},
                        {"uuid", vm.uuid},
                        {"state", vm.state},
                        {"vcpus", vm.vcpus},
                        {"memory_kib", vm.memory_kib},
                        {"disks", disks},
                        {"nics", nics},
                        {"labels", labels},
                        {"host", vm.host},
                        {"persistent", vm.persistent}}
                       .dump()
                << '\n';
    } else {
      std::printf("%-24s %-9s %5u %10llu  %-36s %s\n", vm.name.c_str(), vm.state.c_str(), vm.vcpus,
                  static_cast<unsigned long long>(vm.memory_kib / 1024), vm.uuid.c_str(),
                  labels_text(vm).c_str());
    }
  }
  return 0;
}

struct InspectFlags {
  std::string vm;
  std::string method = "snapshot";
  std::vector<std::string> paths;
  uint32_t time_limit = 600;
};

// inspect and respond act on one VM of one host.
bool single_uri(const agent::HypervisorConfig& h, const char* command) {
  if (h.connect.size() == 1) return true;
  std::cerr << "palisade hv " << command << ": give exactly one --connect URI\n";
  return false;
}

int inspect_command(const HvFlags& f, const InspectFlags& i) {
  // Ctrl-C must not stop it between the snapshot and the merge: the signal only sets the stop
  // flag, and the inspection (bounded by its time limit) finishes.
  runtime::ControlSignals::install();
  const agent::AgentConfig c = load(f);
  const auto& h = c.hypervisor;
  if (!single_uri(h, "inspect")) return 2;
  auto policy = compile_policies(c);
  if (!policy) return 2;
  auto outputs = open_outputs(c);
  runtime::Detector detector(outputs->formatter(), outputs->sinks());
  detector.set_policy(policy);
  policies::VmInspectionSpec spec;
  spec.enabled = true;
  spec.method = i.method;
  spec.paths = i.paths;
  spec.time_limit_ns = uint64_t{i.time_limit} * 1'000'000'000ULL;
  auto conn = hv::Connection::open(h.connect[0], h.read_only);
  hv::DomainHandle domain = conn->find_domain(i.vm);
  std::vector<Event> events;
  int rc = 0;
  try {
    hv::VmInspection inspection = hv::inspect_vm(*conn, domain.get(), spec, inspection_settings(h));
    hv::InspectionStore store(h.inspection_store);
    hv::record_inspection(inspection, store);
    events = hv::inspection_events(inspection);
  } catch (const std::exception& e) {
    events.push_back(hv::inspection_failure_event(
        hv::describe_domain(domain.get(), h.connect[0], conn->hypervisor_type()), e.what()));
    std::cerr << "palisade hv inspect: " << e.what() << '\n';
    rc = 1;
  }
  hv::VmEventEmitter emitter(outputs->formatter(), outputs->sinks(), &detector);
  for (auto& e : events) emitter.emit(e);
  outputs->flush();
  outputs->drain();
  return rc;
}

int respond_command(const HvFlags& f, const std::string& action_text, const std::string& vm_name,
                    const std::string& reason, bool force) {
  const auto action = hv::parse_action(action_text);
  if (!action) {
    std::cerr << "palisade hv respond: unknown action " << action_text << '\n';
    return 2;
  }
  agent::AgentConfig c = load(f);
  const auto& h = c.hypervisor;
  if (!single_uri(h, "respond")) return 2;
  // The audit record goes to stdout whatever --no-stdout says: it is the command's answer. The
  // outputs open before anything is done, so that no action goes unrecorded.
  c.outputs.stdout_enabled = true;
  auto outputs = open_outputs(c);
  auto conn = hv::Connection::open(h.connect[0], false);
  hv::DomainHandle domain = conn->find_domain(vm_name);
  const VmView vm = hv::describe_domain(domain.get(), h.connect[0], conn->hypervisor_type());
  hv::ResponseOptions options;
  options.evidence_directory = h.evidence_directory;
  options.force = force;
  const hv::ActionOutcome outcome = hv::carry_out(*conn, domain.get(), *action, options);
  const json record = hv::vm_remediation_record(*action, vm, outcome,
                                                ocsf::requester("palisade hv respond", reason));
  outputs->write_audit(record);
  outputs->drain();
  return outcome.ok ? 0 : 1;
}

int status_command(const std::string& file, bool as_json) {
  std::ifstream in(file);
  if (!in) {
    std::cerr << "palisade hv status: cannot read " << file << " (is palisade hv running?)\n";
    return 1;
  }
  json s = json::parse(in, nullptr, false);
  if (s.is_discarded()) {
    std::cerr << "palisade hv status: " << file << " is not JSON\n";
    return 1;
  }
  if (as_json) {
    std::cout << s.dump(2) << '\n';
    return 0;
  }
  for (const auto& host : s.value("hosts", json::array())) {
    std::cout << host.value("uri", "") << ": "
              << (host.value("connected", false) ? "connected" : "NOT CONNECTED") << ", "
              << host.value("domains", 0) << " domains, " << host.value("losses", 0) << " losses\n";
  }
  std::cout << "events " << s.value("events", 0) << ", findings " << s.value("findings", 0)
            << ", notices dropped " << s.value("notices_dropped", 0) << '\n';
  return 0;
}

}  // namespace

void add_hv_command(CLI::App& app, int& exit_code) {
  static HvFlags flags;
  auto* hv = app.add_subcommand(
      "hv", "Hypervisor monitor: follow, inspect and protect VMs through libvirt (agentless)");
  hv->require_subcommand(0, 1);
  auto common = [](CLI::App* cmd) {
    cmd->add_option("-c,--config", flags.config, "YAML configuration (hypervisor: section)")
        ->check(CLI::ExistingFile);
    cmd->add_option("--connect", flags.connect,
                    "libvirt URI (repeatable): qemu:///system, qemu+ssh://host/system, ...");
    cmd->add_option("--store", flags.store, "SQLite event store");
    cmd->add_flag("--no-store", flags.no_store, "Do not keep events in the store");
    cmd->add_option("--json", flags.json_file, "Also write OCSF events to this file");
    cmd->add_flag("--no-stdout", flags.no_stdout, "Do not print events on stdout");
    cmd->add_option("--policy-dir", flags.policy_dir, "Directory of policy documents");
    cmd->add_flag("--no-default-rules", flags.no_default_rules, "Leave out the shipped rules");
    cmd->add_option("--log-level", flags.log_level, "trace|debug|info|warn|error");
    cmd->add_option("--inspection-store", flags.inspection_store, "SQLite inspection history");
    cmd->add_option("--overlay-dir", flags.overlay_dir, "Where frozen VMs write meanwhile");
    cmd->add_option("--guestfs-backend", flags.backend, "libguestfs backend (e.g. direct)");
    cmd->add_option("--guestfs-backend-setting", flags.backend_settings,
                    "libguestfs backend setting (repeatable, e.g. force_tcg)");
    cmd->add_option("--evidence-dir", flags.evidence_dir, "Where forensic memory dumps go");
  };
  common(hv);
  hv->add_option("--stats-interval", flags.stats_interval, "Seconds between bulk stats")
      ->check(CLI::Range(1, 86400));
  hv->add_flag("--emit-stats", flags.emit_stats, "Write every stats sample as an event");
  hv->add_flag("--read-only", flags.read_only, "Watch only: no responses, no snapshots");
  hv->add_option("--status-file", flags.status_file, "Where to write status");
  hv->add_option("--metrics-port", flags.metrics_port,
                 "Port of the metrics endpoint (hypervisor.metrics_port)")
      ->check(CLI::Range(1, 65535));
  hv->add_flag("--no-metrics", flags.no_metrics, "Serve no Prometheus metrics");

  static bool as_json = false;
  auto* list = hv->add_subcommand("list", "Inventory: every domain of the --connect hosts");
  list->add_option("--connect", flags.connect, "libvirt URI (repeatable)");
  list->add_flag("--json", as_json, "One JSON object per VM");
  list->callback([&exit_code] {
    if (flags.connect.empty()) {
      std::cerr << "palisade hv list: give --connect URI\n";
      exit_code = 2;
      return;
    }
    for (const auto& uri : flags.connect)
      exit_code = std::max(exit_code, list_command(uri, as_json));
  });

  static InspectFlags inspect_flags;
  auto* inspect = hv->add_subcommand("inspect", "Inspect a VM's disks now (read-only)");
  common(inspect);
  inspect->add_option("vm", inspect_flags.vm, "Domain name or UUID")->required();
  inspect->add_option("--method", inspect_flags.method, "snapshot (running VMs) or live")
      ->check(CLI::IsMember({"snapshot", "live"}));
  inspect->add_option("--path", inspect_flags.paths, "Guest tree for the integrity baseline");
  inspect->add_option("--time-limit", inspect_flags.time_limit, "Seconds");
  inspect->callback([&exit_code] { exit_code = inspect_command(flags, inspect_flags); });

  static std::string action;
  static std::string vm;
  static std::string reason;
  static bool force = false;
  auto* respond = hv->add_subcommand(
      "respond", "suspend|resume|snapshot|isolate|release|shutdown a VM (an audited event)");
  common(respond);
  respond->add_option("action", action, "suspend, resume, snapshot, isolate, release, shutdown")
      ->required()
      ->check(CLI::IsMember({"suspend", "resume", "snapshot", "isolate", "release", "shutdown"}));
  respond->add_option("vm", vm, "Domain name or UUID")->required();
  respond->add_option("--reason", reason, "Why (kept in the audit event)");
  respond->add_flag("--force", force, "shutdown: power off at once");
  respond->callback(
      [&exit_code] { exit_code = respond_command(flags, action, vm, reason, force); });

  static std::string status_file;
  static bool status_json = false;
  auto* status = hv->add_subcommand("status", "Show the running monitor's hosts and counters");
  status->add_option("-c,--config", flags.config, "YAML configuration (hypervisor.status_file)")
      ->check(CLI::ExistingFile);
  status->add_option("--status-file", status_file, "Status file written by palisade hv");
  status->add_flag("--json", status_json, "Print the raw status JSON");
  status->callback([&exit_code] {
    const std::string file =
        !status_file.empty() ? status_file : load(flags).hypervisor.status_file;
    exit_code = status_command(file, status_json);
  });

  hv->callback([hv, &exit_code] {
    if (hv->get_subcommands().empty()) exit_code = run_monitor(flags);
  });
}

}  // namespace palisade::cli
