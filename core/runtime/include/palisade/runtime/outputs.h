// The outputs a producer writes to, built by name from the configuration. Each kind (stdout, file,
// store; the exporters register theirs) is an entry in one registry: its name, whether the
// configuration turns it on, and how to build it. The node agent and `palisade hv` both open
// their outputs here, so they write the same records to the same places.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "palisade/ocsf/formatter.h"
#include "palisade/runtime/event_store.h"
#include "palisade/runtime/output.h"

namespace palisade::runtime {

// The `output` and `store` sections of the configuration.
struct OutputSettings {
  bool stdout_enabled = true;
  std::string json_file;  // "" = off
  bool store_enabled = true;
  StoreOptions store;
};

struct OutputKind {
  std::string name;
  std::function<bool(const OutputSettings&)> enabled;
  std::function<std::unique_ptr<Output>(const OutputSettings&,
                                        const std::shared_ptr<ocsf::Formatter>&)>
      create;
};

// Adds a kind to the registry; outputs are opened in registration order. The built-in kinds
// (stdout, file, store) are registered before the first lookup. A second kind of the same name
// is a bug (InvariantError).
void register_output_kind(OutputKind kind);
std::vector<std::string> output_kind_names();

class Outputs {
 public:
  // Opens every kind the settings turn on; throws the first kind's error (naming its path).
  Outputs(const OutputSettings& settings, std::shared_ptr<ocsf::Formatter> formatter);
  ~Outputs();
  Outputs(const Outputs&) = delete;
  Outputs& operator=(const Outputs&) = delete;

  const std::shared_ptr<ocsf::Formatter>& formatter() const { return formatter_; }
  // Adds an output opened elsewhere (an exporter) under its configured name.
  void add(std::string name, std::unique_ptr<Output> output);
  std::vector<EventSink*> sinks() const;
  std::vector<std::string> names() const;
  void write_record(const OutOfBandRecord& record);
  // Writes an audit record (class_uid and time read from it) to every output, at once.
  void write_audit(const nlohmann::json& record, uint32_t pid = 0, std::string_view exe = {},
                   uint32_t uid = 0);
  void flush();
  void drain();
  void reopen();
  // {name: counters} for every output that has counters.
  nlohmann::json status() const;
  void add_metrics(metrics::Snapshot& snapshot) const;

 private:
  struct Opened {
    std::string name;
    std::unique_ptr<Output> output;
  };
  std::shared_ptr<ocsf::Formatter> formatter_;
  std::vector<Opened> outputs_;
};

}  // namespace palisade::runtime
