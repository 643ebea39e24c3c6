// DetectionRule documents: condition, output template, severity, response, thresholds, tests.
#include "rule_loader.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <set>

namespace palisade::policies {
namespace {

using detail::DocumentReader;
using detail::parse_duration_ns;
using detail::parse_response;
using detail::parse_severity;
using detail::ParsedDocument;

// Compiles a condition, translating an error's column into the YAML file's coordinates.
Expression compile_condition(const DocumentReader& r, const YAML::Node& node,
                             const std::string& field, const Definitions& defs) {
  if (!node.IsScalar()) r.fail(node, field, "expected a condition string");
  const std::string text = node.as<std::string>();
  auto result = compile_expression(text, defs);
  if (auto* error = std::get_if<CompileError>(&result)) {
    // Quoted scalars start one column later; block scalars start on the next line (the column
    // is then approximate).
    const bool quoted = node.Tag() == "!";
    r.fail(
        node, field,
        error->message + " (at column " + std::to_string(error->column + 1) + " of the condition)",
        error->column + (quoted ? 1 : 0));
  }
  return std::get<Expression>(std::move(result));
}

void validate_template(const DocumentReader& r, const YAML::Node& node, const std::string& text) {
  size_t pos = 0;
  while ((pos = text.find('{', pos)) != std::string::npos) {
    size_t end = text.find('}', pos);
    if (end == std::string::npos)
      r.fail(node, "spec.output", "unclosed '{' in the output template");
    const std::string name = text.substr(pos + 1, end - pos - 1);
    if (find_field(name) == nullptr) {
      r.fail(node, "spec.output", "unknown field '{" + name + "}' in the output template");
    }
    pos = end + 1;
  }
}

}  // namespace

std::unique_ptr<DetectionRule> compile_rule(const DocumentReader& r, const ParsedDocument& doc,
                                            const Definitions& defs) {
  const YAML::Node& spec = doc.spec;
  r.known_keys(spec, "spec",
               {"description", "condition", "output", "severity", "tags", "exceptions", "response",
                "threshold", "dedupe", "tests", "namespaces"});
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
  rule->namespaces = r.strings_at(spec, "spec", "namespaces");
  if (const YAML::Node exceptions = spec["exceptions"]) {
    if (!exceptions.IsSequence())
      r.fail(exceptions, "spec.exceptions", "expected a list of conditions");
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
  if (const YAML::Node d = spec["dedupe"]) {
    r.known_keys(d, "spec.dedupe", {"fields", "window"});
    Dedupe dedupe;
    for (const auto& name : r.strings_at(d, "spec.dedupe", "fields")) {
      const FieldDef* field = find_field(name);
      if (field == nullptr || field->any_of != nullptr) {
        r.fail(d["fields"], "spec.dedupe.fields", "unknown or multi-valued field '" + name + "'");
      }
      dedupe.fields.push_back(field);
    }
    if (dedupe.fields.empty()) r.fail(d, "spec.dedupe.fields", "needs at least one field");
    if (!d["window"]) r.fail(d, "spec.dedupe.window", "required field is missing");
    dedupe.window_ns = parse_duration_ns(r, d["window"], "spec.dedupe.window");
    rule->dedupe = dedupe;
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
      if (!event || !event.IsMap())
        r.fail(t, "spec.tests[].event", "expected a mapping of field: value");
      for (const auto& kv : event) {
        const std::string field = kv.first.as<std::string>();
        const FieldDef* def = find_field(field);
        if (def == nullptr) r.fail(kv.first, "spec.tests[].event", "unknown field '" + field + "'");
        if (def->assign == nullptr) {
          r.fail(kv.first, "spec.tests[].event",
                 "'" + field + "' is derived; set the field it comes from");
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

}  // namespace palisade::policies
