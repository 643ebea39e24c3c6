#include "palisade/runtime/event_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "palisade/base/bounded_queue.h"
#include "palisade/base/clock.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/error.h"
#include "palisade/base/private_files.h"
#include "palisade/base/sqlite_statement.h"
#include "palisade/base/unique_fd.h"

namespace palisade::runtime {
namespace {

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
PRAGMA journal_size_limit=67108864;
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  class_uid INTEGER NOT NULL,
  kind TEXT NOT NULL,
  pid INTEGER NOT NULL,
  ppid INTEGER NOT NULL,
  exe TEXT NOT NULL,
  json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_time ON events(time_ms);
CREATE INDEX IF NOT EXISTS events_pid ON events(pid, time_ms);
CREATE TABLE IF NOT EXISTS processes (
  pid INTEGER NOT NULL,
  start_ns INTEGER NOT NULL,
  ppid INTEGER NOT NULL,
  exe TEXT NOT NULL,
  cmdline TEXT NOT NULL,
  uid INTEGER NOT NULL,
  auid INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  exited_ms INTEGER,
  PRIMARY KEY (pid, start_ns));
CREATE INDEX IF NOT EXISTS processes_ppid ON processes(ppid);
)sql";

constexpr int kWriterNice = 10;

// SQLite's quick check: "" when the database is sound, else its first complaint.
std::string integrity_problem(sqlite3* db) {
  base::SqliteStatement check(db, "PRAGMA quick_check(1)");
  if (check.step() != SQLITE_ROW) return sqlite3_errmsg(db);
  const std::string verdict = check.text_at(0);
  return verdict == "ok" ? std::string() : verdict;
}

// Renames the store and its WAL files to PATH.damaged-<unix seconds>; returns the new name.
std::string move_aside(const std::string& path) {
  std::string target = path + ".damaged-" + std::to_string(base::wall_now_ns() / 1'000'000'000ULL);
  if (::rename(path.c_str(), target.c_str()) != 0) {
    throw EnvironmentError("event store " + path +
                           " is damaged and cannot be moved aside: " + base::errno_text(errno));
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    ::rename((path + suffix).c_str(), (target + suffix).c_str());
  }
  return target;
}

// One row of the events table, with the process lifecycle columns (exec/fork/snapshot/exit).
struct StoreRow {
  int64_t time_ms = 0;
  int class_uid = 0;
  std::string_view kind;
  EventKind event_kind = EventKind::kUnknown;
  uint32_t pid = 0;
  uint32_t ppid = 0;
  std::string exe;
  std::string json;
  uint64_t start_ns = 0;
  std::string cmdline;
  uint32_t uid = 0;
  int64_t auid = -1;

  // Its share of the queue's byte budget.
  size_t bytes() const { return json.size() + exe.size() + cmdline.size() + sizeof(StoreRow); }
};

}  // namespace

// The database and the thread that writes it. The pipeline hands rows over through a bounded
// queue that waits when full: the store is back-pressure, never a silent drop.
class EventStore::Writer {
 public:
  Writer(StoreOptions options, std::shared_ptr<ocsf::Formatter> formatter)
      : options_(std::move(options)),
        formatter_(std::move(formatter)),
        queue_(base::QueueLimits{options_.queue_capacity, options_.queue_max_bytes, 0},
               base::OnFull::kWait) {
    std::error_code ec;
    auto parent = std::filesystem::path(options_.path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    // A full disk at start is not fatal: the store waits for space, counting what it cannot keep.
    if (const std::string low = low_space(); !low.empty()) {
      pause(Pause::kLowSpace, low);
    } else {
      open_or_recover();
    }
    thread_ = std::thread([this] { run(); });
  }

  void open_or_recover() {
    std::string problem = open_checked();
    if (!problem.empty()) {
      // Never half-read, never silently reused: the damaged file is kept for the operator and
      // a fresh store takes its place.
      sqlite3_close(db_);
      db_ = nullptr;
      recovered_from_ = move_aside(options_.path);
      spdlog::error("event store {} is damaged ({}): moved to {}, starting a fresh store",
                    options_.path, problem, recovered_from_);
      problem = open_checked();
      if (!problem.empty()) {
        sqlite3_close(db_);
        throw EnvironmentError("cannot open event store " + options_.path + ": " + problem);
      }
    }
  }

  ~Writer() {
    queue_.close();
    thread_.join();
    sqlite3_close(db_);
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  ocsf::Formatter& formatter() { return *formatter_; }

  void enqueue(StoreRow row) {
    const size_t bytes = row.bytes();
    queue_.push(std::move(row), bytes);
  }

  void drain() { queue_.wait_idle(); }

  const std::string& path() const { return options_.path; }
  const std::string& recovered_from() const { return recovered_from_; }
  StoreStats stats() const {
    StoreStats out;
    {
      std::lock_guard lock(mutex_);
      out = stats_;
    }
    const base::QueueStats queue = queue_.stats();
    out.queue_waits = queue.full_waits;
    out.queue_depth = queue.depth;
    return out;
  }
  // Why the store is not writing now; "" while it writes.
  std::string paused() const {
    std::lock_guard lock(mutex_);
    return paused_;
  }

 private:
  void run() {
    // The store is background work: under CPU contention the protected workload comes first.
    // If the writer then falls behind, its bounded queue back-pressures the pipeline, and
    // anything the kernel cannot queue meanwhile is counted as lost, never silently dropped.
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kWriterNice);
    auto last_prune = std::chrono::steady_clock::now();
    for (;;) {
      std::vector<StoreRow> batch =
          queue_.pop_batch(options_.batch_size, options_.batch_size,
                           std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
      if (batch.empty()) {
        if (queue_.closed()) return;
        continue;
      }
      const Pause blocked = ready_to_write();
      const auto began = std::chrono::steady_clock::now();
      const bool ok = blocked == Pause::kNone && write_batch(batch);
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - began;
      {
        std::lock_guard lock(mutex_);
        if (blocked == Pause::kNone) stats_.commits.observe(took.count());
        (ok ? stats_.written : stats_.not_written) += batch.size();
        if (blocked == Pause::kLowSpace) stats_.dropped_low_space += batch.size();
      }
      queue_.done(batch.size());
      if (db_ != nullptr && std::chrono::steady_clock::now() - last_prune >=
                                std::chrono::milliseconds(options_.prune_interval_ms)) {
        prune();
        last_prune = std::chrono::steady_clock::now();
      }
    }
  }

  bool write_batch(const std::vector<StoreRow>& rows);
  void prune();

  // SQLite maps its WAL index: on a filesystem with no space left, a page it touches there can
  // kill the whole agent with SIGBUS instead of returning an error. So the store stops writing
  // while its filesystem has less than min_free_bytes, before SQLite gets there.
  std::string low_space() const {
    const auto parent = std::filesystem::path(options_.path).parent_path();
    struct statvfs fs {};
    if (statvfs(parent.empty() ? "." : parent.c_str(), &fs) != 0) return {};
    const uint64_t free = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
    if (free >= options_.min_free_bytes) return {};
    return std::to_string(free) + " bytes free on its filesystem, below the " +
           std::to_string(options_.min_free_bytes) + " it keeps free (store.min_free_mib)";
  }

  // Why the writer is not writing: the batch is then counted as not written, by this reason
  // (a store that cannot be opened counts as a database error).
  enum class Pause : uint8_t { kNone, kLowSpace, kUnavailable };

  Pause ready_to_write() {
    if (std::string low = low_space(); !low.empty()) {
      pause(Pause::kLowSpace, low);
      return Pause::kLowSpace;
    }
    if (db_ == nullptr) {
      try {
        open_or_recover();
      } catch (const std::exception& e) {
        pause(Pause::kUnavailable, e.what());
        return Pause::kUnavailable;
      }
    }
    std::lock_guard lock(mutex_);
    if (pause_ != Pause::kNone) {
      spdlog::info("event store {}: writing again ({} events were not written meanwhile)",
                   options_.path, stats_.not_written);
      pause_ = Pause::kNone;
      paused_.clear();
    }
    return Pause::kNone;
  }

  // Logged when the reason changes, not for every batch (the free space changes all the time).
  void pause(Pause reason, const std::string& why) {
    std::lock_guard lock(mutex_);
    paused_ = why;
    if (pause_ == reason) return;
    pause_ = reason;
    spdlog::error("event store {}: not writing, events are counted as not written: {}",
                  options_.path, why);
  }

  // Opens (creating it 0600: it holds every command line on the host), checks and prepares the
  // database; returns what is wrong with it, "" when it is usable. Errors the file's content
  // cannot cause (no directory, no permission, a full disk) are thrown, naming the file.
  std::string open_checked() {
    // SQLite gives its -wal and -shm files the database file's mode and owners.
    const base::UniqueFd file(base::open_private_file(options_.path, O_RDWR));
    if (!file) {
      throw EnvironmentError("cannot open event store " + options_.path + ": " +
                             base::errno_text(errno));
    }
    if (sqlite3_open_v2(options_.path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK) {
      std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw EnvironmentError("cannot open event store " + options_.path + ": " + message);
    }
    try {
      std::string check = integrity_problem(db_);
      if (!check.empty()) return check;
      // Incremental auto-vacuum lets pruning give space back, so the size bound holds on disk.
      base::exec_sql(db_, "PRAGMA auto_vacuum=INCREMENTAL;");
      base::exec_sql(db_, kSchema);
    } catch (const std::exception& e) {
      const int code = sqlite3_errcode(db_);
      if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) return e.what();
      throw EnvironmentError("event store " + options_.path + ": " + e.what());
    }
    return {};
  }

  std::string recovered_from_;  // where a damaged store found at open was moved
  Pause pause_ = Pause::kNone;
  std::string paused_;  // why the store is not writing now; "" while it writes
  std::chrono::steady_clock::time_point last_error_log_{};
  uint64_t unlogged_failures_ = 0;

  StoreOptions options_;
  std::shared_ptr<ocsf::Formatter> formatter_;
  sqlite3* db_ = nullptr;
  base::BoundedQueue<StoreRow> queue_;
  mutable std::mutex mutex_;
  StoreStats stats_;
  std::thread thread_;
};

EventStore::EventStore(StoreOptions options, std::shared_ptr<ocsf::Formatter> formatter)
    : writer_(std::make_unique<Writer>(std::move(options), std::move(formatter))) {}

EventStore::~EventStore() = default;

void EventStore::drain() {
  writer_->drain();
}

StoreStats EventStore::stats() const {
  return writer_->stats();
}

void EventStore::consume(const Event& event, std::string_view ocsf) {
  StoreRow row;
  const ocsf::Classification c = ocsf::classify(event);
  row.time_ms = static_cast<int64_t>(event.wall_ns / 1'000'000ULL);
  row.class_uid = c.class_uid;
  row.kind = kind_name(event.kind);
  row.event_kind = event.kind;
  static const ProcessView kUnknown;
  const ProcessView& subject = event.process ? *event.process : kUnknown;
  row.pid = subject.pid != 0 ? subject.pid : event.task.tgid;
  row.ppid = subject.pid != 0 ? subject.ppid : event.task.ppid;
  row.exe = subject.exe;
  row.start_ns = subject.start_ns;
  row.cmdline = subject.cmdline;
  row.uid = subject.uid;
  row.auid = subject.auid == TaskIdentity::kNoLoginUid ? -1 : int64_t{subject.auid};
  if (ocsf.empty()) {
    writer_->formatter().format(event, row.json);
  } else {
    row.json.assign(ocsf);
  }
  writer_->enqueue(std::move(row));
}

void EventStore::consume_finding(std::string_view ocsf_finding, const Event& trigger) {
  StoreRow row;
  row.time_ms = static_cast<int64_t>(trigger.wall_ns / 1'000'000ULL);
  row.class_uid = 2004;
  row.kind = "finding";
  row.pid = trigger.task.tgid;
  row.ppid = trigger.task.ppid;
  row.exe = trigger.process ? trigger.process->exe : std::string();
  row.uid = trigger.task.uid;
  row.json.assign(ocsf_finding);
  writer_->enqueue(std::move(row));
}

void EventStore::write_record(const OutOfBandRecord& record) {
  if (record.kind != OutOfBandRecord::Kind::kAudit) return;
  StoreRow row;
  row.time_ms = record.time_ms;
  row.class_uid = record.class_uid;
  row.kind = "remediation";
  row.pid = record.pid;
  row.exe = record.exe;
  row.uid = record.uid;
  row.json = record.json;
  writer_->enqueue(std::move(row));
}

namespace {

// The footprint on disk: the database and its write-ahead log.
uint64_t bytes_on_disk(const std::string& path) {
  uint64_t bytes = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path + suffix, ec);
    if (!ec) bytes += size;
  }
  return bytes;
}

}  // namespace

nlohmann::json EventStore::status() const {
  const StoreStats s = stats();
  nlohmann::json out = {{"path", writer_->path()},
                        {"written", s.written},
                        {"not_written", s.not_written},
                        {"not_written_by_reason",
                         {{"database_error", s.not_written - s.dropped_low_space},
                          {"low_disk_space", s.dropped_low_space}}},
                        {"queue_waits", s.queue_waits},
                        {"pruned", s.pruned},
                        {"write_errors", s.write_errors}};
  if (const std::string paused = writer_->paused(); !paused.empty()) out["paused"] = paused;
  out["bytes_on_disk"] = bytes_on_disk(writer_->path());
  if (!writer_->recovered_from().empty()) out["damaged_store_moved_to"] = writer_->recovered_from();
  return out;
}

void EventStore::add_metrics(metrics::Snapshot& snapshot, const std::string& /*name*/) const {
  const StoreStats s = stats();
  const auto n = [](uint64_t v) { return static_cast<double>(v); };
  snapshot.counter("palisade_store_rows_written_total",
                   "Events and findings committed to the store", n(s.written));
  for (const auto& [reason, count] :
       {std::pair{"database_error", s.not_written - s.dropped_low_space},
        std::pair{"low_disk_space", s.dropped_low_space}}) {
    snapshot.counter("palisade_store_rows_not_written_total",
                     "Events the store accepted but could not keep, by reason", n(count),
                     {{"reason", reason}});
  }
  snapshot.counter("palisade_store_failed_batches_total", "Store transactions that failed",
                   n(s.write_errors));
  snapshot.counter("palisade_store_queue_waits_total",
                   "Times the pipeline waited for the store's writer (back-pressure)",
                   n(s.queue_waits));
  snapshot.counter("palisade_store_pruned_rows_total", "Rows removed by retention", n(s.pruned));
  snapshot.gauge("palisade_store_queue_depth", "Events waiting for the store's writer",
                 n(s.queue_depth));
  snapshot.gauge("palisade_store_paused", "1 while the store is not writing (see status)",
                 writer_->paused().empty() ? 0 : 1);
  snapshot.histogram("palisade_store_commit_seconds", "Duration of each store transaction",
                     s.commits);
  snapshot.gauge("palisade_store_bytes_on_disk", "The store's database and write-ahead log",
                 n(bytes_on_disk(writer_->path())));
}

bool EventStore::Writer::write_batch(const std::vector<StoreRow>& rows) {
  try {
    base::exec_sql(db_, "BEGIN");
    base::SqliteStatement insert(db_,
                                 "INSERT INTO events(time_ms,class_uid,kind,pid,ppid,exe,json) "
                                 "VALUES(?,?,?,?,?,?,?)");
    base::SqliteStatement upsert(
        db_,
        "INSERT INTO processes(pid,start_ns,ppid,exe,cmdline,uid,auid,started_ms) "
        "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(pid,start_ns) DO UPDATE SET "
        "exe=excluded.exe, cmdline=excluded.cmdline, uid=excluded.uid");
    base::SqliteStatement exited(db_,
                                 "UPDATE processes SET exited_ms=? WHERE pid=? AND start_ns=?");
    for (const StoreRow& row : rows) {
      const bool lifecycle = row.event_kind == EventKind::kProcessExec ||
                             row.event_kind == EventKind::kProcessFork ||
                             row.event_kind == EventKind::kProcessSnapshot;
      if (lifecycle) {
        upsert.bind(1, row.pid).bind(2, static_cast<int64_t>(row.start_ns)).bind(3, row.ppid);
        upsert.bind(4, row.exe).bind(5, row.cmdline).bind(6, row.uid).bind(7, row.auid);
        upsert.bind(8, row.time_ms);
        upsert.step();
        upsert.reset();
      }
      if (row.event_kind == EventKind::kProcessExit) {
        exited.bind(1, row.time_ms).bind(2, row.pid).bind(3, static_cast<int64_t>(row.start_ns));
        exited.step();
        exited.reset();
      }
      if (row.event_kind == EventKind::kProcessSnapshot) continue;
      insert.bind(1, row.time_ms).bind(2, row.class_uid).bind(3, std::string(row.kind));
      insert.bind(4, row.pid).bind(5, row.ppid).bind(6, row.exe).bind(7, row.json);
      if (insert.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db_));
      insert.reset();
    }
    base::exec_sql(db_, "COMMIT");
    return true;
  } catch (const std::exception& e) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    std::lock_guard lock(mutex_);
    stats_.write_errors++;
    // Once a minute at most: a failing disk must not also flood the log.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_error_log_ >= std::chrono::minutes(1)) {
      spdlog::error(
          "event store {}: batch of {} events not written: {} ({} more failed batches "
          "since the last message)",
          options_.path, rows.size(), e.what(), unlogged_failures_);
      last_error_log_ = now;
      unlogged_failures_ = 0;
    } else {
      ++unlogged_failures_;
    }
    return false;
  }
}

