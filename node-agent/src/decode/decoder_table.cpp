#include <cstring>

#include "decode/decoder.h"

namespace palisade::agent {

DecoderTable::DecoderTable() {
  register_process_decoders(*this);
  register_file_decoders(*this);
  register_network_decoders(*this);
  register_privilege_decoders(*this);
  register_enforce_decoders(*this);
}

void DecoderTable::add(uint16_t kind, DecodeFn fn) {
  table_.at(kind) = fn;
}

namespace {

void decode_task(const pal_task& in, TaskIdentity& out) {
  out.pid = in.pid;
  out.tgid = in.tgid;
  out.ppid = in.ppid;
  out.uid = in.uid;
  out.gid = in.gid;
  out.euid = in.euid;
  out.egid = in.egid;
  out.auid = in.auid;
  out.cgroup_id = in.cgroup_id;
  out.mnt_ns = in.mnt_ns;
  out.pid_ns = in.pid_ns;
  out.start_ns = in.start_ns;
  out.comm.assign(in.comm, strnlen(in.comm, sizeof(in.comm)));
}

}  // namespace

std::optional<std::string> DecoderTable::decode(RecordView bytes, Event& out) const {
  if (bytes.size() < sizeof(pal_record)) return "record shorter than its header";
  pal_record record;  // copied: ring-buffer memory is only 8-byte aligned, and this is cheap
  std::memcpy(&record, bytes.data(), sizeof(record));
  if (record.h.total_len != bytes.size()) return "record length does not match its header";
  if (record.h.kind >= PAL_KIND_LIMIT || table_[record.h.kind] == nullptr) {
    return "unknown event kind " + std::to_string(record.h.kind);
  }
  RecordStrings strings;
  size_t offset = sizeof(pal_record);
  const auto* base = reinterpret_cast<const char*>(bytes.data());
  for (size_t i = 0; i < PAL_MAX_STRINGS; ++i) {
    size_t len = record.h.str_len[i];
    if (offset + len > bytes.size()) return "string " + std::to_string(i) + " overruns the record";
    strings[i] = std::string_view(base + offset, len);
    offset += len;
  }
  out.clear();
  out.kind = static_cast<EventKind>(record.h.kind);
  out.cpu = record.h.cpu;
  out.seq = record.h.seq;
  out.mono_ns = record.h.mono_ns;
  out.result = record.h.result;
  decode_task(record.h.task, out.task);
  table_[record.h.kind](record, strings, out);
  return std::nullopt;
}

void split_argv(std::string_view block, std::vector<std::string>& out) {
  out.clear();
  while (!block.empty()) {
    size_t end = block.find('\0');
    out.emplace_back(block.substr(0, end));
    if (end == std::string_view::npos) break;
    block.remove_prefix(end + 1);
  }
}

std::string normalize_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return std::string(path);
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (pos < path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    std::string_view part = path.substr(pos, next - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = next + 1;
  }
  std::string result;
  result.reserve(path.size());
  for (auto part : parts) {
    result += '/';
    result += part;
  }
  return result.empty() ? "/" : result;
}

}  // namespace palisade::agent
