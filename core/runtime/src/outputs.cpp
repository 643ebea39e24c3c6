#include "palisade/runtime/outputs.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>

#include "palisade/base/error.h"
#include "palisade/runtime/json_lines_sink.h"

namespace palisade::runtime {
namespace {

std::vector<OutputKind> builtin_kinds() {
  std::vector<OutputKind> kinds;
  kinds.push_back({"stdout", [](const OutputSettings& s) { return s.stdout_enabled; },
                   [](const OutputSettings&, const std::shared_ptr<ocsf::Formatter>& f) {
                     return std::make_unique<JsonLinesSink>(stdout, f);
                   }});
  kinds.push_back({"file", [](const OutputSettings& s) { return !s.json_file.empty(); },
                   [](const OutputSettings& s, const std::shared_ptr<ocsf::Formatter>& f) {
                     return JsonLinesSink::open_file(s.json_file, f);
                   }});
  kinds.push_back({"store", [](const OutputSettings& s) { return s.store_enabled; },
                   [](const OutputSettings& s, const std::shared_ptr<ocsf::Formatter>& f) {
                     return std::make_unique<EventStore>(s.store, f);
                   }});
  return kinds;
}

struct Registry {
  std::mutex mutex;
  std::vector<OutputKind> kinds = builtin_kinds();
};

Registry& registry() {
  static Registry instance;
  return instance;
}

std::vector<OutputKind> registered_kinds() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.kinds;
}

}  // namespace

void register_output_kind(OutputKind kind) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (const auto& existing : r.kinds) {
    if (existing.name == kind.name) {
      throw InvariantError("output kind registered twice: " + kind.name);
    }
  }
  r.kinds.push_back(std::move(kind));
}

std::vector<std::string> output_kind_names() {
  std::vector<std::string> names;
  for (const auto& kind : registered_kinds()) names.push_back(kind.name);
  return names;
}

Outputs::Outputs(const OutputSettings& settings, std::shared_ptr<ocsf::Formatter> formatter)
    : formatter_(std::move(formatter)) {
  for (const auto& kind : registered_kinds()) {
    if (kind.enabled(settings)) outputs_.push_back({kind.name, kind.create(settings, formatter_)});
  }
}

void Outputs::add(std::string name, std::unique_ptr<Output> output) {
  outputs_.push_back({std::move(name), std::move(output)});
}

// The outputs close in reverse order of opening, each draining what it accepted.
Outputs::~Outputs() {
  while (!outputs_.empty()) outputs_.pop_back();
}

std::vector<EventSink*> Outputs::sinks() const {
  std::vector<EventSink*> out;
  out.reserve(outputs_.size());
  for (const auto& o : outputs_) out.push_back(o.output.get());
  return out;
}

std::vector<std::string> Outputs::names() const {
  std::vector<std::string> out;
  out.reserve(outputs_.size());
  for (const auto& o : outputs_) out.push_back(o.name);
  return out;
}

void Outputs::write_record(const OutOfBandRecord& record) {
  for (const auto& o : outputs_) o.output->write_record(record);
}

void Outputs::write_audit(const nlohmann::json& record, uint32_t pid, std::string_view exe,
                          uint32_t uid) {
  const std::string line = record.dump();
  OutOfBandRecord r;
  r.kind = OutOfBandRecord::Kind::kAudit;
  r.json = line;
  r.class_uid = record.value("class_uid", 0);
  r.time_ms = record.value("time", int64_t{0});
  r.pid = pid;
  r.exe = exe;
  r.uid = uid;
  write_record(r);  // each output writes an out-of-band record at once
}

void Outputs::flush() {
  for (const auto& o : outputs_) o.output->flush();
}

void Outputs::drain() {
  for (const auto& o : outputs_) o.output->drain();
}

// A failed reopen keeps that output on its old file; the others are still reopened.
void Outputs::reopen() {
  for (const auto& o : outputs_) {
    try {
      o.output->reopen();
    } catch (const std::exception& e) {
      spdlog::error("output {} not reopened, still writing to the old file: {}", o.name, e.what());
    }
  }
}

nlohmann::json Outputs::status() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& o : outputs_) {
    nlohmann::json s = o.output->status();
    if (!s.is_null()) out[o.name] = std::move(s);
  }
  return out;
}

void Outputs::add_metrics(metrics::Snapshot& snapshot) const {
  for (const auto& o : outputs_) o.output->add_metrics(snapshot, o.name);
}

}  // namespace palisade::runtime