void EventStore::Writer::prune() {
  try {
    const int64_t cutoff =
        base::wall_now_ms() - static_cast<int64_t>(options_.max_age_seconds * 1000);
    base::SqliteStatement old_events(db_, "DELETE FROM events WHERE time_ms < ?");
    old_events.bind(1, cutoff).step();
    uint64_t removed = static_cast<uint64_t>(sqlite3_changes(db_));
    base::SqliteStatement old_procs(
        db_, "DELETE FROM processes WHERE exited_ms IS NOT NULL AND exited_ms < ?");
    old_procs.bind(1, cutoff).step();
    for (int round = 0; round < 20; ++round) {
      base::SqliteStatement size(
          db_, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
      if (size.step() != SQLITE_ROW ||
          static_cast<uint64_t>(size.int_at(0)) <= options_.max_bytes) {
        break;
      }
      // Over the size bound: drop the oldest tenth of the events and give the pages back.
      base::exec_sql(
          db_,
          "DELETE FROM events WHERE id <= (SELECT MIN(id) + (MAX(id) - MIN(id)) / 10 FROM "
          "events)");
      removed += static_cast<uint64_t>(sqlite3_changes(db_));
      base::exec_sql(db_, "PRAGMA incremental_vacuum;");
    }
    base::exec_sql(db_, "PRAGMA incremental_vacuum;");
    // Pruning rewrites many pages: the WAL grows by them, and a WAL file keeps its high-water
    // size. Checkpointed and truncated here, the store's footprint on disk stays bounded by
    // max_bytes plus journal_size_limit (64 MiB) between passes (seen at 2.6 GB in the soak).
    base::exec_sql(db_, "PRAGMA wal_checkpoint(TRUNCATE);");
    std::lock_guard lock(mutex_);
    stats_.pruned += removed;
  } catch (const std::exception& e) {
    spdlog::error("event store {}: retention pass failed: {}", options_.path, e.what());
  }
}

EventReader::EventReader(const std::string& path) : path_(path) {
  if (!std::filesystem::exists(path)) throw EnvironmentError("no event store at " + path);
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string message = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    throw EnvironmentError("cannot open event store " + path + ": " + message);
  }
  sqlite3_busy_timeout(db_, 2000);
  // A damaged store is refused, not half-read: an answer from it could miss any event.
  std::string problem;
  try {
    problem = integrity_problem(db_);
  } catch (const std::exception& e) {
    problem = e.what();
  }
  if (!problem.empty()) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw EnvironmentError("event store " + path + " is damaged: " + problem);
  }
}

