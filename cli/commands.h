#pragma once

#include <CLI/CLI.hpp>

namespace palisade::cli {

// Registers `palisade events` and returns a callable that runs it once parsed.
void add_events_command(CLI::App& app, int& exit_code);
// Registers `palisade policy lint|test|fields`.
void add_policy_command(CLI::App& app, int& exit_code);

}  // namespace palisade::cli
