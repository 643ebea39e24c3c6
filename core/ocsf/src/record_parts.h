// Internal to the formatter: the pieces every OCSF record palisade writes is built from (process,
// user and file objects, the host device, the container, Kubernetes identity, metadata). The
// object writer and the small helpers are defined here so that each record's writer inlines them.
#pragma once

#include <charconv>
#include <string>
#include <string_view>

#include "palisade/base/path_text.h"
#include "palisade/model/event.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/ocsf/json_writer.h"
#include "palisade/ocsf/mapping.h"

namespace palisade::ocsf {

inline std::string_view decimal(char (&buf)[16], uint32_t value) {
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string_view(buf, static_cast<size_t>(end - buf));
}

inline void write_file(JsonWriter& w, std::string_view path, int type_id) {
  w.begin_object();
  w.field("path", path).field("name", base::path_basename(path));
  auto parent = base::path_dirname(path);
  if (!parent.empty()) w.field("parent_folder", parent);
  w.field("type_id", type_id).field("type", type_id == 2 ? "Folder" : "Regular File");
  w.end_object();
}

inline void write_endpoint(JsonWriter& w, const NetEndpoint& ep, uint16_t family) {
  w.begin_object().field("ip", ep.to_string(family)).field("port", unsigned{ep.port}).end_object();
}

struct ObjectWriter {
  JsonWriter& w;
  Formatter& formatter;
  const HostInfo& host;
  std::string_view (*lookup)(Formatter&, uint32_t);
  ProfileSet* used = nullptr;  // the profiles whose attributes were written (null: not tracked)

  void uses(Profile profile) {
    if (used != nullptr) used->add(profile);
  }

  uint64_t to_wall_ms(uint64_t boot_ns) const {
    return static_cast<uint64_t>(static_cast<int64_t>(boot_ns) + host.boot_wall_offset_ns) /
           1'000'000ULL;
  }

  void user(uint32_t uid) {
    char digits[16];
    w.begin_object().field("uid", decimal(digits, uid));
    auto name = lookup(formatter, uid);
    if (!name.empty()) w.field("name", name);
    w.field("type_id", uid == 0 ? 2 : 1).field("type", uid == 0 ? "Admin" : "User");
    w.end_object();
  }

  // Writes the view's members, rendered once per view and then copied.
  void process_core(const ProcessView& p) {
    if (p.json_members.empty()) {
      {
        JsonWriter cache(p.json_members);
        ObjectWriter{cache, formatter, host, lookup}.render_core(p);
      }
      p.json_members.shrink_to_fit();  // the writer works with generous room; keep what is used
    }
    w.raw(p.json_members);
    if (p.auid != TaskIdentity::kNoLoginUid) uses(Profile::kLinuxUsers);  // render_core wrote it
  }

  std::string_view quoted_exe(const ProcessView& p) {
    if (p.json_exe.empty()) {
      append_json_string(p.json_exe, p.exe.empty() ? std::string_view("?") : p.exe);
      p.json_exe.shrink_to_fit();
    }
    return p.json_exe;
  }

  void render_core(const ProcessView& p) {
    w.field("pid", p.pid);
    char uid[48];
    auto [end, ec] = std::to_chars(uid, uid + 20, p.pid);
    *end++ = '-';
    end = std::to_chars(end, uid + sizeof(uid), p.start_ns).ptr;
    w.field("uid", std::string_view(uid, static_cast<size_t>(end - uid)));
    auto name = p.exe.empty() ? std::string_view(p.comm) : base::path_basename(p.exe);
    w.field("name", name);
    if (!p.cmdline.empty()) w.field("cmd_line", p.cmdline);
    if (!p.exe.empty()) {
      w.key("file");
      write_file(w, p.exe, 1);
    }
    if (p.start_ns != 0) w.field("created_time", to_wall_ms(p.start_ns));
    w.key("user");
    user(p.uid);
    if (p.auid != TaskIdentity::kNoLoginUid) w.field("auid", p.auid);
  }

  // The acting process: identity from the event, details and ancestry from the process table.
  void process(const Event& e, const ProcessView& p, bool with_lineage) {
    w.begin_object();
    process_core(p);
    if (p.pid == e.task.tgid) {
      w.field("tid", e.task.pid).field("euid", e.task.euid).field("egid", e.task.egid);
      uses(Profile::kLinuxUsers);
    }
    if (e.parent && with_lineage) {
      w.key("parent_process").begin_object();
      process_core(*e.parent);
      w.end_object();
    }
    if (with_lineage) {
      w.key("lineage").begin_array();
      for (const auto& a : e.lineage) w.raw(quoted_exe(*a));
      w.end_array();
    }
    w.end_object();
  }

  void actor(const Event& e) {
    uses(Profile::kHost);
    w.key("actor").begin_object();
    w.key("process");
    // For a fork, the event's process view is the child; the actor is the parent.
    if (e.kind == EventKind::kProcessFork || e.kind == EventKind::kProcessExec) {
      if (e.parent) {
        w.begin_object();
        process_core(*e.parent);
        w.end_object();
      } else {
        w.begin_object().field("pid", e.task.ppid).end_object();
      }
    } else if (e.process) {
      process(e, *e.process, true);
    } else {
      w.begin_object().field("pid", e.task.tgid).field("name", e.task.comm).end_object();
    }
    w.key("user");
    user(e.task.auid != TaskIdentity::kNoLoginUid ? e.task.auid : e.task.uid);
    w.end_object();
  }
};

template <typename WriteBody>
ProfileSet Formatter::render_body(WriteBody&& write_body) {
  ProfileSet used;
  body_.clear();
  {
    JsonWriter w(body_);
    ObjectWriter ow{w, *this, host_, [](Formatter& f, uint32_t uid) { return f.user_name(uid); },
                    &used};
    w.begin_object();
    write_body(w, ow, used);
  }
  return used;
}

// run.cpu.class.seq: unique across the agent's runs on a host; findings link to events by it.
std::string event_uid_text(const std::string& run_id, const Event& e);
void write_event_uid(JsonWriter& w, const std::string& run_id, const Event& e);
// The host as an OCSF device under `key` ("device", or "observer" when the device is a VM).
void write_host(JsonWriter& w, const HostInfo& host, std::string_view key, bool with_os);
// OCSF's container object (the container profile).
void write_container(JsonWriter& w, const ContainerView& c);
// unmapped.palisade.kubernetes (and container_unresolved): identity OCSF has no object for.
void write_kubernetes(JsonWriter& w, const Event& e);
// Opens metadata with the OCSF version and the product; the caller adds the rest and closes it.
void begin_metadata(JsonWriter& w);
// metadata.profiles: the profiles used, in the declaration's order.
void write_profiles(JsonWriter& w, const ProfileSet& used);

}  // namespace palisade::ocsf
