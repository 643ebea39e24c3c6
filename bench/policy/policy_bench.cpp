// Policy decisions per second with 1,000 rules loaded (the default rules plus generated ones in
// the shapes real rule sets have: per-executable rules, path-prefix rules, port rules).
#include <benchmark/benchmark.h>

#include <memory>

#include "palisade/policies/policy_set.h"

namespace palisade::policies {
namespace {

using palisade::EventKind;

std::string generated_rules(int n) {
  std::string yaml;
  for (int i = 0; i < n; ++i) {
    yaml += "---\napiVersion: palisade.dev/v1\nkind: DetectionRule\nmetadata: {name: gen-" +
            std::to_string(i) + "}\nspec:\n  output: \"gen {process.exe}\"\n  condition: ";
    switch (i % 4) {
      case 0:
        yaml += "event.kind = exec and process.exe = /opt/app" + std::to_string(i) +
                "/bin/server and process.uid != 0\n";
        break;
      case 1:
        yaml += "event.kind = open and process.name = worker" + std::to_string(i) +
                " and file.path startswith /srv/data" + std::to_string(i) + "/\n";
        break;
      case 2:
        yaml += "event.kind = connect and process.exe = /usr/local/bin/agent" + std::to_string(i) +
                " and net.remote_port = " + std::to_string(1000 + i) + "\n";
        break;
      default:
        yaml += "event.kind in (unlink, rename) and process.exe = /opt/tool" + std::to_string(i) +
                " and file.path contains secret\n";
    }
  }
  return yaml;
}

std::shared_ptr<PolicySet> thousand_rules() {
  std::vector<PolicySource> sources = default_rule_sources();
  std::vector<Diagnostic> errors;
  const auto defaults = PolicySet::compile(sources, errors);
  const int generated = 1000 - static_cast<int>(defaults->rules().size());
  sources.push_back(PolicySource{"generated.yaml", generated_rules(generated)});
  auto set = PolicySet::compile(sources, errors);
  if (!set) throw std::runtime_error(errors.front().to_string());
  return set;
}

std::vector<Event> sample_events() {
  std::vector<Event> events;
  auto add = [&](EventKind kind, const std::string& exe, const std::string& path) {
    Event e;
    e.kind = kind;
    e.task.tgid = 4242;
    e.task.uid = 1000;
    e.mono_ns = events.size();
    find_field("process.exe")->assign(e, exe);
    find_field("ancestor.exe")->assign(e, "/usr/bin/bash");
    find_field("ancestor.exe")->assign(e, "/usr/sbin/sshd");
    if (!path.empty()) e.path = path;
    e.remote.port = 443;
    events.push_back(std::move(e));
  };
  for (int i = 0; i < 64; ++i) {
    add(EventKind::kFileOpen, "/usr/bin/python3", "/var/lib/app/cache/" + std::to_string(i));
    add(EventKind::kProcessExec, "/usr/bin/ls", "");
    add(EventKind::kNetConnect, "/usr/bin/curl", "");
    add(EventKind::kFileUnlink, "/usr/bin/rm", "/tmp/file" + std::to_string(i));
    add(EventKind::kProcessExec, "/opt/app8/bin/server", "");  // hits an indexed rule
  }
  return events;
}

void BM_PolicyDecisions(benchmark::State& state) {
  auto set = thousand_rules();
  auto events = sample_events();
  std::vector<Finding> findings;
  findings.reserve(64);
  for (auto _ : state) {
    for (const auto& e : events) {
      findings.clear();
      set->evaluate(e, findings);
    }
    benchmark::DoNotOptimize(findings.data());
  }
  state.counters["rules"] = static_cast<double>(set->rules().size());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
}
BENCHMARK(BM_PolicyDecisions);

}  // namespace
}  // namespace palisade::policies

BENCHMARK_MAIN();
