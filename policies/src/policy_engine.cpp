// Evaluates compiled rules against events: kind-indexed dispatch, exceptions, thresholds.
#include <fnmatch.h>

#include <algorithm>
#include <charconv>

#include "palisade/model/container_view.h"
#include "palisade/policies/policy_set.h"

namespace palisade::policies {
namespace {

uint64_t threshold_key(Threshold::By by, const Event& e) {
  switch (by) {
    case Threshold::By::kProcess:
      return (uint64_t{e.task.tgid} << 32) ^ e.task.start_ns;
    case Threshold::By::kParent:
      return e.task.ppid;
    case Threshold::By::kUser:
      return e.task.auid != TaskIdentity::kNoLoginUid ? e.task.auid : e.task.uid;
    case Threshold::By::kGlobal:
      return 0;
  }
  return 0;
}

void append_value(std::string& out, const FieldDef& field, const Event& event) {
  if (field.any_of != nullptr) {
    bool first = true;
    field.any_of(event, [&](const FieldValue& v) {
      if (!first) out += ' ';
      out.append(v.text);
      first = false;
      return false;
    });
    return;
  }
  const FieldValue v = field.read(event);
  if (!v.present) {
    out += "<none>";
  } else if (field.type == FieldType::kInt) {
    out += std::to_string(v.number);
  } else {
    out.append(v.text);
  }
}

}  // namespace

std::string_view severity_name(Severity s) {
  switch (s) {
    case Severity::kInformational:
      return "Informational";
    case Severity::kLow:
      return "Low";
    case Severity::kMedium:
      return "Medium";
    case Severity::kHigh:
      return "High";
    case Severity::kCritical:
      return "Critical";
  }
  return "Unknown";
}

std::string_view response_name(Response r) {
  switch (r) {
    case Response::kAlert:
      return "alert";
    case Response::kKill:
      return "kill";
    case Response::kIsolate:
      return "isolate";
    case Response::kQuarantine:
      return "quarantine";
    case Response::kBlock:
      return "block";
    case Response::kRestore:
      return "restore";
    case Response::kSuspend:
      return "suspend";
    case Response::kSnapshot:
      return "snapshot";
    case Response::kShutdown:
      return "shutdown";
  }
  return "alert";
}

FindingView Finding::view() const {
  FindingView v;
  v.rule = rule->name;
  v.title = rule->description.empty() ? rule->name : rule->description;
  v.rule_source = rule->source;
  v.severity_id = static_cast<int>(rule->severity);
  v.severity = severity_name(rule->severity);
  v.tags = rule->tags;
  v.response = response_name(rule->response);
  v.message = message;
  v.count = count;
  v.verdict = verdict;
  return v;
}

bool is_vm_response(Response r) {
  return r == Response::kSuspend || r == Response::kSnapshot || r == Response::kShutdown;
}

std::string render_template(const std::string& output, const Event& event) {
  std::string out;
  size_t pos = 0;
  while (pos < output.size()) {
    size_t open = output.find('{', pos);
    if (open == std::string::npos) {
      out.append(output, pos, std::string::npos);
      break;
    }
    out.append(output, pos, open - pos);
    size_t close = output.find('}', open);
    if (close == std::string::npos) {
      out.append(output, open, std::string::npos);
      break;
    }
    const FieldDef* field = find_field(std::string_view(output).substr(open + 1, close - open - 1));
    if (field != nullptr) {
      append_value(out, *field, event);
    } else {
      out.append(output, open, close - open + 1);
    }
    pos = close + 1;
  }
  return out;
}

bool PolicySet::passes(DetectionRule& rule, RuleState& state, const Event& event, uint32_t& count) {
  if (!rule.threshold) return true;
  const Threshold& t = *rule.threshold;
  const uint64_t now = event.mono_ns;
  make_room(state.windows, [&](const Window& w) { return now - w.start_ns > t.window_ns; });
  Window& w = state.windows[threshold_key(t.by, event)];
  if (w.count == 0 || now - w.start_ns > t.window_ns) w = Window{now, 0, false};
  w.count++;
  if (w.fired || w.count < t.count) return false;
  w.fired = true;  // once per window: a burst of 10,000 deletions is one finding, not 50
  count = w.count;
  return true;
}

void PolicySet::build_index() {
  for (uint32_t i = 0; i < rules_.size(); ++i) {
    const KindSet kinds = rules_[i]->condition.kinds();
    const auto key = rules_[i]->condition.equality_key();
    for (size_t k = 0; k < kinds.size(); ++k) {
      if (!kinds.test(k)) continue;
      KindIndex& index = by_kind_[k];
      if (!key) {
        index.unindexed.push_back(i);
        continue;
      }
      auto it = std::find_if(index.by_field.begin(), index.by_field.end(),
                             [&](const FieldIndex& f) { return f.field == key->field; });
      if (it == index.by_field.end()) {
        index.by_field.push_back(FieldIndex{key->field, {}});
        it = index.by_field.end() - 1;
      }
      for (const auto& value : key->values) it->rules[value].push_back(i);
    }
  }
}

bool PolicySet::is_new(const Dedupe& dedupe, RuleState& state, const Event& event) {
  uint64_t key = 1469598103934665603ULL;
  auto mix = [&key](const void* data, size_t size) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < size; ++i) {
      key ^= bytes[i];
      key *= 1099511628211ULL;
    }
  };
  for (const FieldDef* field : dedupe.fields) {
    const FieldValue v = field->read(event);
    mix(&v.present, sizeof(v.present));
    mix(v.text.data(), v.text.size());
    mix(&v.number, sizeof(v.number));
  }
  const uint64_t now = event.mono_ns;
  make_room(state.first_seen, [&](uint64_t seen) { return now - seen > dedupe.window_ns; });
  auto [it, inserted] = state.first_seen.try_emplace(key, now);
  if (inserted) return true;
  if (now - it->second <= dedupe.window_ns) return false;
  it->second = now;  // seen before, but long enough ago to be news again
  return true;
}

