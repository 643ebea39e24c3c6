// Detection Findings (OCSF 2004): a rule's match, linked to the event that triggered it.
#include <cctype>

#include "record_parts.h"
#include "vm_objects.h"

namespace palisade::ocsf {
namespace {

// Everything of a finding after metadata.
void write_finding_body(JsonWriter& w, ObjectWriter& ow, const HostInfo& host,
                        const FindingView& finding, const Event& e, std::string_view trigger_json,
                        std::string_view policy_digest, ProfileSet& used) {
  w.key("finding_info").begin_object();
  const std::string uid = std::string(finding.rule) + ":" + event_uid_text(host.run_id, e);
  w.field("uid", uid).field("title", finding.title);
  w.field("desc", finding.message);
  w.key("analytic").begin_object();
  w.field("name", finding.rule)
      .field("uid", finding.rule)
      .field("type_id", 1)
      .field("type", "Rule");
  w.end_object();
  w.key("attacks").begin_array();
  for (const auto& tag : finding.tags) {
    if (tag.size() < 2 || tag[0] != 'T' || !std::isdigit(static_cast<unsigned char>(tag[1])))
      continue;
    w.begin_object().key("technique").begin_object().field("uid", tag).end_object().end_object();
  }
  w.end_array();
  w.key("types").begin_array();
  for (const auto& tag : finding.tags) w.value(tag);
  w.end_array();
  w.key("related_events").begin_array().begin_object();
  w.key("uid");
  write_event_uid(w, host.run_id, e);
  const Classification c = classify(e);
  w.field("type_uid", c.class_uid * 100 + c.activity_id);
  w.end_object().end_array();
  w.end_object();

  if (e.vm) {
    // A VM's finding is about the VM; the hypervisor host that saw it is the observer.
    w.key("device");
    write_vm_device(w, *e.vm);
    write_host(w, host, "observer", false);
    w.key("evidences").begin_array().begin_object().key("device");
    write_vm_device(w, *e.vm);
    w.end_object().end_array();
  } else {
    write_host(w, host, "device", false);
    used.add(Profile::kHost);
    ow.actor(e);
    if (e.container) {
      write_container(w, *e.container);
      used.add(Profile::kContainer);
    }
    w.key("evidences").begin_array().begin_object().key("process");
    if (e.process) {
      ow.process(e, *e.process, true);
    } else {
      w.begin_object().field("pid", e.task.tgid).end_object();
    }
    w.end_object().end_array();
  }

  w.key("unmapped").begin_object().key("palisade").begin_object();
  w.field("rule", finding.rule).field("rule_source", finding.rule_source);
  w.field("response", finding.response);
  w.field("count", finding.count).field("policy_digest", policy_digest);
  write_kubernetes(w, e);
  if (e.vm) write_vm_details(w, *e.vm);
  if (!finding.verdict.empty()) w.field("verdict", finding.verdict);
  if (!trigger_json.empty()) w.key("trigger").raw(trigger_json);
  w.end_object().end_object();
  w.end_object();
}

}  // namespace

void Formatter::format_finding(const FindingView& finding, const Event& e,
                               std::string_view trigger_json, std::string_view policy_digest,
                               std::string& out) {
  // As for events: the body first, so that metadata.profiles can list what it carries.
  const ProfileSet used = render_body([&](JsonWriter& w, ObjectWriter& ow, ProfileSet& profiles) {
    write_finding_body(w, ow, host_, finding, e, trigger_json, policy_digest, profiles);
  });
  JsonWriter w(out);
  w.begin_object();
  w.field("class_uid", 2004).field("class_name", "Detection Finding");
  w.field("category_uid", 2).field("category_name", "Findings");
  w.field("activity_id", 1).field("activity_name", "Create").field("type_uid", 200401);
  w.field("severity_id", finding.severity_id).field("severity", finding.severity);
  w.field("time", e.wall_ns / 1'000'000ULL);
  w.field("message", finding.message);
  w.field("status_id", 1).field("status", "New");

  begin_metadata(w);
  write_profiles(w, used);
  w.end_object();

  append_body(w);
}

}  // namespace palisade::ocsf
