// One error taxonomy for every component (CONTRIBUTING.md): what the environment can cause (a
// missing kernel feature, an unwritable file, a daemon that went away) is reported and handled;
// a bad configuration or document is reported with its file, line and field; a broken internal
// invariant is a bug that stops loudly. Lists of document diagnostics stay lists (policies).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace palisade {

enum class ErrorCategory { kEnvironment, kConfiguration, kInvariant };

std::string_view category_name(ErrorCategory category);

class Error : public std::runtime_error {
 public:
  Error(ErrorCategory category, const std::string& message)
      : std::runtime_error(message), category_(category) {}
  ErrorCategory category() const { return category_; }

 private:
  ErrorCategory category_;
};

// Something outside palisade refused: a file, a device, a kernel feature, a peer.
class EnvironmentError : public Error {
 public:
  explicit EnvironmentError(const std::string& message)
      : Error(ErrorCategory::kEnvironment, message) {}
};

// A configuration or document is wrong; the message names the file, line, column and field
// ("agent.yaml:7:5: store.max_bytes: expected a size").
class ConfigurationError : public Error {
 public:
  explicit ConfigurationError(const std::string& message)
      : Error(ErrorCategory::kConfiguration, message) {}
};

// palisade broke one of its own rules: a bug, reported loudly rather than worked around.
class InvariantError : public Error {
 public:
  explicit InvariantError(const std::string& message) : Error(ErrorCategory::kInvariant, message) {}
};

}  // namespace palisade
