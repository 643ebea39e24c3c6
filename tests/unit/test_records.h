// Builds raw sensor records for unit tests, in the exact layout the eBPF sensor produces.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "palisade/model/event.h"
#include "sensor/sensor_abi.h"

namespace palisade::agent::testing {

class RecordBuilder {
 public:
  explicit RecordBuilder(uint16_t kind);
  RecordBuilder& task(uint32_t tgid, uint32_t ppid, uint64_t start_ns, const std::string& comm);
  RecordBuilder& uid(uint32_t uid, uint32_t auid = 0xffffffffU);
  RecordBuilder& seq(uint16_t cpu, uint64_t seq);
  RecordBuilder& time(uint64_t mono_ns);
  RecordBuilder& result(int64_t result);
  RecordBuilder& str(size_t index, const std::string& value);
  pal_record& raw() { return record_; }
  std::vector<std::byte> build() const;

 private:
  pal_record record_{};
  std::string strings_[PAL_MAX_STRINGS];
};

std::string argv_block(const std::vector<std::string>& argv);

// Common records.
std::vector<std::byte> exec_record(uint32_t tgid, uint32_t ppid, uint64_t start_ns,
                                   const std::string& exe, const std::vector<std::string>& argv,
                                   uint64_t mono_ns = 1000);
std::vector<std::byte> snapshot_record(uint32_t tgid, uint32_t ppid, uint64_t start_ns,
                                       const std::string& exe);
std::vector<std::byte> fork_record(uint32_t parent, uint64_t parent_start_ns, uint32_t child,
                                   uint64_t child_start_ns, uint64_t mono_ns = 1000);
std::vector<std::byte> exit_record(uint32_t tgid, uint64_t start_ns, uint32_t status,
                                   uint64_t mono_ns);

}  // namespace palisade::agent::testing
