// `palisade policy`: lint documents, run their embedded tests and replay recorded events through
// them, list the fields conditions can use.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "learn.h"
#include "palisade/agent/capture.h"
#include "palisade/base/bounded_read.h"
#include "palisade/ocsf/reader.h"
#include "palisade/policies/policy_set.h"
#include "palisade/runtime/detector.h"

namespace palisade::cli {
namespace {

using policies::Diagnostic;
using policies::PolicySet;
using policies::PolicySource;

std::vector<PolicySource> read_sources(const std::vector<std::string>& paths) {
  std::vector<PolicySource> sources;
  for (const auto& path : paths) {
    if (std::filesystem::is_directory(path)) {
      auto more = runtime::read_policy_directory(path);
      sources.insert(sources.end(), more.begin(), more.end());
      continue;
    }
    sources.push_back(
        PolicySource{path, base::read_file_prefix(path, policies::kMaxPolicySourceBytes)});
  }
  return sources;
}

// The shipped rules under the given documents (their lists and macros come first). A given file
// named like a shipped one (policies/rules/default.yaml, or an edited copy of it) is tested in
// its place rather than beside it, where every rule would be defined twice.
void add_default_rules(std::vector<PolicySource>& sources) {
  auto file_name = [](const std::string& path) { return path.substr(path.rfind('/') + 1); };
  std::vector<PolicySource> defaults;
  for (auto& builtin : policies::default_rule_sources()) {
    bool replaced = false;
    for (const auto& given : sources) replaced |= file_name(given.name) == file_name(builtin.name);
    if (replaced) {
      std::cerr << "testing the given " << file_name(builtin.name) << " in place of the built-in "
                << builtin.name << '\n';
    } else {
      defaults.push_back(std::move(builtin));
    }
  }
  sources.insert(sources.begin(), defaults.begin(), defaults.end());
}

std::shared_ptr<PolicySet> compile_or_report(const std::vector<PolicySource>& sources) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile(sources, errors);
  for (const auto& e : errors) std::cerr << e.to_string() << '\n';
  if (!errors.empty()) std::cerr << errors.size() << " error(s)\n";
  return set;
}

int lint(const std::vector<std::string>& files, bool with_defaults) {
  auto sources = read_sources(files);
  if (with_defaults) add_default_rules(sources);
  auto set = compile_or_report(sources);
  if (!set) return 1;
  std::cout << "OK: " << set->rules().size() << " rules, digest " << set->digest() << '\n';
  return 0;
}

// Prints each finding as it is raised during a replay.
class FindingPrinter : public runtime::EventSink {
 public:
  void consume(const Event&, std::string_view) override {}
  void consume_finding(std::string_view json, const Event& trigger) override {
    auto finding = nlohmann::json::parse(json);
    std::cout << "FIRED " << finding["unmapped"]["palisade"]["rule"].get<std::string>() << " ["
              << finding["severity"].get<std::string>() << "] pid " << trigger.task.tgid << ": "
              << finding["message"].get<std::string>() << '\n';
    fired++;
  }
  uint64_t fired = 0;
};

bool is_capture_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, sizeof(magic));
  return std::string_view(magic, sizeof(magic)) == "PALCAP01";
}

int test(const std::vector<std::string>& files, const std::string& capture, bool with_defaults) {
  auto sources = read_sources(files);
  if (with_defaults) add_default_rules(sources);
  auto set = compile_or_report(sources);
  if (!set) return 1;
  size_t failed = 0;
  size_t passed = 0;
  for (const auto& r : set->run_embedded_tests()) {
    if (r.passed) {
      passed++;
    } else {
      failed++;
      std::cout << "FAIL " << r.rule->source << ":" << r.test->line << ": " << r.rule->name << " / "
                << r.test->name << ": " << r.detail << '\n';
    }
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  if (!capture.empty() && !is_capture_file(capture)) {
    // OCSF JSON lines as written by `palisade agent --json`: events carry their enrichment.
    auto formatter = std::make_shared<ocsf::Formatter>(ocsf::HostInfo::detect());
    FindingPrinter printer;
    runtime::Detector detector(formatter, {&printer});
    set->set_hostname(formatter->host().hostname);
    detector.set_policy(set);
    std::ifstream in(capture);
    std::string line;
    size_t line_no = 0;
    size_t events = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      try {
        auto event = ocsf::event_from_ocsf(nlohmann::json::parse(line));
        if (!event) continue;
        detector.consume(*event, line);
        events++;
      } catch (const std::exception& e) {
        throw std::runtime_error(capture + ":" + std::to_string(line_no) + ": " + e.what());
      }
    }
    std::cout << "replayed " << events << " events from " << capture << ": " << printer.fired
              << " findings\n";
  } else if (!capture.empty()) {
    agent::CaptureHeader header;
    agent::RecordedSource source(capture);
    header = source.header();
    ocsf::HostInfo host = ocsf::HostInfo::detect();
    host.boot_wall_offset_ns = header.boot_wall_offset_ns;
    auto formatter = std::make_shared<ocsf::Formatter>(host);
    FindingPrinter printer;
    runtime::Detector detector(formatter, {&printer});
    set->set_hostname(host.hostname);
    detector.set_policy(set);
    agent::ProcessTable table;
    agent::Pipeline pipeline(table, {&detector});
    pipeline.set_formatter(formatter);
    pipeline.set_wall_offset_ns(header.wall_offset_ns);
    const agent::RecordCallback deliver = [&](agent::RecordView r) { pipeline.handle(r); };
    while (source.poll(std::chrono::milliseconds(0), deliver)) {
    }
    std::cout << "replayed " << pipeline.stats().delivered << " events from " << capture << ": "
              << printer.fired << " findings\n";
  }
  return failed == 0 ? 0 : 1;
}

