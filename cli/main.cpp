// palisade: the command-line entry point. Each subcommand is a thin layer over a component
// library; the work happens in node-agent/ (and, later, policies/, k8s/, hypervisor/).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "commands.h"
#include "palisade/agent/agent.h"

namespace {

using palisade::agent::AgentOptions;

void setup_logging() {
  // Logs go to stderr; stdout carries only the OCSF event stream.
  auto logger = spdlog::stderr_color_mt("palisade");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
}

struct AgentFlags {
  std::string config;
  std::string json_file;
  std::string store;
  std::string record;
  std::string replay;
  std::string log_level;
  std::string status_file;
  std::string policy_dir;
  std::string kubeconfig;
  std::string node_name;
  bool no_default_rules = false;
  unsigned status_interval = 0;
  bool no_stdout = false;
  bool no_store = false;
  bool check_config = false;
  bool uninstall = false;
  std::string pin_directory;
  std::string exec_mechanism;
  int canary_interval = -1;
  int metrics_port = -1;
  bool no_metrics = false;
};

// Removes the pinned enforcement programs and maps: the only way kernel enforcement ends.
int uninstall_command(const std::string& pin_root) {
  try {
    const auto removed = palisade::agent::uninstall_enforcement(pin_root);
    for (const auto& path : removed) std::cout << "removed " << path << '\n';
    std::cout << (removed.empty() ? "no enforcement was installed under " + pin_root
                                  : "kernel enforcement removed")
              << '\n';
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "palisade: " << e.what() << '\n';
    return 1;
  }
}

int run_agent_command(const AgentFlags& f) {
  AgentOptions options;
  try {
    options.config = f.config.empty() ? palisade::agent::default_config()
                                      : palisade::agent::load_config_file(f.config);
  } catch (const palisade::ConfigurationError& e) {
    std::cerr << "palisade: " << e.what() << '\n';
    return 2;
  }
  if (f.check_config) {
    std::cout << "configuration OK" << (f.config.empty() ? " (built-in defaults)" : "") << '\n';
    return 0;
  }
  options.config_path = f.config;
  auto& c = options.config;
  if (!f.pin_directory.empty()) c.enforcement.options.pin_root = f.pin_directory;
  if (!f.exec_mechanism.empty()) c.enforcement.options.exec_mechanism = f.exec_mechanism;
  if (f.canary_interval >= 0) {
    c.enforcement.canary_interval_seconds = static_cast<uint32_t>(f.canary_interval);
  }
  if (f.uninstall) return uninstall_command(c.enforcement.options.pin_root);
  if (!f.json_file.empty()) c.outputs.json_file = f.json_file;
  if (!f.store.empty()) c.outputs.store.path = f.store;
  if (f.no_stdout) c.outputs.stdout_enabled = false;
  if (f.no_store) c.outputs.store_enabled = false;
  if (!f.log_level.empty()) c.log_level = f.log_level;
  if (!f.status_file.empty()) c.status_file = f.status_file;
  if (f.status_interval > 0) c.status_interval_seconds = f.status_interval;
  if (f.metrics_port > 0) c.metrics.port = static_cast<uint16_t>(f.metrics_port);
  if (f.no_metrics) c.metrics_enabled = false;
  if (!f.policy_dir.empty()) c.policy_directory = f.policy_dir;
  if (!f.kubeconfig.empty()) c.kubernetes.kubeconfig = f.kubeconfig;
  if (!f.node_name.empty()) c.kubernetes.node_name = f.node_name;
  if (f.no_default_rules) c.default_rules = false;
  options.record_path = f.record;
  options.replay_path = f.replay;
  spdlog::set_level(spdlog::level::from_str(c.log_level));
  return palisade::agent::run_agent(options);
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that went away (a libvirtd, a socket reader) is an error on the call, not the end of
  // the process.
  signal(SIGPIPE, SIG_IGN);
  setup_logging();
  CLI::App app{"palisade: workload protection for Linux servers"};
  app.require_subcommand(1);
  int exit_code = 0;

  AgentFlags agent_flags;
  auto* agent = app.add_subcommand("agent", "Run the node agent: observe this host through eBPF");
  agent->add_option("-c,--config", agent_flags.config, "YAML configuration file")
      ->check(CLI::ExistingFile);
  agent->add_option("--json", agent_flags.json_file, "Also write OCSF events to this file");
  agent->add_option("--store", agent_flags.store, "SQLite event store path");
  agent->add_flag("--no-stdout", agent_flags.no_stdout, "Do not print events on stdout");
  agent->add_flag("--no-store", agent_flags.no_store, "Do not keep events in the local store");
  agent->add_option("--record", agent_flags.record, "Write raw sensor records to a capture file");
  agent
      ->add_option("--replay", agent_flags.replay, "Read a capture file instead of the live sensor")
      ->check(CLI::ExistingFile);
  agent->add_option("--log-level", agent_flags.log_level, "trace|debug|info|warn|error");
  agent->add_option("--status-file", agent_flags.status_file, "Where to write status");
  agent->add_option("--status-interval", agent_flags.status_interval, "Seconds between status");
  agent
      ->add_option("--metrics-port", agent_flags.metrics_port,
                   "Port of the metrics endpoint (metrics.port)")
      ->check(CLI::Range(1, 65535));
  agent->add_flag("--no-metrics", agent_flags.no_metrics, "Serve no Prometheus metrics");
  agent->add_option("--policy-dir", agent_flags.policy_dir, "Directory of policy documents");
  agent->add_option("--kubeconfig", agent_flags.kubeconfig,
                    "Reach the Kubernetes API with this kubeconfig (outside a cluster)");
  agent->add_option("--node-name", agent_flags.node_name,
                    "This node's name in Kubernetes (default: $NODE_NAME, else the host name)");
  agent->add_flag("--no-default-rules", agent_flags.no_default_rules,
                  "Do not load the shipped detection rules");
  agent->add_flag("--check-config", agent_flags.check_config,
                  "Validate the configuration and exit");
  agent->add_flag("--uninstall", agent_flags.uninstall,
                  "Remove the pinned kernel enforcement (programs, links, maps) and exit");
  agent->add_option("--pin-directory", agent_flags.pin_directory,
                    "bpffs directory of the pinned enforcement (default /sys/fs/bpf/palisade)");
  agent->add_option("--exec-mechanism", agent_flags.exec_mechanism,
                    "Application lockdown mechanism: auto|lsm|fanotify|kill");
  agent->add_option("--canary-interval", agent_flags.canary_interval,
                    "Seconds between enforcement canary checks (0 = none)");

  std::string status_file = "/run/palisade/status.json";
  bool status_json = false;
  auto* status = agent->add_subcommand("status", "Show the running agent's counters and losses");
  status->add_option("--status-file", status_file, "Status file written by the agent");
  status->add_flag("--json", status_json, "Print the raw status JSON");
  status->callback(
      [&] { exit_code = palisade::agent::print_agent_status(status_file, status_json); });
  agent->callback([&] {
    if (agent->got_subcommand(status)) return;
    exit_code = run_agent_command(agent_flags);
  });

  palisade::cli::add_events_command(app, exit_code);
  palisade::cli::add_policy_command(app, exit_code);
  palisade::cli::add_respond_command(app, exit_code);
  palisade::cli::add_fim_command(app, exit_code);
#ifdef PALISADE_WITH_HYPERVISOR
  palisade::cli::add_hv_command(app, exit_code);
#endif

  app.add_subcommand("version", "Print the version")->callback([] {
    std::cout << "palisade " << PALISADE_VERSION << '\n';
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    // Errors the environment causes (a host that cannot be reached, a VM that does not exist)
    // end the command with their reason, not an abort.
    std::cerr << "palisade: " << e.what() << '\n';
    return 1;
  }
  return exit_code;
}
