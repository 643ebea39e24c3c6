#include "inspect/inventory_json.h"

#include <string>

namespace palisade::hypervisor {
namespace inspect {
namespace {

constexpr int kSchemaVersion = 1;

fim::FileType file_type_from(const std::string& text) {
  for (const fim::FileType t : {fim::FileType::kFile, fim::FileType::kDirectory,
                                fim::FileType::kSymlink, fim::FileType::kOther}) {
    if (text == fim::to_string(t)) return t;
  }
  throw std::invalid_argument("unknown file type \"" + text + "\"");
}

template <typename T>
nlohmann::json array_of(const std::vector<T>& items) {
  nlohmann::json out = nlohmann::json::array();
  for (const T& item : items) out.push_back(json_of(item));
  return out;
}

template <typename T, typename Read>
std::vector<T> items_of(const nlohmann::json& j, const char* key, Read read) {
  std::vector<T> out;
  for (const nlohmann::json& item : j.at(key)) out.push_back(read(item));
  return out;
}

}  // namespace

nlohmann::json json_of(const GuestUser& u) {
  return {{"name", u.name}, {"uid", u.uid}, {"gid", u.gid}, {"home", u.home}, {"shell", u.shell}};
}

nlohmann::json json_of(const GuestGroup& g) {
  return {{"name", g.name}, {"gid", g.gid}, {"members", g.members}};
}

nlohmann::json json_of(const SshKey& k) {
  return {{"user", k.user},       {"file", k.file},
          {"type", k.type},       {"fingerprint", k.fingerprint},
          {"comment", k.comment}, {"options", k.options}};
}

nlohmann::json json_of(const CronEntry& e) {
  return {{"file", e.file}, {"user", e.user}, {"schedule", e.schedule}, {"command", e.command}};
}

nlohmann::json json_of(const SystemdUnit& u) {
  return {{"path", u.path},
          {"sha256", u.sha256},
          {"link_target", u.link_target},
          {"enabled", u.enabled},
          {"wanted_by", u.wanted_by}};
}

nlohmann::json json_of(const Package& p) {
  return {{"name", p.name}, {"version", p.version}, {"arch", p.arch}};
}

nlohmann::json json_of(const fim::FileRecord& r) {
  return nlohmann::json::parse(fim::to_json(r));
}

fim::FileRecord file_record_from_json(const nlohmann::json& j) {
  fim::FileRecord r;
  r.path = j.at("path").get<std::string>();
  r.type = file_type_from(j.at("type").get<std::string>());
  r.mode = static_cast<uint32_t>(std::stoul(j.at("mode").get<std::string>(), nullptr, 8));
  r.uid = j.at("uid").get<uint32_t>();
  r.gid = j.at("gid").get<uint32_t>();
  r.size = j.at("size").get<uint64_t>();
  r.mtime_ns = j.at("mtime_ns").get<int64_t>();
  r.ctime_ns = j.at("ctime_ns").get<int64_t>();
  r.inode = j.at("inode").get<uint64_t>();
  r.sha256 = j.value("sha256", "");
  r.fast_hash = j.value("xxh3", "");
  r.is_protected = j.value("protected", false);
  r.link_target = j.value("target", "");
  return r;
}

}  // namespace inspect

using inspect::json_of;

nlohmann::json to_json(const GuestInventory& inv) {
  return {{"schema", inspect::kSchemaVersion},
          {"time_ms", inv.time_ms},
          {"duration_ms", inv.duration_ms},
          {"root", inv.root},
          {"os",
           {{"type", inv.os_type},
            {"distro", inv.distro},
            {"product_name", inv.product_name},
            {"hostname", inv.hostname},
            {"major_version", inv.major_version},
            {"minor_version", inv.minor_version}}},
          {"users", inspect::array_of(inv.users)},
          {"groups", inspect::array_of(inv.groups)},
          {"sudoers", inv.sudoers},
          {"authorized_keys", inspect::array_of(inv.authorized_keys)},
          {"cron", inspect::array_of(inv.cron)},
          {"units", inspect::array_of(inv.units)},
          {"setid_files", inspect::array_of(inv.setid_files)},
          {"packages", inspect::array_of(inv.packages)},
          {"files", inspect::array_of(inv.files)},
          {"incomplete_roots", inv.incomplete_roots},
          {"warnings", inv.warnings}};
}

GuestInventory inventory_from_json(const nlohmann::json& j) {
  try {
    if (j.at("schema").get<int>() != inspect::kSchemaVersion) {
      throw std::invalid_argument("schema " + j.at("schema").dump() + " is not " +
                                  std::to_string(inspect::kSchemaVersion));
    }
    GuestInventory inv;
    inv.time_ms = j.at("time_ms").get<int64_t>();
    inv.duration_ms = j.at("duration_ms").get<int64_t>();
    inv.root = j.at("root").get<std::string>();
    const nlohmann::json& os = j.at("os");
    inv.os_type = os.at("type").get<std::string>();
    inv.distro = os.at("distro").get<std::string>();
    inv.product_name = os.at("product_name").get<std::string>();
    inv.hostname = os.at("hostname").get<std::string>();
    inv.major_version = os.at("major_version").get<int>();
    inv.minor_version = os.at("minor_version").get<int>();
    inv.users = inspect::items_of<GuestUser>(j, "users", [](const nlohmann::json& u) {
      return GuestUser{u.at("name"), u.at("uid"), u.at("gid"), u.at("home"), u.at("shell")};
    });
    inv.groups = inspect::items_of<GuestGroup>(j, "groups", [](const nlohmann::json& g) {
      return GuestGroup{g.at("name"), g.at("gid"), g.at("members")};
    });
    inv.sudoers = j.at("sudoers").get<std::vector<std::string>>();
    inv.authorized_keys =
        inspect::items_of<SshKey>(j, "authorized_keys", [](const nlohmann::json& k) {
          return SshKey{k.at("user"),        k.at("file"),    k.at("type"),
                        k.at("fingerprint"), k.at("comment"), k.at("options")};
        });
    inv.cron = inspect::items_of<CronEntry>(j, "cron", [](const nlohmann::json& e) {
      return CronEntry{e.at("file"), e.at("user"), e.at("schedule"), e.at("command")};
    });
    inv.units = inspect::items_of<SystemdUnit>(j, "units", [](const nlohmann::json& u) {
      return SystemdUnit{u.at("path"), u.at("sha256"), u.at("link_target"), u.at("enabled"),
                         u.at("wanted_by")};
    });
    inv.setid_files =
        inspect::items_of<fim::FileRecord>(j, "setid_files", inspect::file_record_from_json);
    inv.packages = inspect::items_of<Package>(j, "packages", [](const nlohmann::json& p) {
      return Package{p.at("name"), p.at("version"), p.at("arch")};
    });
    inv.files = inspect::items_of<fim::FileRecord>(j, "files", inspect::file_record_from_json);
    inv.incomplete_roots = j.at("incomplete_roots").get<std::vector<std::string>>();
    inv.warnings = j.at("warnings").get<std::vector<std::string>>();
    return inv;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("guest inventory: ") + e.what());
  } catch (const std::logic_error& e) {
    throw std::invalid_argument(std::string("guest inventory: ") + e.what());
  }
}

nlohmann::json to_json(const GuestChange& change) {
  return {{"kind", change.kind},     {"subject", change.subject}, {"path", change.path},
          {"detail", change.detail}, {"before", change.before},   {"after", change.after}};
}

}  // namespace palisade::hypervisor
