// Capture files: the raw sensor records of a run, replayable through the same pipeline.
// Layout: "PALCAP01", u32 ABI version, i64 wall-clock offset, i64 boot-clock offset, then
// records as [u32 length][bytes].
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "palisade/agent/pipeline.h"
#include "palisade/agent/source.h"

namespace palisade::agent {

struct CaptureHeader {
  int64_t wall_offset_ns = 0;
  int64_t boot_wall_offset_ns = 0;
};

class CaptureWriter : public RecordTap {
 public:
  CaptureWriter(const std::string& path, CaptureHeader header);  // throws on I/O errors
  ~CaptureWriter() override;
  CaptureWriter(const CaptureWriter&) = delete;
  CaptureWriter& operator=(const CaptureWriter&) = delete;
  void record(RecordView bytes) override;
  void flush();

 private:
  std::FILE* file_;
};

// Replays a capture file. Records are read in blocks; memory stays bounded by the block size.
class RecordedSource : public Source {
 public:
  explicit RecordedSource(const std::string& path);  // throws when the file is not a capture
  ~RecordedSource() override;
  RecordedSource(const RecordedSource&) = delete;
  RecordedSource& operator=(const RecordedSource&) = delete;

  bool poll(std::chrono::milliseconds timeout, const RecordCallback& deliver) override;
  SourceCounters counters() const override { return {}; }
  std::string describe() const override { return "capture " + path_; }
  const CaptureHeader& header() const { return header_; }

 private:
  std::string path_;
  std::FILE* file_;
  CaptureHeader header_;
  std::vector<std::byte> buffer_;
};

// Reads a whole capture into memory (benchmarks replay the same records repeatedly).
std::vector<std::vector<std::byte>> load_capture(const std::string& path, CaptureHeader* header);

}  // namespace palisade::agent
