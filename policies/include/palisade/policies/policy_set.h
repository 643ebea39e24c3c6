// Policy documents compiled into a PolicySet: the unit the agent swaps atomically on reload.
// The library does no I/O: callers hand it document texts (files, CRDs, the built-in defaults).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "palisade/model/finding.h"
#include "palisade/policies/expression.h"
#include "palisade/policies/vm_policy.h"
#include "palisade/policies/workload_policy.h"

namespace palisade::policies {

struct PolicySource {
  std::string name;  // file path or resource name, used in diagnostics
  std::string text;
};

// Limits on one policy source (a file or a resource), enforced before any of it is parsed: a
// larger one is refused with a diagnostic, so that a runaway file cannot take the agent's memory
// on a reload. Readers of policy files read at most kMaxPolicySourceBytes + 1 bytes.
inline constexpr size_t kMaxPolicySourceBytes = 4U << 20;
inline constexpr size_t kMaxDocumentsPerSource = 1000;

// An error (or warning) in a policy document, formatted compiler-style.
struct Diagnostic {
  std::string source;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string field;
  std::string message;
  std::string to_string() const;  // "file:line:col: error: field: message"
};

enum class Severity : uint8_t {
  kInformational = 1,
  kLow = 2,
  kMedium = 3,
  kHigh = 4,
  kCritical = 5
};
// kBlock (deny the operation) and kRestore (put the approved file back) come from WorkloadPolicy
// decisions in enforce mode; detection rules choose among the others. kIsolate cuts a workload
// off the network (a VM: its interfaces' links go down); kSuspend, kSnapshot and kShutdown act on
// virtual machines only (palisade hv), kKill and kQuarantine on processes and files only.
enum class Response : uint8_t {
  kAlert,
  kKill,
  kIsolate,
  kQuarantine,
  kBlock,
  kRestore,
  kSuspend,
  kSnapshot,
  kShutdown
};
std::string_view severity_name(Severity s);
std::string_view response_name(Response r);
// Whether a response can only be carried out on a virtual machine.
bool is_vm_response(Response r);

struct Threshold {
  enum class By : uint8_t { kProcess, kParent, kUser, kGlobal };
  uint32_t count = 0;
  uint64_t window_ns = 0;
  By by = By::kProcess;
};

// Report a match only the first time its combination of field values is seen in the window
// ("a new listening port": first time this executable listens on this port).
struct Dedupe {
  std::vector<const FieldDef*> fields;
  uint64_t window_ns = 0;
};

struct RuleTestCase {
  std::string name;
  std::vector<std::pair<std::string, std::string>> fields;  // field name -> value
  bool expect_match = true;
  int line = 0;
};

struct DetectionRule {
  std::string name;
  std::string description;
  std::string output;  // template with {field.name} placeholders
  Severity severity = Severity::kMedium;
  std::vector<std::string> tags;  // MITRE ATT&CK technique ids and free tags
  // When given, the rule matches only events from pods in these Kubernetes namespaces (globs).
  // The agent sets it on rules from a namespaced PalisadePolicy: a scope the condition's text
  // cannot widen.
  std::vector<std::string> namespaces;
  Response response = Response::kAlert;
  std::string condition_text;
  Expression condition;
  std::vector<Expression> exceptions;
  std::optional<Threshold> threshold;
  std::optional<Dedupe> dedupe;
  std::vector<RuleTestCase> tests;
  std::string source;
  int line = 0;
};

struct Finding {
  const DetectionRule* rule = nullptr;
  std::string message;  // the rendered output template, or a WorkloadPolicy decision's reason
  uint32_t count = 1;   // events counted when a threshold fired
  std::string verdict;  // WorkloadPolicy decisions: "would block (audit)", "block (enforce)",
                        // "would restore (audit)", "restore (enforce)" or "changed" (watched)

  // What the outputs render; valid while this finding and its rule live.
  FindingView view() const;
};

struct TestResult {
  const DetectionRule* rule;
  const RuleTestCase* test;
  bool passed;
  std::string detail;
};

class PolicySet {
 public:
  // Compiles every document; returns null (and the errors) when any document is invalid, so a
  // bad file can never replace a good policy set.
  static std::shared_ptr<PolicySet> compile(const std::vector<PolicySource>& sources,
                                            std::vector<Diagnostic>& errors);