// Every row, or an error naming the file: a query that stops early must not look complete.
void EventReader::check_done(int rc) const {
  if (rc != SQLITE_DONE) {
    throw EnvironmentError("reading event store " + path_ + ": " + sqlite3_errmsg(db_));
  }
}

EventReader::~EventReader() {
  sqlite3_close(db_);
}

std::vector<std::string> EventReader::events(const EventQuery& q) {
  std::string sql = "SELECT json FROM events WHERE 1=1";
  if (q.since_ms) sql += " AND time_ms >= :since";
  if (q.until_ms) sql += " AND time_ms <= :until";
  if (q.pid) sql += " AND pid = :pid";
  if (q.exe) sql += " AND exe GLOB :exe";
  if (q.class_uid) sql += " AND class_uid = :class";
  sql += " ORDER BY id LIMIT :limit";
  base::SqliteStatement stmt(db_, sql.c_str());
  auto bind = [&stmt](const char* name, auto value) {
    int index = sqlite3_bind_parameter_index(stmt.get(), name);
    if (index > 0) stmt.bind(index, value);
  };
  if (q.since_ms) bind(":since", static_cast<int64_t>(*q.since_ms));
  if (q.until_ms) bind(":until", static_cast<int64_t>(*q.until_ms));
  if (q.pid) bind(":pid", static_cast<int64_t>(*q.pid));
  if (q.exe) bind(":exe", *q.exe);
  if (q.class_uid) bind(":class", static_cast<int64_t>(*q.class_uid));
  bind(":limit", static_cast<int64_t>(q.limit));
  std::vector<std::string> out;
  int rc = 0;
  while ((rc = stmt.step()) == SQLITE_ROW) out.push_back(stmt.text_at(0));
  check_done(rc);
  return out;
}

