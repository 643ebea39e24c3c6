// The declared OCSF mapping (core/ocsf/src/mapping.cpp) against facts generated from the OCSF
// 1.3.0 schema (tests/data/ocsf-1.3.0-facts.json, scripts/gen-ocsf-facts.py), and the profiles
// the formatter derives against the attributes its records actually carry.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "palisade/ocsf/formatter.h"
#include "palisade/ocsf/mapping.h"

namespace palisade::ocsf {
namespace {

using nlohmann::json;

const std::string kSource = PALISADE_SOURCE_DIR;

const json& facts() {
  static const json loaded = [] {
    std::ifstream in(kSource + "/tests/data/ocsf-1.3.0-facts.json");
    return json::parse(in);
  }();
  return loaded;
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::stringstream in{std::string(text)};
  std::string item;
  while (std::getline(in, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    out.push_back(item);
  }
  return out;
}

// Whether any process object of the record (actor.process, process, parent_process, evidences)
// carries `attribute`.
bool process_objects_carry(const json& j, const std::string& attribute) {
  if (j.is_array()) {
    for (const json& item : j) {
      if (process_objects_carry(item, attribute)) return true;
    }
    return false;
  }
  if (!j.is_object()) return false;
  for (const auto& [key, value] : j.items()) {
    if (key == "unmapped") continue;  // palisade's own, and the trigger event inside a finding
    const bool process = key == "process" || key == "parent_process";
    if (process && value.is_object() && value.contains(attribute)) return true;
    if (process_objects_carry(value, attribute)) return true;
  }
  return false;
}

bool carries(const json& record, const ProfileDeclaration& p) {
  for (const std::string& attribute : split_list(p.attributes)) {
    if (p.object.empty() ? record.contains(attribute) : process_objects_carry(record, attribute)) {
      return true;
    }
  }
  return false;
}

TEST(OcsfMapping, EveryKindHasADeclaredClassAndActivity) {
  for (const auto& info : event_kinds()) {
    if (info.kind == EventKind::kUnknown) continue;
    EXPECT_NE(mapping_of(info.kind), nullptr) << info.name;
  }
  EXPECT_EQ(mapping_of(EventKind::kUnknown), nullptr);
}

TEST(OcsfMapping, ClassesAndActivitiesAreTheSchemas) {
  const json& classes = facts()["classes"];
  for (const KindMapping& m : kind_mappings()) {
    const std::string uid = std::to_string(m.ocsf_class->class_uid);
    ASSERT_TRUE(classes.contains(uid)) << kind_name(m.kind) << ": no class " << uid;
    const json& c = classes[uid];
    EXPECT_EQ(c["caption"], m.ocsf_class->class_name) << uid;
    EXPECT_EQ(c["category_uid"], m.ocsf_class->category_uid) << uid;
    EXPECT_EQ(c["category"], m.ocsf_class->category_name) << uid;
    if (m.activity_id == 99) continue;  // Other: the name is palisade's
    const std::string activity = std::to_string(m.activity_id);
    ASSERT_TRUE(c["activities"].contains(activity)) << kind_name(m.kind) << ": " << activity;
    EXPECT_EQ(c["activities"][activity], m.activity_name) << kind_name(m.kind);
  }
  // The outcomes of a connect (the declaration's note).
  const json& network = classes["4001"]["activities"];
  EXPECT_EQ(network["4"], "Fail");
  EXPECT_EQ(network["5"], "Refuse");
}

TEST(OcsfMapping, ClassifyFollowsTheDeclaration) {
  for (const KindMapping& m : kind_mappings()) {
    Event e;
    e.kind = m.kind;
    const Classification c = classify(e);
    EXPECT_EQ(c.class_uid, m.ocsf_class->class_uid) << kind_name(m.kind);
    EXPECT_EQ(c.activity_id, m.activity_id) << kind_name(m.kind);
  }
  Event refused;
  refused.kind = EventKind::kNetConnect;
  refused.result = -111;  // ECONNREFUSED
  EXPECT_EQ(classify(refused).activity_id, 5);
  refused.result = -113;  // EHOSTUNREACH
  EXPECT_EQ(classify(refused).activity_id, 4);
  refused.result = -115;  // EINPROGRESS: a non-blocking connect under way
  EXPECT_EQ(classify(refused).activity_id, 1);
}

TEST(OcsfMapping, ProfilesAndTheirAttributesAreTheSchemas) {
  const json& profiles = facts()["profiles"];
  for (const ProfileDeclaration& p : profile_declarations()) {
    const std::string name(p.name);
    ASSERT_TRUE(profiles.contains(name)) << name;
    const std::set<std::string> known = profiles[name].get<std::set<std::string>>();
    for (const std::string& attribute : split_list(p.attributes)) {
      EXPECT_TRUE(known.count(attribute) != 0) << name << " adds no attribute " << attribute;
    }
  }
}

// Over every record of the golden capture's output: a profile is listed exactly when the record
// carries one of its attributes, and only in classes that take the profile.
TEST(OcsfMapping, ListedProfilesAreThoseWhoseAttributesTheRecordCarries) {
  std::ifstream in(kSource + "/tests/golden/workload.ocsf.jsonl");
  std::string line;
  size_t records = 0;
  std::set<std::string> seen;
  while (std::getline(in, line)) {
    const json record = json::parse(line);
    if (!record["metadata"].contains("profiles")) continue;  // VM inventory, agent status
    const auto listed = record["metadata"]["profiles"].get<std::set<std::string>>();
    const json& supported = facts()["classes"][std::to_string(record["class_uid"].get<int>())];
    for (const ProfileDeclaration& p : profile_declarations()) {
      const std::string name(p.name);
      EXPECT_EQ(listed.count(name) != 0, carries(record, p))
          << name << " in record " << records << ": " << line.substr(0, 300);
      if (listed.count(name) != 0) seen.insert(name);
      if (listed.count(name) != 0 && p.object.empty() && name != "container") {
        EXPECT_NE(std::find(supported["profiles"].begin(), supported["profiles"].end(), name),
                  supported["profiles"].end())
            << "class " << record["class_uid"] << " does not take the " << name << " profile";
      }
    }
    ++records;
  }
  EXPECT_GT(records, 100u);
  EXPECT_TRUE(seen.count("host") != 0 && seen.count("linux/linux_users") != 0);
}

}  // namespace
}  // namespace palisade::ocsf
