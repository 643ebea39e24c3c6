// Splits policy sources into documents, hands each kind to its loader (rule_loader,
// workload_policy_loader, vm_policy) and compiles the set.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdio>
#include <set>

#include "document_reader.h"
#include "palisade/policies/policy_set.h"
#include "rule_loader.h"
#include "vm_policy_loader.h"
#include "workload_policy_loader.h"

namespace palisade::policies {
namespace {

using detail::DocumentError;
using detail::DocumentReader;
using detail::ParsedDocument;

using detail::kApiVersion;

struct DocumentText {
  std::string text;
  int first_line;  // 0-based line of the document's first line in its file
};

// Splits a multi-document stream at "---" and "..." lines. yaml-cpp 0.7's LoadAll never returns
// on some malformed streams (found by the fuzzer: ", a" loops forever); loading one document at
// a time with YAML::Load does not loop. Separator lines are blanked, not removed, so that marks
// keep their columns.
std::vector<DocumentText> split_documents(const std::string& stream) {
  std::vector<DocumentText> docs;
  DocumentText current{{}, 0};
  int line_no = 0;
  size_t pos = 0;
  while (pos <= stream.size()) {
    size_t end = stream.find('\n', pos);
    if (end == std::string::npos) end = stream.size();
    std::string line = stream.substr(pos, end - pos);
    const bool separator = line.rfind("---", 0) == 0 && (line.size() == 3 || line[3] == ' ' ||
                                                         line[3] == '\t' || line[3] == '\r');
    const bool terminator = line.rfind("...", 0) == 0 && (line.size() == 3 || line[3] == ' ');
    if (separator || terminator) {
      docs.push_back(std::move(current));
      current = DocumentText{{}, line_no + 1};
      if (separator && line.size() > 4) {
        // "--- {inline: document}": keep what follows the marker on the new document's first line.
        current.first_line = line_no;
        current.text = std::string(4, ' ') + line.substr(4) + '\n';
      }
    } else {
      current.text += line;
      current.text += '\n';
    }
    if (end == stream.size()) break;
    pos = end + 1;
    ++line_no;
  }
  docs.push_back(std::move(current));
  return docs;
}

bool only_comments(const std::string& text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    const size_t first = line.find_first_not_of(" \t\r");
    if (first != std::string_view::npos && line[first] != '#') return false;
    pos = end + 1;
  }
  return true;
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
  return source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: " + field +
         ": " + message;
}

std::shared_ptr<PolicySet> PolicySet::compile(const std::vector<PolicySource>& sources,
                                              std::vector<Diagnostic>& errors) {
  const size_t errors_before = errors.size();
  std::vector<std::pair<DocumentReader, ParsedDocument>> rules;
  std::vector<std::pair<DocumentReader, ParsedDocument>> workloads;
  std::vector<std::pair<DocumentReader, ParsedDocument>> vm_policies;
  Definitions defs;
  std::set<std::string> names;

  // Pass 1: parse every document, collect lists and macros (visible to all rules).
  for (const auto& source : sources) {
    if (source.text.size() > kMaxPolicySourceBytes) {
      errors.push_back(Diagnostic{source.name, 1, 1, "(file)",
                                  std::to_string(source.text.size()) +
                                      " bytes or more, more than the " +
                                      std::to_string(kMaxPolicySourceBytes) +
                                      " a policy source may have; nothing in it was read"});
      continue;
    }
    std::vector<DocumentText> pieces = split_documents(source.text);
    std::erase_if(pieces, [](const DocumentText& piece) { return only_comments(piece.text); });
    if (pieces.size() > kMaxDocumentsPerSource) {
      errors.push_back(Diagnostic{
          source.name, pieces[kMaxDocumentsPerSource].first_line + 1, 1, "(file)",
          std::to_string(pieces.size()) + " documents, more than the " +
              std::to_string(kMaxDocumentsPerSource) +
              " a policy source may have (this is the first one over); nothing in it was read"});
      continue;
    }
    for (const auto& piece : pieces) {
      if (only_comments(piece.text)) continue;
      DocumentReader r(source.name, piece.first_line);
      try {
        YAML::Node doc;
        try {
          doc = YAML::Load(piece.text);
        } catch (const YAML::ParserException& e) {
          errors.push_back(Diagnostic{source.name, e.mark.line + 1 + piece.first_line,
                                      e.mark.column + 1, "(yaml)", e.msg});
          continue;
        }
        if (!doc || !doc.IsMap()) {
          errors.push_back(
              Diagnostic{source.name, piece.first_line + 1, 1, "(document)",
                         "expected a mapping with apiVersion, kind, metadata and spec"});
          continue;
        }
        r.known_keys(doc, "", {"apiVersion", "kind", "metadata", "spec"});
        const std::string api = r.string_at(doc, "", "apiVersion", true);
        if (api != kApiVersion) {
          r.fail(doc["apiVersion"], "apiVersion",
                 "expected " + std::string(kApiVersion) + ", got '" + api + "'");
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
        } else if (parsed.kind == "WorkloadPolicy") {
          workloads.emplace_back(r, std::move(parsed));
        } else if (parsed.kind == "VirtualMachinePolicy") {
          vm_policies.emplace_back(r, std::move(parsed));
        } else {
          r.fail(doc["kind"], "kind",
                 "unknown kind '" + parsed.kind +
                     "' (expected DetectionRule, WorkloadPolicy, VirtualMachinePolicy, List or "
                     "Macro)");
        }
      } catch (const DocumentError& e) {
        errors.push_back(e.diagnostic);
      } catch (const YAML::Exception& e) {
        errors.push_back(Diagnostic{source.name, e.mark.line + 1 + r.line_offset(),
                                    e.mark.column + 1, "(yaml)", e.msg});
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
      errors.push_back(Diagnostic{reader.source(), e.mark.line + 1 + reader.line_offset(),
                                  e.mark.column + 1, "(yaml)", e.msg});
    }
  }
  for (auto& [reader, doc] : workloads) {
    try {
      auto policy = compile_workload(reader, doc);
      if (policy->has_process) {
        set->workload_rules_.push_back(decision_rule(*policy, "process", policy->process_mode));
      }
      for (auto [section, present] :
           {std::pair{"egress", policy->egress.present}, {"ingress", policy->ingress.present}}) {
        if (present) {
          set->workload_rules_.push_back(decision_rule(*policy, section, policy->network_mode));
        }
      }
      if (policy->files.present) {
        for (const char* section : {"files", "read-only", "writable", "protect"}) {
          set->workload_rules_.push_back(decision_rule(*policy, section, policy->files_mode));
        }
      }
      set->workloads_.push_back(std::move(policy));
    } catch (const DocumentError& e) {
      errors.push_back(e.diagnostic);
    } catch (const YAML::Exception& e) {
      errors.push_back(Diagnostic{reader.source(), e.mark.line + 1 + reader.line_offset(),
                                  e.mark.column + 1, "(yaml)", e.msg});
    }
  }
  for (auto& [reader, doc] : vm_policies) {
    try {
      set->vm_policies_.push_back(compile_vm_policy(reader, doc));
    } catch (const DocumentError& e) {
      errors.push_back(e.diagnostic);
    } catch (const YAML::Exception& e) {
      errors.push_back(Diagnostic{reader.source(), e.mark.line + 1 + reader.line_offset(),
                                  e.mark.column + 1, "(yaml)", e.msg});
    }
  }
  if (errors.size() != errors_before) return nullptr;
  set->set_hostname("");

  set->state_.resize(set->rules_.size());
  set->build_index();
  set->digest_ = fnv_digest(sources);
  return set;
}

}  // namespace palisade::policies
