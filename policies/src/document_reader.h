// The policy loader's reading of one YAML document: errors that name the file, line, column and
// field, and the value parsers the document kinds share. Internal to the policies library.
#pragma once

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <set>
#include <string>
#include <vector>

#include "palisade/policies/policy_set.h"

namespace palisade::policies::detail {

inline constexpr std::string_view kApiVersion = "palisade.dev/v1";

// Thrown inside one document; the loader records it and moves on to the next document so that
// one run reports every problem.
struct DocumentError {
  Diagnostic diagnostic;
};

class DocumentReader {
 public:
  explicit DocumentReader(std::string source, int line_offset = 0)
      : source_(std::move(source)), line_offset_(line_offset) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& field,
                         const std::string& message, size_t column_offset = 0) const {
    const YAML::Mark mark = node.Mark();
    throw DocumentError{Diagnostic{source_, mark.line + 1 + line_offset_,
                                   static_cast<int>(mark.column + 1 + column_offset), field,
                                   message}};
  }

  void known_keys(const YAML::Node& map, const std::string& where,
                  const std::set<std::string>& keys) const {
    if (!map.IsMap()) fail(map, where, "expected a mapping");
    for (const auto& item : map) {
      auto key = item.first.as<std::string>();
      if (keys.count(key) == 0) {
        std::string known;
        for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
        fail(item.first, where + "." + key, "unknown field (expected one of: " + known + ")");
      }
    }
  }

  std::string string_at(const YAML::Node& map, const std::string& where, const char* key,
                        bool required) const {
    const YAML::Node node = map[key];
    if (!node) {
      if (required) fail(map, where + "." + key, "required field is missing");
      return {};
    }
    if (!node.IsScalar()) fail(node, where + "." + key, "expected a string");
    return node.as<std::string>();
  }

  std::vector<std::string> strings_at(const YAML::Node& map, const std::string& where,
                                      const char* key) const {
    const YAML::Node node = map[key];
    std::vector<std::string> out;
    if (!node) return out;
    if (!node.IsSequence()) fail(node, where + "." + key, "expected a list of strings");
    for (const auto& item : node) {
      if (!item.IsScalar()) fail(item, where + "." + key, "expected a string");
      out.push_back(item.as<std::string>());
    }
    return out;
  }

  const std::string& source() const { return source_; }
  int line_offset() const { return line_offset_; }

 private:
  std::string source_;
  int line_offset_;
};

struct ParsedDocument {
  std::string kind;
  std::string name;
  YAML::Node spec;
  int line;
};

inline uint64_t parse_duration_ns(const DocumentReader& r, const YAML::Node& node,
                                  const std::string& field) {
  const std::string text = node.as<std::string>();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string unit(end, text.data() + text.size());
  uint64_t scale = unit == "ms"  ? 1'000'000ULL
                   : unit == "s" ? 1'000'000'000ULL
                   : unit == "m" ? 60'000'000'000ULL
                   : unit == "h" ? 3'600'000'000'000ULL
                                 : 0;
  if (ec != std::errc() || scale == 0 || value == 0) {
    r.fail(node, field, "expected a duration like 500ms, 10s, 5m or 1h, got '" + text + "'");
  }
  return value * scale;
}

inline Severity parse_severity(const DocumentReader& r, const YAML::Node& node) {
  const std::string s = node.as<std::string>();
  if (s == "informational" || s == "info") return Severity::kInformational;
  if (s == "low") return Severity::kLow;
  if (s == "medium") return Severity::kMedium;
  if (s == "high") return Severity::kHigh;
  if (s == "critical") return Severity::kCritical;
  r.fail(node, "spec.severity",
         "expected informational, low, medium, high or critical, got '" + s + "'");
}

inline Response parse_response(const DocumentReader& r, const YAML::Node& node) {
  const std::string s = node.as<std::string>();
  if (s == "alert") return Response::kAlert;
  if (s == "kill") return Response::kKill;
  if (s == "isolate") return Response::kIsolate;
  if (s == "quarantine") return Response::kQuarantine;
  if (s == "suspend") return Response::kSuspend;
  if (s == "snapshot") return Response::kSnapshot;
  if (s == "shutdown") return Response::kShutdown;
  r.fail(
      node, "spec.response",
      "expected alert, kill, isolate, quarantine, suspend, snapshot or shutdown, got '" + s + "'");
}

}  // namespace palisade::policies::detail