int list_fields(bool markdown) {
  if (markdown) {
    std::cout << policies::render_fields_markdown();
    return 0;
  }
  for (const auto& f : policies::fields()) {
    std::cout << f.name << "\t" << (f.type == policies::FieldType::kInt ? "number" : "string")
              << "\t" << f.description << '\n';
  }
  return 0;
}

}  // namespace

void add_policy_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("policy", "Lint and test policy documents");
  cmd->require_subcommand(1);

  auto lint_files = std::make_shared<std::vector<std::string>>();
  auto lint_defaults = std::make_shared<bool>(true);
  auto* lint_cmd = cmd->add_subcommand("lint", "Validate documents; errors are FILE:LINE:COL");
  lint_cmd->add_option("files", *lint_files, "Policy files or directories")->required();
  lint_cmd->add_flag("!--no-default-rules", *lint_defaults,
                     "Do not make the default lists and macros available");
  lint_cmd->callback([=, &exit_code] {
    try {
      exit_code = lint(*lint_files, *lint_defaults);
    } catch (const std::exception& e) {
      std::cerr << "palisade policy lint: " << e.what() << '\n';
      exit_code = 2;
    }
  });

  auto test_files = std::make_shared<std::vector<std::string>>();
  auto capture = std::make_shared<std::string>();
  auto test_defaults = std::make_shared<bool>(true);
  auto* test_cmd = cmd->add_subcommand(
      "test", "Run the documents' own test cases, and replay recorded events through them");
  test_cmd->add_option("files", *test_files, "Policy files or directories");
  test_cmd
      ->add_option("--events", *capture,
                   "Recorded events: OCSF JSON lines (agent --json) or a capture (agent --record)")
      ->check(CLI::ExistingFile);
  test_cmd->add_flag("!--no-default-rules", *test_defaults, "Leave the default rules out");
  test_cmd->callback([=, &exit_code] {
    try {
      exit_code = test(*test_files, *capture, *test_defaults);
    } catch (const std::exception& e) {
      std::cerr << "palisade policy test: " << e.what() << '\n';
      exit_code = 2;
    }
  });

  auto learn = std::make_shared<LearnOptions>();
  learn->db = "/var/lib/palisade/events.db";
  auto since = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto* learn_cmd = cmd->add_subcommand(
      "learn", "Write a WorkloadPolicy (audit mode) that allows exactly what a workload did");
  learn_cmd->add_option("--name", learn->name, "metadata.name of the policy")->required();
  learn_cmd->add_option("--db", learn->db, "The agent's event store");
  learn_cmd->add_option("--hosts", learn->hosts, "Selector: host name globs")->required();
  learn_cmd->add_option("--exe", learn->exe_glob,
                        "Only processes whose executable (or an ancestor's) matches this glob");
  learn_cmd->add_option("--since", *since, "Learn from the store since: epoch ms, 15m/2h/7d, ISO");
  learn_cmd->add_option("--duration", learn->duration_seconds,
                        "Observe for this many seconds from now (the agent must be running)");
  learn_cmd->add_option("-o,--output", *output, "Write the policy here (default: stdout)");
  learn_cmd->callback([=, &exit_code] {
    try {
      LearnOptions options = *learn;
      if (!since->empty()) options.since_ms = parse_time(*since);
      if (options.duration_seconds > 0 && !options.since_ms) {
        options.since_ms =
            static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
      }
      LearnResult result = learn_workload_policy(options);
      if (output->empty()) {
        std::cout << result.yaml;
      } else {
        std::ofstream(*output) << result.yaml;
      }
      std::cerr << "learned from " << result.events << " events: " << result.executables
                << " executables, " << result.peers << " network peers, " << result.served_ports
                << " served ports, " << result.writable_paths << " writable paths\n";
      exit_code = 0;
    } catch (const CLI::Error&) {
      throw;
    } catch (const std::exception& e) {
      std::cerr << "palisade policy learn: " << e.what() << '\n';
      exit_code = 2;
    }
  });

  auto markdown = std::make_shared<bool>(false);
  auto* fields_cmd = cmd->add_subcommand("fields", "List the fields conditions can test");
  fields_cmd->add_flag("--markdown", *markdown, "Print docs/policy-fields.md");
  fields_cmd->callback([markdown, &exit_code] { exit_code = list_fields(*markdown); });
}

}  // namespace palisade::cli
