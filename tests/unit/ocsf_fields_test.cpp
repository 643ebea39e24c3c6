// The declared attributes of palisade's OCSF records (core/ocsf/src/fields.cpp) against what the
// formatter writes: over the golden output (every host class) and VM events of every kind, each
// attribute a record carries is declared for its kind, and each attribute declared as always
// written is there. The reader is driven by the same declaration (golden_replay_test.cpp pins
// what it reads back).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "palisade/ocsf/fields.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/ocsf/reader.h"

namespace palisade::ocsf {
namespace {

using nlohmann::json;

// Every leaf of the record, as a dotted path with "[]" for array elements.
void leaf_paths(const json& value, const std::string& at, std::vector<std::string>& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, member] : value.items()) {
      leaf_paths(member, at.empty() ? key : at + "." + key, out);
    }
  } else if (value.is_array() && !value.empty()) {
    for (const auto& element : value) leaf_paths(element, at + "[]", out);
  } else {
    out.push_back(at);
  }
}

bool covers(std::string_view declared, std::string_view path) {
  if (path.substr(0, declared.size()) != declared) return false;
  return path.size() == declared.size() || path[declared.size()] == '.' ||
         path[declared.size()] == '[';
}

EventKind kind_of(const json& record) {
  const std::string name = record["unmapped"]["palisade"]["event"];
  for (const auto& info : event_kinds()) {
    if (info.name == name) return info.kind;
  }
  return EventKind::kUnknown;
}

// Returns what is wrong with the record, "" when it agrees with the declaration.
std::string check_against_declaration(const json& record) {
  const EventKind kind = kind_of(record);
  if (kind == EventKind::kUnknown) return "no kind";
  std::string problems;
  std::vector<std::string> paths;
  leaf_paths(record, "", paths);
  for (const std::string& path : paths) {
    bool declared = false;
    for (const FieldDeclaration& f : field_declarations()) {
      if (f.kinds.has(kind) && covers(f.path, path)) declared = true;
    }
    if (!declared) problems += " undeclared " + path + ";";
  }
  for (const FieldDeclaration& f : field_declarations()) {
    if (f.always && f.kinds.has(kind) && find_field(record, f.path) == nullptr) {
      problems += " missing " + std::string(f.path) + ";";
    }
  }
  return problems;
}

// Found by tests/fuzz/ocsf_reader_fuzzer: a malformed field escaped the reader as
// std::invalid_argument (from stoull) or a JSON type error, not as the documented runtime_error.
TEST(OcsfFields, AMalformedRecordIsARuntimeErrorOrReadWithDefaults) {
  json record = json::parse(R"({"class_uid":1007,"activity_id":1,
    "unmapped":{"palisade":{"event":"exec"}},
    "process":{"pid":7,"uid":"x-notanumber","user":{"uid":"root"}}})");
  std::optional<Event> event;
  EXPECT_NO_THROW(event = event_from_ocsf(record));
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->task.start_ns, 0U);
  record["process"]["pid"] = "seven";
  EXPECT_THROW(event_from_ocsf(record), std::runtime_error);
}

TEST(OcsfFields, TheGoldenRecordsCarryExactlyTheDeclaredAttributes) {
  std::ifstream in(std::string(PALISADE_SOURCE_DIR) + "/tests/golden/workload.ocsf.jsonl");
  std::string line;
  size_t events = 0;
  while (std::getline(in, line)) {
    const json record = json::parse(line);
    if (record["class_uid"] == 2004) continue;  // findings are not events
    events++;
    EXPECT_EQ(check_against_declaration(record), "") << line;
  }
  EXPECT_GT(events, 400U);
}

Event vm_event(EventKind kind, std::string action) {
  auto vm = std::make_shared<VmView>();
  vm->host = "qemu:///system";
  vm->hypervisor = "QEMU";
  vm->name = "web-1";
  vm->uuid = "6f1c2a3e-0000-4000-8000-000000000001";
  vm->state = "running";
  vm->vcpus = 2;
  vm->memory_kib = 1 << 20;
  vm->disks.push_back(VmDisk{"vda", "disk", "file", "/var/lib/vm/web-1.qcow2", "qcow2", false});
  vm->nics.push_back(VmNic{"52:54:00:00:00:01", "network", "default", "vnet0", "virtio", true});
  vm->labels.emplace_back("tier", "web");
  Event e;
  e.kind = kind;
  e.vm = std::move(vm);
  e.vm_activity.action = std::move(action);
  e.vm_activity.detail = "detail";
  e.vm_activity.message = "what happened";
  return e;
}

TEST(OcsfFields, VmRecordsOfEveryKindCarryExactlyTheDeclaredAttributes) {
  HostInfo host;
  host.hostname = "hv-node";
  Formatter formatter(host);
  std::vector<Event> events = {
      vm_event(EventKind::kVmInventory, "present"),   vm_event(EventKind::kVmLifecycle, "crashed"),
      vm_event(EventKind::kVmHost, "lost"),           vm_event(EventKind::kVmStats, "sample"),
      vm_event(EventKind::kVmGuestChange, "changed"), vm_event(EventKind::kVmInspection, "failed")};
  events[3].vm_activity.cpu_percent = 50;
  events[4].vm_activity.before_json = R"({"path":"/etc/passwd","sha256":"a"})";
  events[4].vm_activity.after_json = R"({"path":"/etc/passwd","sha256":"b"})";
  events[5].vm_activity.after_json = R"({"files":3})";
  for (const Event& e : events) {
    std::string out;
    formatter.format(e, out);
    EXPECT_EQ(check_against_declaration(json::parse(out)), "") << out;
  }
}

TEST(OcsfFields, EveryKindHasItsEnvelopeAndTheReaderReadsWhatIsDeclared) {
  for (const auto& info : event_kinds()) {
    size_t declared = 0;
    for (const FieldDeclaration& f : field_declarations()) {
      if (f.kinds.has(info.kind)) declared++;
    }
    EXPECT_GE(declared, 15U) << info.name;
  }
  EXPECT_EQ(describe_kinds(host_kinds()), "every host event");
  EXPECT_EQ(describe_kinds(KindSet{EventKind::kFileRename}), "`rename`");
  const json record = json::parse(R"({"a": {"b": {"c": 3}}})");
  ASSERT_NE(find_field(record, "a.b.c"), nullptr);
  EXPECT_EQ(*find_field(record, "a.b.c"), 3);
  EXPECT_EQ(find_field(record, "a.x.c"), nullptr);
}

}  // namespace
}  // namespace palisade::ocsf
