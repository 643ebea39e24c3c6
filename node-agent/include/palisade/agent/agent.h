// The node agent's main loop: wires a Source through the Pipeline to the outputs, emits periodic
// status, reloads configuration on SIGHUP and stops cleanly (flushing everything) on
// SIGTERM/SIGINT.
#pragma once

#include <string>

#include "palisade/agent/config.h"

namespace palisade::agent {

struct AgentOptions {
  AgentConfig config;
  std::string config_path;  // re-read on SIGHUP; empty = built-in defaults
  std::string record_path;  // also write raw records to this capture file
  std::string replay_path;  // read a capture instead of the live sensor
};

// Runs until a stop signal (or the end of a replay). Returns the process exit code.
int run_agent(const AgentOptions& options);

// `palisade agent status`: prints the running agent's status file. Returns the exit code.
int print_agent_status(const std::string& status_file, bool json);

}  // namespace palisade::agent