namespace {
StoredProcess read_process(const base::SqliteStatement& s) {
  StoredProcess p;
  p.pid = static_cast<uint32_t>(s.int_at(0));
  p.start_ns = static_cast<uint64_t>(s.int_at(1));
  p.ppid = static_cast<uint32_t>(s.int_at(2));
  p.exe = s.text_at(3);
  p.cmdline = s.text_at(4);
  p.uid = static_cast<uint32_t>(s.int_at(5));
  p.auid = s.int_at(6);
  p.started_ms = static_cast<uint64_t>(s.int_at(7));
  if (!s.null_at(8)) p.exited_ms = static_cast<uint64_t>(s.int_at(8));
  return p;
}
constexpr const char* kProcessColumns =
    "pid,start_ns,ppid,exe,cmdline,uid,auid,started_ms,exited_ms";
}  // namespace

std::optional<StoredProcess> EventReader::latest(uint32_t pid, uint64_t not_after_ns) {
  std::string sql = std::string("SELECT ") + kProcessColumns +
                    " FROM processes WHERE pid=? AND start_ns<=? ORDER BY start_ns DESC LIMIT 1";
  base::SqliteStatement stmt(db_, sql.c_str());
  stmt.bind(1, static_cast<int64_t>(pid)).bind(2, static_cast<int64_t>(not_after_ns));
  if (stmt.step() != SQLITE_ROW) return std::nullopt;
  return read_process(stmt);
}

