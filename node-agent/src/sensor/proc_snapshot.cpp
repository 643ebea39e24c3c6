// Seeds the process table: every process alive at start-up becomes a PAL_PROC_SNAPSHOT record in
// the sensor's own format, so it flows through the decoder and capture files like kernel records.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "palisade/agent/sensor.h"
#include "sensor/sensor_abi.h"

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  std::string data(limit, '\0');
  in.read(data.data(), static_cast<std::streamsize>(limit));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

std::string read_link(const fs::path& path) {
  std::error_code ec;
  auto target = fs::read_symlink(path, ec);
  return ec ? std::string() : target.string();
}

uint32_t ns_inode(const fs::path& link) {
  // "mnt:[4026531841]"
  std::string target = read_link(link);
  auto open = target.find('[');
  return open == std::string::npos ? 0 : static_cast<uint32_t>(std::stoul(target.substr(open + 1)));
}

bool parse_stat(const std::string& stat, uint32_t& ppid, uint64_t& start_ticks) {
  // The comm field may contain spaces and parentheses: fields resume after the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int index = 3; rest >> field; ++index) {
    if (index == 4) ppid = static_cast<uint32_t>(std::stoul(field));
    if (index == 22) {
      start_ticks = std::stoull(field);
      return true;
    }
  }
  return false;
}

void parse_ids(const std::string& status, pal_task& task) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line)) {
    unsigned real = 0;
    unsigned effective = 0;
    if (std::sscanf(line.c_str(), "Uid:\t%u\t%u", &real, &effective) == 2) {
      task.uid = real;
      task.euid = effective;
    } else if (std::sscanf(line.c_str(), "Gid:\t%u\t%u", &real, &effective) == 2) {
      task.gid = real;
      task.egid = effective;
    }
  }
}

std::vector<std::byte> build_record(const pal_record& head, const std::string (&strings)[4]) {
  pal_record record = head;
  size_t total = sizeof(pal_record);
  for (size_t i = 0; i < 4; ++i) {
    size_t len = std::min(strings[i].size(), size_t{PAL_ARGV_LIMIT - 1});
    record.h.str_len[i] = static_cast<__u16>(len);
    total += len;
  }
  record.h.total_len = static_cast<__u32>(total);
  std::vector<std::byte> bytes(total);
  std::memcpy(bytes.data(), &record, sizeof(record));
  size_t offset = sizeof(pal_record);
  for (size_t i = 0; i < 4; ++i) {
    std::memcpy(bytes.data() + offset, strings[i].data(), record.h.str_len[i]);
    offset += record.h.str_len[i];
  }
  return bytes;
}

}  // namespace

std::vector<std::vector<std::byte>> snapshot_processes(const std::string& proc_root) {
  std::vector<std::vector<std::byte>> records;
  const uint64_t tick_ns = 1'000'000'000ULL / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint64_t mono_now =
      static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(proc_root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const fs::path dir = entry.path();
    uint32_t ppid = 0;
    uint64_t start_ticks = 0;
    if (!parse_stat(read_file(dir / "stat", 4096), ppid, start_ticks)) continue;  // exited

    pal_record head{};
    head.h.kind = PAL_PROC_SNAPSHOT;
    head.h.mono_ns = mono_now;
    pal_task& task = head.h.task;
    task.pid = task.tgid = static_cast<uint32_t>(std::stoul(name));
    task.ppid = ppid;
    task.start_ns = start_ticks * tick_ns;
    parse_ids(read_file(dir / "status", 8192), task);
    std::string loginuid = read_file(dir / "loginuid", 32);
    task.auid = loginuid.empty() ? 0xffffffffU : static_cast<uint32_t>(std::stoul(loginuid));
    task.mnt_ns = ns_inode(dir / "ns" / "mnt");
    task.pid_ns = ns_inode(dir / "ns" / "pid");
    std::string comm = read_file(dir / "comm", PAL_COMM_LEN);
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    std::memcpy(task.comm, comm.data(), std::min(comm.size(), size_t{PAL_COMM_LEN - 1}));

    const std::string strings[4] = {read_link(dir / "exe"),
                                    read_file(dir / "cmdline", PAL_ARGV_LIMIT - 1),
                                    read_link(dir / "cwd"), std::string()};
    records.push_back(build_record(head, strings));
  }
  return records;
}

}  // namespace palisade::agent
