#include "palisade/ocsf/remediation.h"

#include <pwd.h>
#include <unistd.h>

#include <fstream>

#include "palisade/base/clock.h"
#include "palisade/ocsf/formatter.h"

namespace palisade::ocsf {
namespace {

const char* remediation_class_name(RemediationClass cls) {
  switch (cls) {
    case RemediationClass::kFile:
      return "File Remediation Activity";
    case RemediationClass::kProcess:
      return "Process Remediation Activity";
    case RemediationClass::kNetwork:
      return "Network Remediation Activity";
    case RemediationClass::kGeneric:
      break;
  }
  return "Remediation Activity";
}

const char* remediation_activity_name(RemediationActivity activity) {
  switch (activity) {
    case RemediationActivity::kIsolate:
      return "Isolate";
    case RemediationActivity::kEvict:
      return "Evict";
    case RemediationActivity::kRestore:
      return "Restore";
    case RemediationActivity::kOther:
      break;
  }
  return "Other";
}

}  // namespace

nlohmann::json requester(const std::string& tool, const std::string& reason) {
  const uid_t uid = getuid();
  std::string name = std::to_string(uid);
  if (const passwd* pw = getpwuid(uid)) name = pw->pw_name;
  int64_t login_uid = -1;
  std::ifstream("/proc/self/loginuid") >> login_uid;
  if (login_uid == 4294967295LL) login_uid = -1;
  return {{"uid", uid},      {"name", name}, {"login_uid", login_uid},
          {"pid", getpid()}, {"tool", tool}, {"reason", reason}};
}

nlohmann::json remediation_event(RemediationClass cls, RemediationActivity activity, bool ok,
                                 const std::string& detail, const nlohmann::json& who) {
  const auto host = HostInfo::detect();
  const int class_uid = static_cast<int>(cls);
  const int activity_id = static_cast<int>(activity);
  return {
      {"class_uid", class_uid},
      {"class_name", remediation_class_name(cls)},
      {"category_uid", 7},
      {"category_name", "Remediation"},
      {"activity_id", activity_id},
      {"activity_name", remediation_activity_name(activity)},
      {"type_uid", class_uid * 100 + activity_id},
      {"severity_id", 1},
      {"time", base::wall_now_ms()},
      {"status_id", ok ? 1 : 2},
      {"status", ok ? "Success" : "Failure"},
      {"status_detail", detail},
      {"metadata",
       {{"version", kVersion}, {"product", {{"name", "palisade"}, {"vendor_name", "palisade"}}}}},
      {"device", {{"hostname", host.hostname}, {"type_id", 1}, {"type", "Server"}}},
      {"actor",
       {{"user", {{"uid", std::to_string(who["uid"].get<uid_t>())}, {"name", who["name"]}}}}},
      {"unmapped", {{"palisade", {{"requested_by", who}}}}}};
}

}  // namespace palisade::ocsf
