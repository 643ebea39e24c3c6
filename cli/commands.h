#pragma once

#include <CLI/CLI.hpp>

namespace palisade::cli {

// Registers `palisade events` and returns a callable that runs it once parsed.
void add_events_command(CLI::App& app, int& exit_code);
// Parses --since/--until style times: epoch ms, 30s/15m/2h/7d ago, or ISO-8601 UTC.
uint64_t parse_time(const std::string& text);

// Registers `palisade policy lint|test|fields|learn`.
void add_policy_command(CLI::App& app, int& exit_code);

// Registers `palisade respond kill|quarantine|restore|list`.
void add_respond_command(CLI::App& app, int& exit_code);

// Registers `palisade fim baseline|check|approve|restore`.
void add_fim_command(CLI::App& app, int& exit_code);

// Registers `palisade hv` (the hypervisor monitor) and `hv list|inspect|respond|status`.
void add_hv_command(CLI::App& app, int& exit_code);

}  // namespace palisade::cli
