#include "test_records.h"

#include <algorithm>
#include <cstring>

namespace palisade::agent::testing {

RecordBuilder::RecordBuilder(uint16_t kind) {
  record_.h.kind = kind;
  record_.h.seq = 1;
  record_.h.mono_ns = 1000;
  record_.h.task.auid = 0xffffffffU;
  if (PAL_CLASS_OF(kind) == PAL_CLASS_FILE) record_.a.file.fd = -1;
}

RecordBuilder& RecordBuilder::task(uint32_t tgid, uint32_t ppid, uint64_t start_ns,
                                   const std::string& comm) {
  record_.h.task.pid = record_.h.task.tgid = tgid;
  record_.h.task.ppid = ppid;
  record_.h.task.start_ns = start_ns;
  std::memset(record_.h.task.comm, 0, sizeof(record_.h.task.comm));
  std::memcpy(record_.h.task.comm, comm.data(), std::min(comm.size(), size_t{15}));
  return *this;
}

RecordBuilder& RecordBuilder::uid(uint32_t uid, uint32_t auid) {
  record_.h.task.uid = record_.h.task.euid = uid;
  record_.h.task.auid = auid;
  return *this;
}

RecordBuilder& RecordBuilder::seq(uint16_t cpu, uint64_t seq) {
  record_.h.cpu = cpu;
  record_.h.seq = seq;
  return *this;
}

RecordBuilder& RecordBuilder::time(uint64_t mono_ns) {
  record_.h.mono_ns = mono_ns;
  return *this;
}

RecordBuilder& RecordBuilder::result(int64_t result) {
  record_.h.result = result;
  return *this;
}

RecordBuilder& RecordBuilder::str(size_t index, const std::string& value) {
  strings_[index] = value;
  return *this;
}

std::vector<std::byte> RecordBuilder::build() const {
  pal_record record = record_;
  size_t total = sizeof(pal_record);
  for (size_t i = 0; i < PAL_MAX_STRINGS; ++i) {
    record.h.str_len[i] = static_cast<__u16>(strings_[i].size());
    total += strings_[i].size();
  }
  record.h.total_len = static_cast<__u32>(total);
  std::vector<std::byte> bytes(total);
  std::memcpy(bytes.data(), &record, sizeof(record));
  size_t offset = sizeof(pal_record);
  for (const auto& s : strings_) {
    std::memcpy(bytes.data() + offset, s.data(), s.size());
    offset += s.size();
  }
  return bytes;
}

std::string argv_block(const std::vector<std::string>& argv) {
  std::string block;
  for (const auto& arg : argv) {
    block += arg;
    block += '\0';
  }
  return block;
}

std::vector<std::byte> exec_record(uint32_t tgid, uint32_t ppid, uint64_t start_ns,
                                   const std::string& exe, const std::vector<std::string>& argv,
                                   uint64_t mono_ns) {
  auto slash = exe.rfind('/');
  return RecordBuilder(PAL_PROC_EXEC)
      .task(tgid, ppid, start_ns, exe.substr(slash + 1))
      .time(mono_ns)
      .str(0, exe)
      .str(1, argv_block(argv))
      .str(2, "/")
      .str(3, exe)
      .build();
}

std::vector<std::byte> snapshot_record(uint32_t tgid, uint32_t ppid, uint64_t start_ns,
                                       const std::string& exe) {
  auto slash = exe.rfind('/');
  return RecordBuilder(PAL_PROC_SNAPSHOT)
      .task(tgid, ppid, start_ns, exe.substr(slash + 1))
      .str(0, exe)
      .str(1, argv_block({exe}))
      .str(2, "/")
      .build();
}

std::vector<std::byte> fork_record(uint32_t parent, uint64_t parent_start_ns, uint32_t child,
                                   uint64_t child_start_ns, uint64_t mono_ns) {
  RecordBuilder b(PAL_PROC_FORK);
  b.task(parent, 1, parent_start_ns, "parent").time(mono_ns);
  b.raw().a.fork.child_pid = child;
  b.raw().a.fork.child_tgid = child;
  b.raw().a.fork.child_start_ns = child_start_ns;
  return b.build();
}

std::vector<std::byte> exit_record(uint32_t tgid, uint64_t start_ns, uint32_t status,
                                   uint64_t mono_ns) {
  RecordBuilder b(PAL_PROC_EXIT);
  b.task(tgid, 1, start_ns, "x").time(mono_ns).result(status);
  b.raw().a.exit.exit_code = status;
  return b.build();
}

}  // namespace palisade::agent::testing
