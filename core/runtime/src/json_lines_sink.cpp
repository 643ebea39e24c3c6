#include "palisade/runtime/json_lines_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "palisade/base/errno_text.h"
#include "palisade/base/error.h"

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
// Created 0600: the stream holds every command line on the host. An existing file keeps the
// mode its owner gave it.
std::FILE* open_for_append(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
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
}

nlohmann::json JsonLinesSink::status() const {
  return {{"path", path_.empty() ? "<stdout>" : path_}, {"lines", lines_}};
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

void JsonLinesSink::flush() {
  if (!buffer_.empty()) {
    std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
    buffer_.clear();
  }
  std::fflush(file_);
}

}  // namespace palisade::runtime
