#include "palisade/runtime/json_lines_sink.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "palisade/base/errno_text.h"
#include "palisade/base/error.h"
#include "palisade/base/private_files.h"

namespace palisade::runtime {
namespace {
constexpr size_t kFlushThreshold = 1U << 16;
}

JsonLinesSink::JsonLinesSink(std::FILE* file, std::shared_ptr<ocsf::Formatter> formatter,
                             std::string path)
    : file_(file), path_(std::move(path)), formatter_(std::move(formatter)) {
  buffer_.reserve(kFlushThreshold * 2);
}

JsonLinesSink::~JsonLinesSink() {
  flush();
  if (file_ != stdout && file_ != nullptr) std::fclose(file_);
}

namespace {
// Created 0600 (0640 for the reader group): the stream holds every command line on the host. An
// existing file keeps the mode its owner gave it.
std::FILE* open_for_append(const std::string& path) {
  const int fd = base::open_private_file(path, O_WRONLY | O_APPEND);
  std::FILE* file = fd < 0 ? nullptr : ::fdopen(fd, "a");
  if (file == nullptr) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    throw EnvironmentError("cannot open JSON output " + path + ": " + base::errno_text(error));
  }
  return file;
}
}  // namespace

std::unique_ptr<JsonLinesSink> JsonLinesSink::open_file(
    const std::string& path, std::shared_ptr<ocsf::Formatter> formatter) {
  return std::make_unique<JsonLinesSink>(open_for_append(path), std::move(formatter), path);
}

void JsonLinesSink::consume(const Event& event, std::string_view ocsf) {
  if (ocsf.empty()) {
    formatter_->format(event, buffer_);
  } else {
    buffer_.append(ocsf);
  }
  buffer_ += '\n';
  lines_++;
  buffered_lines_++;
  if (buffer_.size() >= kFlushThreshold) flush();
}

void JsonLinesSink::consume_finding(std::string_view ocsf_finding, const Event&) {
  append(ocsf_finding);
  if (buffer_.size() >= kFlushThreshold) flush();
}

// Out-of-band records are rare and often the answer to an operator: written at once.
void JsonLinesSink::write_record(const OutOfBandRecord& record) {
  append(record.json);
  flush();
}

void JsonLinesSink::append(std::string_view json) {
  buffer_.append(json);
  buffer_ += '\n';
  lines_++;
  buffered_lines_++;
}

nlohmann::json JsonLinesSink::status() const {
  return {{"path", path_.empty() ? "<stdout>" : path_},
          {"lines", lines_},
          {"not_written", not_written_},
          {"write_errors", write_errors_}};
}

void JsonLinesSink::add_metrics(metrics::Snapshot& snapshot, const std::string& name) const {
  const metrics::Labels output{{"output", name}};
  snapshot.counter("palisade_output_records_total", "Records (lines) an output wrote",
                   static_cast<double>(lines_), output);
  snapshot.counter("palisade_output_records_not_written_total",
                   "Records an output accepted but could not write",
                   static_cast<double>(not_written_), output);
  snapshot.counter("palisade_output_write_errors_total", "Failed writes of an output",
                   static_cast<double>(write_errors_), output);
}

// A rotated file (renamed away) is let go and the path opened afresh; if that fails the old
// file stays in use, so no line is lost to a failed reopen.
void JsonLinesSink::reopen() {
  if (path_.empty()) return;
  flush();
  std::FILE* next = open_for_append(path_);
  std::fclose(file_);
  file_ = next;
}

// A failed write (a full disk, a closed pipe) loses the buffered lines: counted, never silent,
// and logged at most once a minute.
void JsonLinesSink::flush() {
  bool ok = true;
  if (!buffer_.empty()) {
    ok = std::fwrite(buffer_.data(), 1, buffer_.size(), file_) == buffer_.size();
    buffer_.clear();
  }
  ok = std::fflush(file_) == 0 && ok;
  if (ok) {
    buffered_lines_ = 0;
    return;
  }
  const int error = errno;
  std::clearerr(file_);
  not_written_ += buffered_lines_;
  write_errors_++;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_error_log_ >= std::chrono::minutes(1)) {
    spdlog::error("JSON output {}: {} lines not written: {} ({} failed writes so far)",
                  path_.empty() ? "<stdout>" : path_, buffered_lines_, base::errno_text(error),
                  write_errors_);
    last_error_log_ = now;
  }
  buffered_lines_ = 0;
}

}  // namespace palisade::runtime
