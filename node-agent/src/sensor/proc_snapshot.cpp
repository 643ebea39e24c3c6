// Seeds the process table: every process alive at start-up becomes a PAL_PROC_SNAPSHOT record in
// the sensor's own format, so it flows through the decoder and capture files like kernel records.
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>

#include "palisade/agent/sensor.h"
#include "palisade/base/proc.h"
#include "sensor/sensor_abi.h"

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;

// The real and effective ids of a status file, when it could be read.
void copy_ids(uint32_t pid, pal_task& task) {
  if (const std::optional<base::ProcStatus> status = base::read_proc_status(pid)) {
    task.uid = status->uid;
    task.euid = status->euid;
    task.gid = status->gid;
    task.egid = status->egid;
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

std::vector<std::vector<std::byte>> snapshot_processes() {
  std::vector<std::vector<std::byte>> records;
  const uint64_t tick_ns = 1'000'000'000ULL / static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const uint64_t mono_now =
      static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    uint32_t pid = 0;
    const auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (error != std::errc() || end != name.data() + name.size() || pid == 0) continue;
    const std::optional<base::ProcStat> stat =
        base::parse_proc_stat(base::read_proc_file(pid, "stat", 4096));
    if (!stat) continue;  // exited

    pal_record head{};
    head.h.kind = PAL_PROC_SNAPSHOT;
    head.h.mono_ns = mono_now;
    pal_task& task = head.h.task;
    task.pid = task.tgid = pid;
    task.ppid = stat->ppid;
    task.start_ns = stat->start_ticks * tick_ns;
    copy_ids(pid, task);
    const std::string loginuid = base::read_proc_file(pid, "loginuid", 32);
    task.auid = 0xffffffffU;
    std::from_chars(loginuid.data(), loginuid.data() + loginuid.size(), task.auid);
    task.mnt_ns = static_cast<uint32_t>(base::namespace_inode(pid, "mnt"));
    task.pid_ns = static_cast<uint32_t>(base::namespace_inode(pid, "pid"));
    std::string comm = base::read_proc_file(pid, "comm", PAL_COMM_LEN);
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    std::memcpy(task.comm, comm.data(), std::min(comm.size(), size_t{PAL_COMM_LEN - 1}));

    const std::string strings[4] = {base::read_proc_link(pid, "exe"),
                                    base::read_proc_file(pid, "cmdline", PAL_ARGV_LIMIT - 1),
                                    base::read_proc_link(pid, "cwd"), std::string()};
    records.push_back(build_record(head, strings));
  }
  return records;
}

}  // namespace palisade::agent
