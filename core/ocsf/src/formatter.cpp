// The formatter's state (host, user names, the body buffer) and the records of VMs and of the
// producer itself. Events: event_record.cpp; findings: finding_record.cpp; the objects they
// share: record_parts.h.
#include "palisade/ocsf/formatter.h"

#include <pwd.h>

#include "record_parts.h"
#include "vm_objects.h"

namespace palisade::ocsf {
namespace {
constexpr size_t kMaxUserNames = 4096;
}  // namespace

Formatter::Formatter(HostInfo host) : host_(std::move(host)) {}

void Formatter::append_body(JsonWriter& w) const {
  w.raw(std::string_view(body_).substr(1, body_.size() - 2));
  w.end_object();
}

std::string_view Formatter::user_name(uint32_t uid) {
  auto it = user_names_.find(uid);
  if (it != user_names_.end()) return it->second;
  if (user_names_.size() >= kMaxUserNames) user_names_.clear();
  passwd pwd{};
  passwd* found = nullptr;
  char buf[1024];
  std::string name;
  if (getpwuid_r(uid, &pwd, buf, sizeof(buf), &found) == 0 && found != nullptr) name = pwd.pw_name;
  return user_names_.emplace(uid, std::move(name)).first->second;
}

void Formatter::format_vm(const Event& e, std::string& out) {
  JsonWriter w(out);
  const Classification c = classify(e);
  const bool failed = e.kind == EventKind::kVmInspection && e.vm_activity.action == "failed";
  const bool lost = e.kind == EventKind::kVmHost && e.vm_activity.action == "lost";
  const bool crashed = e.kind == EventKind::kVmLifecycle && e.vm_activity.action == "crashed";
  w.begin_object();
  w.field("class_uid", c.class_uid).field("class_name", c.class_name);
  w.field("category_uid", c.category_uid).field("category_name", c.category_name);
  w.field("activity_id", c.activity_id).field("activity_name", c.activity_name);
  w.field("type_uid", c.class_uid * 100 + c.activity_id);
  if (lost || crashed || failed) {
    w.field("severity_id", 3).field("severity", "Medium");
  } else {
    w.field("severity_id", 1).field("severity", "Informational");
  }
  w.field("time", e.wall_ns / 1'000'000ULL);
  w.field("status_id", failed || lost ? 2 : 1)
      .field("status", failed || lost ? "Failure" : "Success");
  if (!e.vm_activity.message.empty()) w.field("message", e.vm_activity.message);
  begin_metadata(w);
  w.field("sequence", e.seq);
  w.key("uid");
  write_event_uid(w, host_.run_id, e);
  w.end_object();
  if (e.vm) {
    w.key("device");
    write_vm_device(w, *e.vm);
  }
  write_host(w, host_, "observer", false);
  w.key("unmapped").begin_object().key("palisade").begin_object();
  w.field("event", kind_name(e.kind));
  write_vm_activity(w, e);
  if (e.vm) write_vm_details(w, *e.vm);
  w.end_object().end_object();
  w.end_object();
}

void Formatter::format_agent_event(std::string_view message, uint64_t wall_ns,
                                   std::string_view details_json, std::string& out) {
  JsonWriter w(out);
  w.begin_object();
  w.field("class_uid", 0).field("class_name", "Base Event");
  w.field("category_uid", 0).field("category_name", "Uncategorized");
  w.field("activity_id", 99).field("activity_name", "Other").field("type_uid", 99);
  w.field("severity_id", 1).field("severity", "Informational");
  w.field("time", wall_ns / 1'000'000ULL).field("message", message);
  begin_metadata(w);
  w.end_object();
  w.key("device").begin_object().field("hostname", host_.hostname).field("type_id", 1);
  w.end_object();
  w.key("unmapped").begin_object().key("palisade").raw(details_json);
  w.end_object();
  w.end_object();
}

std::string Formatter::event_uid(const Event& event) const {
  return event_uid_text(host_.run_id, event);
}

}  // namespace palisade::ocsf
