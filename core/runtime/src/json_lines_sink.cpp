#include "palisade/runtime/json_lines_sink.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace palisade::runtime {
namespace {
constexpr size_t kFlushThreshold = 1U << 16;
}

JsonLinesSink::JsonLinesSink(std::FILE* file, std::shared_ptr<ocsf::Formatter> formatter)
    : file_(file), formatter_(std::move(formatter)) {
  buffer_.reserve(kFlushThreshold * 2);
}

JsonLinesSink::~JsonLinesSink() {
  flush();
  if (file_ != stdout && file_ != nullptr) std::fclose(file_);
}

std::unique_ptr<JsonLinesSink> JsonLinesSink::open_file(
    const std::string& path, std::shared_ptr<ocsf::Formatter> formatter) {
  std::FILE* file = std::fopen(path.c_str(), "ae");
  if (file == nullptr) {
    throw std::runtime_error("cannot open JSON output " + path + ": " + std::strerror(errno));
  }
  return std::make_unique<JsonLinesSink>(file, std::move(formatter));
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
  buffer_.append(ocsf_finding);
  buffer_ += '\n';
  lines_++;
  if (buffer_.size() >= kFlushThreshold) flush();
}

void JsonLinesSink::write_line(std::string_view json) {
  buffer_.append(json);
  buffer_ += '\n';
  lines_++;
  flush();
}

void JsonLinesSink::flush() {
  if (!buffer_.empty()) {
    std::fwrite(buffer_.data(), 1, buffer_.size(), file_);
    buffer_.clear();
  }
  std::fflush(file_);
}

}  // namespace palisade::runtime