namespace {

bool in_namespaces(const std::vector<std::string>& globs, const Event& event) {
  if (!event.container || event.container->pod_namespace.empty()) return false;
  const std::string& ns = event.container->pod_namespace;
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& g) { return fnmatch(g.c_str(), ns.c_str(), 0) == 0; });
}

}  // namespace

void PolicySet::consider(uint32_t index, const Event& event, std::vector<Finding>& out) {
  DetectionRule& rule = *rules_[index];
  if (!rule.namespaces.empty() && !in_namespaces(rule.namespaces, event)) return;
  if (!rule.condition.matches(event)) return;
  for (const auto& exception : rule.exceptions) {
    if (exception.matches(event)) return;
  }
  uint32_t count = 1;
  if (!passes(rule, state_[index], event, count)) return;
  if (rule.dedupe && !is_new(*rule.dedupe, state_[index], event)) return;
  out.push_back(Finding{&rule, render_template(rule.output, event), count, {}});
}

void PolicySet::set_hostname(const std::string& hostname) {
  selected_.clear();
  for (const auto& policy : workloads_) {
    // VM selectors are for the hypervisor module (issue 6): on a node they select nothing rather
    // than everything.
    if (policy->vm_selector) continue;
    const bool host_ok =
        policy->hosts.empty() ||
        std::any_of(policy->hosts.begin(), policy->hosts.end(), [&](const std::string& glob) {
          return fnmatch(glob.c_str(), hostname.c_str(), 0) == 0;
        });
    if (host_ok) selected_.push_back(policy.get());
  }
}

bool PolicySet::uses_workload_peers() const {
  auto any = [](const NetworkSection& s) {
    return std::any_of(s.allow.begin(), s.allow.end(),
                       [](const NetworkRule& r) { return r.workload.has_value(); }) ||
           std::any_of(s.deny.begin(), s.deny.end(),
                       [](const NetworkRule& r) { return r.workload.has_value(); });
  };
  return std::any_of(workloads_.begin(), workloads_.end(), [&](const auto& p) {
    return any(p->egress) || any(p->ingress) ||
           std::any_of(p->management.begin(), p->management.end(),
                       [](const NetworkRule& r) { return r.workload.has_value(); });
  });
}

void PolicySet::evaluate_workloads(const Event& event, std::vector<Finding>& out) {
  for (const WorkloadPolicy* policy : selected_) {
    if (!concerns(*policy, event.kind) || !selects_process(*policy, event)) continue;
    decisions_.clear();
    decide(*policy, event, &hasher_, decisions_, &peers_);
    for (Decision& d : decisions_) {
      const std::string name = "workload-policy/" + policy->name + "/" + std::string(d.section);
      const DetectionRule* rule = nullptr;
      for (const auto& r : workload_rules_) {
        if (r->name == name) rule = r.get();
      }
      out.push_back(Finding{rule, policy->name + ": " + d.reason, 1, std::string(d.verdict)});
    }
  }
}

void PolicySet::evaluate(const Event& event, std::vector<Finding>& out) {
  const auto kind = static_cast<size_t>(event.kind);
  if (kind >= by_kind_.size()) return;
  if (!selected_.empty()) evaluate_workloads(event, out);
  const KindIndex& index = by_kind_[kind];
  for (uint32_t rule : index.unindexed) consider(rule, event, out);
  for (const FieldIndex& f : index.by_field) {
    const FieldValue v = f.field->read(event);
    if (!v.present) continue;
    lookup_key_.assign(v.text);
    auto it = f.rules.find(lookup_key_);
    if (it == f.rules.end()) continue;
    for (uint32_t rule : it->second) consider(rule, event, out);
  }
}

size_t PolicySet::threshold_keys() const {
  size_t n = 0;
  for (const auto& s : state_) n += s.windows.size() + s.first_seen.size();
  return n;
}

std::vector<TestResult> PolicySet::run_embedded_tests() const {
  std::vector<TestResult> results;
  for (const auto& rule : rules_) {
    for (const auto& tc : rule->tests) {
      Event event;
      event.kind = EventKind::kProcessExec;
      event.task.auid = TaskIdentity::kNoLoginUid;
      std::string detail;
      for (const auto& [name, value] : tc.fields) {
        const FieldDef* field = find_field(name);
        if (field == nullptr || field->assign == nullptr || !field->assign(event, value)) {
          detail = "cannot set " + name + " to '" + value + "'";
        }
      }
      bool matched = false;
      if (detail.empty()) {
        bool excepted = false;
        for (const auto& e : rule->exceptions) excepted = excepted || e.matches(event);
        matched = rule->condition.matches(event) && !excepted;
        if (matched != tc.expect_match) {
          detail = tc.expect_match ? "expected a match, the rule did not match"
                                   : "expected no match, the rule matched";
        }
      }
      results.push_back(TestResult{rule.get(), &tc, detail.empty(), detail});
    }
  }
  return results;
}

}  // namespace palisade::policies
