#include "palisade/agent/capture.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "sensor/sensor_abi.h"

namespace palisade::agent {
namespace {

constexpr char kMagic[8] = {'P', 'A', 'L', 'C', 'A', 'P', '0', '1'};
constexpr uint32_t kMaxRecord = 1U << 20;
constexpr size_t kRecordsPerPoll = 4096;

std::runtime_error io_error(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

template <typename T>
bool read_value(std::FILE* file, T& value) {
  return std::fread(&value, sizeof(T), 1, file) == 1;
}

}  // namespace

CaptureWriter::CaptureWriter(const std::string& path, CaptureHeader header)
    : file_(std::fopen(path.c_str(), "wbe")) {
  if (file_ == nullptr) throw io_error("cannot create capture", path);
  uint32_t abi = PAL_ABI_VERSION;
  std::fwrite(kMagic, 1, sizeof(kMagic), file_);
  std::fwrite(&abi, sizeof(abi), 1, file_);
  std::fwrite(&header.wall_offset_ns, sizeof(int64_t), 1, file_);
  std::fwrite(&header.boot_wall_offset_ns, sizeof(int64_t), 1, file_);
}

CaptureWriter::~CaptureWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void CaptureWriter::record(RecordView bytes) {
  auto len = static_cast<uint32_t>(bytes.size());
  std::fwrite(&len, sizeof(len), 1, file_);
  std::fwrite(bytes.data(), 1, bytes.size(), file_);
}

void CaptureWriter::flush() {
  std::fflush(file_);
}

RecordedSource::RecordedSource(const std::string& path)
    : path_(path), file_(std::fopen(path.c_str(), "rbe")) {
  if (file_ == nullptr) throw io_error("cannot open capture", path);
  char magic[8] = {};
  uint32_t abi = 0;
  if (std::fread(magic, 1, sizeof(magic), file_) != sizeof(magic) ||
      std::memcmp(magic, kMagic, sizeof(magic)) != 0 || !read_value(file_, abi) ||
      !read_value(file_, header_.wall_offset_ns) ||
      !read_value(file_, header_.boot_wall_offset_ns)) {
    std::fclose(file_);
    throw std::runtime_error(path + ": not a palisade capture file (bad header)");
  }
  if (abi != PAL_ABI_VERSION) {
    std::fclose(file_);
    throw std::runtime_error(path + ": capture ABI version " + std::to_string(abi) +
                             ", this build reads version " + std::to_string(PAL_ABI_VERSION));
  }
}

RecordedSource::~RecordedSource() {
  std::fclose(file_);
}

bool RecordedSource::poll(std::chrono::milliseconds, const RecordCallback& deliver) {
  for (size_t n = 0; n < kRecordsPerPoll; ++n) {
    uint32_t len = 0;
    if (!read_value(file_, len)) return false;
    if (len > kMaxRecord)
      throw std::runtime_error(path_ + ": record length " + std::to_string(len) + " is corrupt");
    buffer_.resize(len);
    if (std::fread(buffer_.data(), 1, len, file_) != len) {
      throw std::runtime_error(path_ + ": truncated record at end of capture");
    }
    deliver(RecordView(buffer_));
  }
  return true;
}

std::vector<std::vector<std::byte>> load_capture(const std::string& path, CaptureHeader* header) {
  RecordedSource source(path);
  if (header != nullptr) *header = source.header();
  std::vector<std::vector<std::byte>> records;
  RecordCallback keep = [&records](RecordView r) { records.emplace_back(r.begin(), r.end()); };
  while (source.poll(std::chrono::milliseconds(0), keep)) {
  }
  return records;
}

}  // namespace palisade::agent
