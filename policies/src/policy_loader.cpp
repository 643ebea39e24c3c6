// Parses and validates policy documents (YAML, Kubernetes style) and compiles them.
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdio>
#include <set>

#include "palisade/policies/policy_set.h"

namespace palisade::policies {
namespace {

constexpr std::string_view kApiVersion = "palisade.dev/v1";

// Thrown inside one document; the loader records it and moves on to the next document so that
// one run reports every problem.
struct DocumentError {
  Diagnostic diagnostic;
};

class DocumentReader {
 public:
  explicit DocumentReader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& field,
                         const std::string& message, size_t column_offset = 0) const {
    const YAML::Mark mark = node.Mark();
    throw DocumentError{Diagnostic{source_, mark.line + 1,
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

 private:
  std::string source_;
};

struct ParsedDocument {
  std::string kind;
  std::string name;
  YAML::Node spec;
  int line;
};

uint64_t parse_duration_ns(const DocumentReader& r, const YAML::Node& node, const std::string& field) {
  const std::string text = node.as<std::string>();
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string unit(end, text.data() + text.size());
  uint64_t scale = unit == "ms" ? 1'000'000ULL
                   : unit == "s" ? 1'000'000'000ULL
                   : unit == "m" ? 60'000'000'000ULL
                   : unit == "h" ? 3'600'000'000'000ULL
                                 : 0;
  if (ec != std::errc() || scale == 0 || value == 0) {
    r.fail(node, field, "expected a duration like 500ms, 10s, 5m or 1h, got '" + text + "'");
  }
  return value * scale;
}

Severity parse_severity(const DocumentReader& r, const YAML::Node& node) {
  const std::string s = node.as<std::string>();
  if (s == "informational" || s == "info") return Severity::kInformational;
  if (s == "low") return Severity::kLow;
  if (s == "medium") return Severity::kMedium;
  if (s == "high") return Severity::kHigh;
  if (s == "critical") return Severity::kCritical;
  r.fail(node, "spec.severity", "expected informational, low, medium, high or critical, got '" + s + "'");
}

Response parse_response(const DocumentReader& r, const YAML::Node& node) {
  const std::string s = node.as<std::string>();
  if (s == "alert") return Response::kAlert;
  if (s == "kill") return Response::kKill;
  if (s == "isolate") return Response::kIsolate;
  if (s == "quarantine") return Response::kQuarantine;
  r.fail(node, "spec.response", "expected alert, kill, isolate or quarantine, got '" + s + "'");
}

// Compiles a condition, translating an error's column into the YAML file's coordinates.
Expression compile_condition(const DocumentReader& r, const YAML::Node& node,
                             const std::string& field, const Definitions& defs) {
  if (!node.IsScalar()) r.fail(node, field, "expected a condition string");
  const std::string text = node.as<std::string>();
  auto result = compile_expression(text, defs);
  if (auto* error = std::get_if<CompileError>(&result)) {
    // Quoted scalars start one column later; block scalars start on the next line (the column
    // is then approximate).
    const bool quoted = node.Tag() == "!" ;
    r.fail(node, field, error->message + " (at column " + std::to_string(error->column + 1) +
                            " of the condition)",
           error->column + (quoted ? 1 : 0));
  }
  return std::get<Expression>(std::move(result));
}

void validate_template(const DocumentReader& r, const YAML::Node& node, const std::string& text) {
  size_t pos = 0;
  while ((pos = text.find('{', pos)) != std::string::npos) {
    size_t end = text.find('}', pos);
    if (end == std::string::npos) r.fail(node, "spec.output", "unclosed '{' in the output template");
    const std::string name = text.substr(pos + 1, end - pos - 1);
    if (find_field(name) == nullptr) {
      r.fail(node, "spec.output", "unknown field '{" + name + "}' in the output template");
    }
    pos = end + 1;
  }
}

std::unique_ptr<DetectionRule> compile_rule(const DocumentReader& r, const ParsedDocument& doc,
                                            const Definitions& defs) {
  const YAML::Node& spec = doc.spec;
  r.known_keys(spec, "spec",
               {"description", "condition", "output", "severity", "tags", "exceptions",
                "response", "threshold", "tests"});
  auto rule = std::make_unique<DetectionRule>();
  rule->name = doc.name;
  rule->source = r.source();
  rule->line = doc.line;
  rule->description = r.string_at(spec, "spec", "description", false);
  rule->condition_text = r.string_at(spec, "spec", "condition", true);
  rule->condition = compile_condition(r, spec["condition"], "spec.condition", defs);
  rule->output = r.string_at(spec, "spec", "output", true);
  validate_template(r, spec["output"], rule->output);
  if (spec["severity"]) rule->severity = parse_severity(r, spec["severity"]);
  if (spec["response"]) rule->response = parse_response(r, spec["response"]);
  rule->tags = r.strings_at(spec, "spec", "tags");
  if (const YAML::Node exceptions = spec["exceptions"]) {
    if (!exceptions.IsSequence()) r.fail(exceptions, "spec.exceptions", "expected a list of conditions");
    for (const auto& e : exceptions) {
      rule->exceptions.push_back(compile_condition(r, e, "spec.exceptions[]", defs));
    }
  }
  if (const YAML::Node t = spec["threshold"]) {
    r.known_keys(t, "spec.threshold", {"count", "window", "by"});
    Threshold threshold;
    if (!t["count"] || !t["window"]) r.fail(t, "spec.threshold", "needs count and window");
    try {
      threshold.count = t["count"].as<uint32_t>();
    } catch (const YAML::Exception&) {
      r.fail(t["count"], "spec.threshold.count", "expected a positive number");
    }
    if (threshold.count < 2) r.fail(t["count"], "spec.threshold.count", "must be at least 2");
    threshold.window_ns = parse_duration_ns(r, t["window"], "spec.threshold.window");
    const std::string by = t["by"] ? t["by"].as<std::string>() : "process";
    if (by == "process") {
      threshold.by = Threshold::By::kProcess;
    } else if (by == "parent") {
      threshold.by = Threshold::By::kParent;
    } else if (by == "user") {
      threshold.by = Threshold::By::kUser;
    } else if (by == "global") {
      threshold.by = Threshold::By::kGlobal;
    } else {
      r.fail(t["by"], "spec.threshold.by", "expected process, parent, user or global");
    }
    rule->threshold = threshold;
  }
  if (const YAML::Node tests = spec["tests"]) {
    if (!tests.IsSequence()) r.fail(tests, "spec.tests", "expected a list of test cases");
    for (const auto& t : tests) {
      r.known_keys(t, "spec.tests[]", {"name", "event", "expect"});
      RuleTestCase tc;
      tc.line = t.Mark().line + 1;
      tc.name = r.string_at(t, "spec.tests[]", "name", false);
      const std::string expect = r.string_at(t, "spec.tests[]", "expect", true);
      if (expect != "match" && expect != "no-match") {
        r.fail(t["expect"], "spec.tests[].expect", "expected match or no-match");
      }
      tc.expect_match = expect == "match";
      const YAML::Node event = t["event"];
      if (!event || !event.IsMap()) r.fail(t, "spec.tests[].event", "expected a mapping of field: value");
      for (const auto& kv : event) {
        const std::string field = kv.first.as<std::string>();
        const FieldDef* def = find_field(field);
        if (def == nullptr) r.fail(kv.first, "spec.tests[].event", "unknown field '" + field + "'");
        if (def->assign == nullptr) {
          r.fail(kv.first, "spec.tests[].event", "'" + field + "' is derived; set the field it comes from");
        }
        const YAML::Node value = kv.second;
        if (value.IsSequence()) {  // multi-valued (ancestor.exe)
          for (const auto& v : value) tc.fields.emplace_back(field, v.as<std::string>());
        } else {
          tc.fields.emplace_back(field, value.as<std::string>());
        }
      }
      rule->tests.push_back(std::move(tc));
    }
  }
  return rule;
}

std::string fnv_digest(const std::vector<PolicySource>& sources) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& s : sources) {
    for (unsigned char c : s.name + '\0' + s.text + '\0') {
      h ^= c;
      h *= 1099511628211ULL;
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace

std::string Diagnostic::to_string() const {
  return source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: " +
         field + ": " + message;
}

std::shared_ptr<PolicySet> PolicySet::compile(const std::vector<PolicySource>& sources,
                                              std::vector<Diagnostic>& errors) {
  const size_t errors_before = errors.size();
  std::vector<std::pair<DocumentReader, ParsedDocument>> rules;
  Definitions defs;
  std::set<std::string> names;

  // Pass 1: parse every document, collect lists and macros (visible to all rules).
  for (const auto& source : sources) {
    DocumentReader r(source.name);
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(source.text);
    } catch (const YAML::ParserException& e) {
      errors.push_back(Diagnostic{source.name, e.mark.line + 1, e.mark.column + 1, "(yaml)", e.msg});
      continue;
    }
    for (const auto& doc : docs) {
      if (!doc || doc.IsNull()) continue;
      try {
        r.known_keys(doc, "", {"apiVersion", "kind", "metadata", "spec"});
        const std::string api = r.string_at(doc, "", "apiVersion", true);
        if (api != kApiVersion) {
          r.fail(doc["apiVersion"], "apiVersion", "expected " + std::string(kApiVersion) + ", got '" + api + "'");
        }
        ParsedDocument parsed;
        parsed.kind = r.string_at(doc, "", "kind", true);
        if (!doc["metadata"]) r.fail(doc, "metadata", "required field is missing");
        r.known_keys(doc["metadata"], "metadata", {"name", "labels", "annotations", "namespace"});
        parsed.name = r.string_at(doc["metadata"], "metadata", "name", true);
        parsed.spec = doc["spec"];
        parsed.line = doc.Mark().line + 1;
        if (!parsed.spec) r.fail(doc, "spec", "required field is missing");
        const std::string key = parsed.kind + "/" + parsed.name;
        if (!names.insert(key).second) {
          r.fail(doc["metadata"]["name"], "metadata.name", "duplicate " + key);
        }
        if (parsed.kind == "List") {
          r.known_keys(parsed.spec, "spec", {"items"});
          defs.lists[parsed.name] = r.strings_at(parsed.spec, "spec", "items");
        } else if (parsed.kind == "Macro") {
          r.known_keys(parsed.spec, "spec", {"condition"});
          defs.macros[parsed.name] = r.string_at(parsed.spec, "spec", "condition", true);
        } else if (parsed.kind == "DetectionRule") {
          rules.emplace_back(r, std::move(parsed));
        } else {
          r.fail(doc["kind"], "kind",
                 "unknown kind '" + parsed.kind + "' (expected DetectionRule, List or Macro)");
        }
      } catch (const DocumentError& e) {
        errors.push_back(e.diagnostic);
      } catch (const YAML::Exception& e) {
        errors.push_back(Diagnostic{source.name, e.mark.line + 1, e.mark.column + 1, "(yaml)", e.msg});
      }
    }
  }

  // Pass 2: compile rules against the complete definitions.
  auto set = std::shared_ptr<PolicySet>(new PolicySet());
  for (auto& [reader, doc] : rules) {
    try {
      set->rules_.push_back(compile_rule(reader, doc, defs));
    } catch (const DocumentError& e) {
      errors.push_back(e.diagnostic);
    } catch (const YAML::Exception& e) {
      errors.push_back(Diagnostic{reader.source(), e.mark.line + 1, e.mark.column + 1, "(yaml)", e.msg});
    }
  }
  if (errors.size() != errors_before) return nullptr;

  set->state_.resize(set->rules_.size());
  set->build_index();
  set->digest_ = fnv_digest(sources);
  return set;
}

}  // namespace palisade::policies