  // Appends the findings for this event. Thresholds keep bounded per-key state, so evaluation is
  // not const; the agent calls it from its pipeline thread only.
  void evaluate(const Event& event, std::vector<Finding>& out);

  // Runs the test cases carried by the rules themselves.
  std::vector<TestResult> run_embedded_tests() const;

  const std::vector<std::unique_ptr<DetectionRule>>& rules() const { return rules_; }
  const std::vector<std::unique_ptr<WorkloadPolicy>>& workload_policies() const {
    return workloads_;
  }
  // VirtualMachinePolicies, for the hypervisor monitor (the node agent has no VMs).
  const std::vector<std::unique_ptr<VmPolicy>>& vm_policies() const { return vm_policies_; }
  // How allowlist entries that pin a sha256 learn an executable's hash (see ExecutableHasher).
  void set_executable_hasher(ExecutableHasher hasher) { hasher_ = std::move(hasher); }
  // Resolves network rules that name their peer by workload (pods by namespace and labels).
  void set_peer_lookup(PeerLookup peers) { peers_ = std::move(peers); }
  bool uses_workload_peers() const;
  // Selects the WorkloadPolicies whose host selector matches this host.
  void set_hostname(const std::string& hostname);
  const std::string& digest() const { return digest_; }  // of all document texts, in order
  size_t threshold_keys() const;
  uint64_t threshold_evictions() const { return threshold_evictions_; }

 private:
  struct Window {
    uint64_t start_ns = 0;
    uint32_t count = 0;
    bool fired = false;
  };
  struct RuleState {
    std::unordered_map<uint64_t, Window> windows;
    std::unordered_map<uint64_t, uint64_t> first_seen;  // dedupe key -> time first reported
  };
  bool passes(DetectionRule& rule, RuleState& state, const Event& event, uint32_t& count);
  bool is_new(const Dedupe& dedupe, RuleState& state, const Event& event);

  // Keeps per-rule state bounded: at the cap, entries that have run out go first; if every entry
  // is still live, the map starts over and the loss is counted.
  template <typename Map, typename Expired>
  void make_room(Map& map, Expired expired) {
    if (map.size() < kMaxStateKeys) return;
    std::erase_if(map, [&](const auto& kv) { return expired(kv.second); });
    if (map.size() >= kMaxStateKeys) {
      threshold_evictions_ += map.size();
      map.clear();
    }
  }
  static constexpr size_t kMaxStateKeys = 16384;  // per rule

  void consider(uint32_t index, const Event& event, std::vector<Finding>& out);
  void build_index();

  // Rules for one event kind: those indexed by the value of one field, and the rest.
  struct FieldIndex {
    const FieldDef* field;
    std::unordered_map<std::string, std::vector<uint32_t>> rules;
  };
  struct KindIndex {
    std::vector<uint32_t> unindexed;
    std::vector<FieldIndex> by_field;
  };

  void evaluate_workloads(const Event& event, std::vector<Finding>& out);

  std::vector<std::unique_ptr<DetectionRule>> rules_;
  std::vector<RuleState> state_;  // parallel to rules_
  std::vector<std::unique_ptr<WorkloadPolicy>> workloads_;
  std::vector<std::unique_ptr<DetectionRule>> workload_rules_;  // how their decisions are reported
  std::vector<std::unique_ptr<VmPolicy>> vm_policies_;
  std::vector<const WorkloadPolicy*> selected_;
  std::vector<Decision> decisions_;  // reused by evaluate_workloads
  ExecutableHasher hasher_;
  PeerLookup peers_;
  std::array<KindIndex, kEventKindLimit> by_kind_;
  std::string lookup_key_;  // reused for index lookups
  std::string digest_;
  uint64_t threshold_evictions_ = 0;
};

// Renders a rule's output template for an event.
std::string render_template(const std::string& output, const Event& event);

// The shipped default rule set (policies/rules/*.yaml, compiled in).
std::vector<PolicySource> default_rule_sources();

}  // namespace palisade::policies
