#include "palisade/agent/respond.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "palisade/base/clock.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/file_hash_cache.h"
#include "palisade/ocsf/formatter.h"

namespace palisade::agent {
namespace fs = std::filesystem;

namespace {

// Parent of every live process, from /proc/<pid>/stat (the comm field may hold spaces and ')').
std::map<uint32_t, uint32_t> parents() {
  std::map<uint32_t, uint32_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    uint32_t ppid = 0;
    if (rest >> state >> ppid) out[static_cast<uint32_t>(std::stoul(name))] = ppid;
  }
  return out;
}

nlohmann::json to_json(const QuarantineRecord& r) {
  return {{"original_path", r.original_path},
          {"quarantined_path", r.quarantined_path},
          {"sha256", r.sha256},
          {"size", r.size},
          {"mode", r.mode},
          {"uid", r.uid},
          {"gid", r.gid},
          {"time_ms", r.time_ms}};
}

QuarantineRecord from_json(const nlohmann::json& j) {
  QuarantineRecord r;
  r.original_path = j.at("original_path");
  r.quarantined_path = j.at("quarantined_path");
  r.sha256 = j.at("sha256");
  r.size = j.at("size");
  r.mode = j.at("mode");
  r.uid = j.at("uid");
  r.gid = j.at("gid");
  r.time_ms = j.at("time_ms");
  return r;
}

}  // namespace

std::vector<uint32_t> descendants_of(uint32_t pid) {
  const auto parent = parents();
  std::vector<uint32_t> out;
  std::vector<uint32_t> frontier = {pid};
  while (!frontier.empty()) {
    std::vector<uint32_t> next;
    for (const auto& [child, ppid] : parent) {
      if (std::find(frontier.begin(), frontier.end(), ppid) != frontier.end()) {
        next.push_back(child);
      }
    }
    out.insert(out.end(), next.begin(), next.end());
    frontier = std::move(next);
  }
  return out;
}

KillReport kill_process(uint32_t pid, bool tree) {
  KillReport report;
  const auto self = static_cast<uint32_t>(getpid());
  if (pid <= 1 || pid == self) {
    report.failed.emplace_back(pid, "refused: init or the responder itself");
    return report;
  }
  std::set<uint32_t> stopped;
  auto stop = [&](uint32_t p) {
    if (p == self || p <= 1 || stopped.count(p) != 0) return false;
    if (kill(static_cast<pid_t>(p), SIGSTOP) != 0) return false;
    stopped.insert(p);
    return true;
  };
  if (!stop(pid)) {
    report.failed.emplace_back(pid, base::errno_text(errno));
    return report;
  }
  // Stopped processes cannot fork: scan until a pass finds nobody new.
  for (bool grew = tree; grew;) {
    grew = false;
    for (uint32_t child : descendants_of(pid)) grew = stop(child) || grew;
  }
  for (uint32_t p : stopped) {
    if (kill(static_cast<pid_t>(p), SIGKILL) == 0) {
      report.killed.push_back(p);
    } else {
      report.failed.emplace_back(p, base::errno_text(errno));
    }
  }
  return report;
}

QuarantineRecord quarantine_file(const std::string& path, const std::string& quarantine_dir) {
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw std::runtime_error(path + ": cannot open: " + base::errno_text(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    throw std::runtime_error(path + ": not a regular file");
  }
  QuarantineRecord r;
  r.original_path = fs::absolute(path).lexically_normal().string();
  r.sha256 = base::sha256_hex(fd);
  close(fd);
  r.size = static_cast<uint64_t>(st.st_size);
  r.mode = st.st_mode & 07777U;
  r.uid = st.st_uid;
  r.gid = st.st_gid;
  r.time_ms = base::wall_now_ms();
  fs::create_directories(quarantine_dir);
  fs::permissions(quarantine_dir, fs::perms::owner_all, fs::perm_options::replace);
  r.quarantined_path =
      (fs::path(quarantine_dir) / (r.sha256 + "-" + std::to_string(r.time_ms))).string();
  std::error_code ec;
  fs::rename(path, r.quarantined_path, ec);
  if (ec == std::errc::cross_device_link) {
    fs::copy_file(path, r.quarantined_path, ec);
    if (!ec) fs::remove(path, ec);
  }
  if (ec) throw std::runtime_error(path + ": cannot move into quarantine: " + ec.message());
  fs::permissions(r.quarantined_path, fs::perms::none, fs::perm_options::replace);
  std::ofstream(r.quarantined_path + ".json") << to_json(r).dump(2) << '\n';
  return r;
}

std::vector<QuarantineRecord> quarantined_files(const std::string& quarantine_dir) {
  std::vector<QuarantineRecord> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(quarantine_dir, ec)) {
    if (entry.path().extension() != ".json") continue;
    try {
      std::ifstream in(entry.path());
      out.push_back(from_json(nlohmann::json::parse(in)));
    } catch (const std::exception&) {
      continue;  // not one of ours
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.time_ms < b.time_ms; });
  return out;
}

QuarantineRecord restore_file(const std::string& original_path, const std::string& quarantine_dir) {
  const std::string wanted = fs::absolute(original_path).lexically_normal().string();
  auto records = quarantined_files(quarantine_dir);
  auto it = std::find_if(records.rbegin(), records.rend(),
                         [&](const QuarantineRecord& r) { return r.original_path == wanted; });
  if (it == records.rend()) throw std::runtime_error(wanted + ": nothing quarantined from here");
  if (fs::exists(fs::symlink_status(wanted))) {
    throw std::runtime_error(wanted + ": the path is occupied; move it away first");
  }
  std::error_code ec;
  fs::rename(it->quarantined_path, wanted, ec);
  if (ec == std::errc::cross_device_link) {
    fs::permissions(it->quarantined_path, fs::perms::owner_read, fs::perm_options::replace);
    fs::copy_file(it->quarantined_path, wanted, ec);
    if (!ec) fs::remove(it->quarantined_path, ec);
  }
  if (ec) throw std::runtime_error(wanted + ": cannot restore: " + ec.message());
  if (chown(wanted.c_str(), it->uid, it->gid) != 0 || chmod(wanted.c_str(), it->mode) != 0) {
    throw std::runtime_error(
        wanted + ": restored, but its owner or mode could not be set: " + base::errno_text(errno));
  }
  fs::remove(it->quarantined_path + ".json", ec);
  return *it;
}

}  // namespace palisade::agent
