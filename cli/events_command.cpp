// `palisade events`: query the local store by time, pid, executable and class; print a process's
// ancestry and descendants.
#include <ctime>
#include <iostream>
#include <optional>

#include "commands.h"
#include "palisade/ocsf/remediation.h"
#include "palisade/ocsf/schema_doc.h"
#include "palisade/runtime/event_store.h"

namespace palisade::cli {
namespace {

using runtime::EventQuery;
using runtime::EventReader;
using runtime::StoredProcess;

}  // namespace

// Accepts epoch milliseconds, a relative age ("30s", "15m", "2h", "7d") or ISO-8601 UTC
// ("2026-11-25T13:00:00Z").
uint64_t parse_time(const std::string& text) {
  if (text.empty()) throw CLI::ValidationError("time", "empty");
  const uint64_t now_ms = static_cast<uint64_t>(std::time(nullptr)) * 1000;
  const char unit = text.back();
  if (text.find_first_not_of("0123456789") == std::string::npos) return std::stoull(text);
  if (std::string("smhd").find(unit) != std::string::npos &&
      text.find_first_not_of("0123456789") == text.size() - 1) {
    uint64_t n = std::stoull(text.substr(0, text.size() - 1));
    uint64_t seconds = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
    return now_ms - n * seconds * 1000;
  }
  std::tm tm{};
  if (strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr) {
    return static_cast<uint64_t>(timegm(&tm)) * 1000;
  }
  throw CLI::ValidationError(
      "time", "cannot parse '" + text + "': use epoch ms, 30s/15m/2h/7d, or 2026-11-25T13:00:00Z");
}

namespace {

int class_uid(const std::string& name) {
  if (name == "process") return 1007;
  if (name == "file") return 1001;
  if (name == "network") return 4001;
  if (name == "module") return 1002;
  if (name == "kernel") return 1003;
  if (name == "finding") return 2004;
  if (name == "file_remediation") return static_cast<int>(ocsf::RemediationClass::kFile);
  if (name == "process_remediation") return static_cast<int>(ocsf::RemediationClass::kProcess);
  if (name == "network_remediation") return static_cast<int>(ocsf::RemediationClass::kNetwork);
  if (name == "remediation")
    return static_cast<int>(ocsf::RemediationClass::kGeneric);  // palisade hv
  if (name == "vm") return 5001;  // VM events (palisade hv: inventory, lifecycle, ...)
  if (name.find_first_not_of("0123456789") == std::string::npos) return std::stoi(name);
  throw CLI::ValidationError(
      "--class",
      "use process, file, network, module, kernel, finding, file_remediation, "
      "process_remediation, network_remediation, remediation, vm or a class_uid");
}

void print_process(const runtime::StoredProcess& p, size_t depth) {
  std::cout << std::string(depth * 2, ' ') << p.pid << "  " << (p.exe.empty() ? "?" : p.exe);
  if (!p.cmdline.empty()) std::cout << "  [" << p.cmdline << "]";
  std::cout << "  uid=" << p.uid;
  if (p.auid >= 0) std::cout << " login_uid=" << p.auid;
  if (p.exited_ms) std::cout << " (exited)";
  std::cout << '\n';
}

struct EventsFlags {
  std::string db = "/var/lib/palisade/events.db";
  std::string since, until, exe, cls;
  std::optional<uint32_t> pid, tree;
  size_t limit = 1000;
  bool schema = false;
};

int run(const EventsFlags& f) {
  if (f.schema) {
    std::cout << ocsf::render_events_markdown();
    return 0;
  }
  runtime::EventReader reader(f.db);
  if (f.tree) {
    auto chain = reader.ancestry(*f.tree);
    if (chain.empty()) {
      std::cerr << "pid " << *f.tree << " is not in the store\n";
      return 1;
    }
    std::cout << "ancestry (process first, up to init):\n";
    for (const auto& p : chain) print_process(p, 1);
    std::cout << "descendants:\n";
    auto tree = reader.descendants(*f.tree);
    // Indent by depth: walk parents within the result.
    for (const auto& p : tree) {
      size_t depth = 1;
      uint32_t parent = p.ppid;
      for (const auto& q : tree) {
        if (q.pid == parent && q.pid != p.pid && depth < 64) {
          depth++;
          parent = q.ppid;
        }
      }
      print_process(p, p.pid == *f.tree ? 1 : depth);
    }
    return 0;
  }
  runtime::EventQuery q;
  if (!f.since.empty()) q.since_ms = parse_time(f.since);
  if (!f.until.empty()) q.until_ms = parse_time(f.until);
  q.pid = f.pid;
  if (!f.exe.empty()) q.exe = f.exe;
  if (!f.cls.empty()) q.class_uid = class_uid(f.cls);
  q.limit = f.limit;
  for (const auto& json : reader.events(q)) std::cout << json << '\n';
  return 0;
}

}  // namespace

void add_events_command(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<EventsFlags>();
  auto* cmd = app.add_subcommand("events", "Query events recorded in the local store");
  cmd->add_option("--db", flags->db, "Event store path");
  cmd->add_option("--since", flags->since, "From: epoch ms, 15m/2h/7d ago, or ISO-8601 UTC");
  cmd->add_option("--until", flags->until, "Until: same formats as --since");
  cmd->add_option("--pid", flags->pid, "Only events of this process");
  cmd->add_option("--exe", flags->exe, "Only events whose executable matches this glob");
  cmd->add_option("--class", flags->cls,
                  "process, file, network, module, kernel, finding, vm, remediation, "
                  "*_remediation or a class_uid");
  cmd->add_option("--limit", flags->limit, "At most this many events (oldest first)");
  cmd->add_option("--tree", flags->tree, "Print this process's ancestry and descendants");
  cmd->add_flag("--schema", flags->schema, "Print the event reference (docs/events.md)");
  cmd->callback([flags, &exit_code] {
    try {
      exit_code = run(*flags);
    } catch (const CLI::Error&) {
      throw;
    } catch (const std::exception& e) {
      std::cerr << "palisade events: " << e.what() << '\n';
      exit_code = 1;
    }
  });
}

}  // namespace palisade::cli
