// The local event store: SQLite in WAL mode, written in batches by its own thread (never on the
// event path), with bounded retention by age and size. `palisade events` reads it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "palisade/ocsf/formatter.h"
#include "palisade/runtime/output.h"

struct sqlite3;

namespace palisade::runtime {

struct StoreOptions {
  std::string path = "/var/lib/palisade/events.db";
  uint64_t max_age_seconds = 7ULL * 24 * 3600;
  uint64_t max_bytes = 512ULL << 20;
  size_t queue_capacity = 65536;      // events waiting for the writer; the pipeline waits
  size_t queue_max_bytes = 8U << 20;  // when either bound is reached
  size_t batch_size = 2048;
  uint64_t prune_interval_ms = 30'000;  // how often retention runs
  // Below this much free space on its filesystem the store writes nothing (counted), so that
  // SQLite never meets a full disk (which can end in SIGBUS on its mapped WAL index).
  uint64_t min_free_bytes = 64ULL << 20;
};

struct StoreStats {
  uint64_t written = 0;      // committed to the database
  uint64_t not_written = 0;  // in batches the database refused (counted lost, never retried)
  uint64_t queue_waits = 0;  // times the pipeline waited for the writer
  uint64_t pruned = 0;
  uint64_t write_errors = 0;          // failed batches
  uint64_t dropped_low_space = 0;     // of not_written: the filesystem was below min_free_bytes
  size_t queue_depth = 0;             // events accepted, waiting for the writer
  metrics::LatencyHistogram commits;  // each batch's transaction, committed or failed
};

class EventStore : public Output {
 public:
  EventStore(StoreOptions options, std::shared_ptr<ocsf::Formatter> formatter);
  ~EventStore() override;  // drains the queue: accepted events are never lost on shutdown
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  void consume(const Event& event, std::string_view ocsf) override;
  void consume_finding(std::string_view ocsf_finding, const Event& trigger) override;
  // Audit records are kept with the events; status events are not.
  void write_record(const OutOfBandRecord& record) override;
  void flush() override {}
  void drain() override;  // blocks until everything accepted so far is committed
  nlohmann::json status() const override;
  void add_metrics(metrics::Snapshot& snapshot, const std::string& name) const override;
  StoreStats stats() const;

 private:
  class Writer;
  std::unique_ptr<Writer> writer_;
};

struct EventQuery {
  std::optional<uint64_t> since_ms;
  std::optional<uint64_t> until_ms;
  std::optional<uint32_t> pid;
  std::optional<std::string> exe;  // glob, e.g. "*/rm"
  std::optional<int> class_uid;
  size_t limit = 1000;
};

struct StoredProcess {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint64_t start_ns = 0;
  std::string exe;
  std::string cmdline;
  uint32_t uid = 0;
  int64_t auid = -1;
  uint64_t started_ms = 0;
  std::optional<uint64_t> exited_ms;
};

class EventReader {
 public:
  // Read-only. Throws EnvironmentError naming the file when it is missing or damaged (SQLite's
  // quick check), and when a query cannot read every row.
  explicit EventReader(const std::string& path);
  ~EventReader();
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;

  std::vector<std::string> events(const EventQuery& query);  // OCSF JSON, oldest first
  std::vector<StoredProcess> ancestry(uint32_t pid);         // the process, then parents to init
  std::vector<StoredProcess> descendants(uint32_t pid);      // depth-first, with the process

 private:
  std::optional<StoredProcess> latest(uint32_t pid, uint64_t not_after_ns);
  void check_done(int rc) const;
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace palisade::runtime
