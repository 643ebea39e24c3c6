// Sinks that write the OCSF stream: stdout and a JSON-lines file.
#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "palisade/ocsf/formatter.h"
#include "palisade/runtime/output.h"

namespace palisade::runtime {

// Writes one OCSF object per line. Output is buffered and flushed by flush() (the agent calls it
// after each batch of records and on shutdown), so a burst costs few write(2) calls.
class JsonLinesSink : public Output {
 public:
  // Takes ownership of `file` unless it is stdout; `path` is what reopen() opens again.
  JsonLinesSink(std::FILE* file, std::shared_ptr<ocsf::Formatter> formatter, std::string path = {});
  ~JsonLinesSink() override;
  JsonLinesSink(const JsonLinesSink&) = delete;
  JsonLinesSink& operator=(const JsonLinesSink&) = delete;

  static std::unique_ptr<JsonLinesSink> open_file(const std::string& path,
                                                  std::shared_ptr<ocsf::Formatter> formatter);

  void consume(const Event& event, std::string_view ocsf) override;
  void consume_finding(std::string_view ocsf_finding, const Event& trigger) override;
  void flush() override;
  void write_record(const OutOfBandRecord& record) override;
  nlohmann::json status() const override;
  void add_metrics(metrics::Snapshot& snapshot, const std::string& name) const override;
  void reopen() override;
  uint64_t lines() const { return lines_; }

 private:
  void append(std::string_view json);

  std::FILE* file_;
  std::string path_;
  std::shared_ptr<ocsf::Formatter> formatter_;
  std::string buffer_;
  uint64_t lines_ = 0;           // accepted
  uint64_t buffered_lines_ = 0;  // of them, not flushed yet
  uint64_t not_written_ = 0;     // lost to failed writes
  uint64_t write_errors_ = 0;
  std::chrono::steady_clock::time_point last_error_log_{};
};

}  // namespace palisade::runtime