std::vector<StoredProcess> EventReader::ancestry(uint32_t pid) {
  std::vector<StoredProcess> chain;
  auto current = latest(pid, INT64_MAX);
  for (size_t depth = 0; current && depth < 128; ++depth) {
    chain.push_back(*current);
    if (current->ppid == 0 || current->ppid == current->pid) break;
    current = latest(current->ppid, current->start_ns);  // the parent existed before the child
  }
  return chain;
}

std::vector<StoredProcess> EventReader::descendants(uint32_t pid) {
  std::vector<StoredProcess> out;
  auto root = latest(pid, INT64_MAX);
  if (!root) return out;
  std::string sql = std::string("SELECT ") + kProcessColumns +
                    " FROM processes WHERE ppid=? AND start_ns>=? ORDER BY start_ns";
  std::vector<StoredProcess> stack{*root};
  while (!stack.empty() && out.size() < 100000) {
    StoredProcess p = stack.back();
    stack.pop_back();
    out.push_back(p);
    base::SqliteStatement stmt(db_, sql.c_str());
    stmt.bind(1, static_cast<int64_t>(p.pid)).bind(2, static_cast<int64_t>(p.start_ns));
    std::vector<StoredProcess> children;
    while (stmt.step() == SQLITE_ROW) children.push_back(read_process(stmt));
    stack.insert(stack.end(), children.rbegin(), children.rend());
  }
  return out;
}

}  // namespace palisade::runtime
