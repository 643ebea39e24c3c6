#include "palisade/runtime/event_store.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "palisade/base/clock.h"
#include "palisade/base/sqlite_statement.h"

namespace palisade::runtime {
namespace {

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
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

}  // namespace

struct EventStore::Row {
  int64_t time_ms;
  int class_uid;
  std::string_view kind;
  EventKind event_kind;
  uint32_t pid;
  uint32_t ppid;
  std::string exe;
  std::string json;
  // Process lifecycle columns (exec/fork/snapshot/exit).
  uint64_t start_ns;
  std::string cmdline;
  uint32_t uid;
  int64_t auid;
};

EventStore::EventStore(StoreOptions options, std::shared_ptr<ocsf::Formatter> formatter)
    : options_(std::move(options)), formatter_(std::move(formatter)) {
  std::error_code ec;
  auto parent = std::filesystem::path(options_.path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (sqlite3_open_v2(options_.path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open event store " + options_.path + ": " + message);
  }
  // Incremental auto-vacuum lets pruning give space back, so the size bound holds on disk.
  base::exec_sql(db_, "PRAGMA auto_vacuum=INCREMENTAL;");
  base::exec_sql(db_, kSchema);
  writer_ = std::thread([this] { writer_loop(); });
}

EventStore::~EventStore() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  not_empty_.notify_all();
  writer_.join();
  sqlite3_close(db_);
}

void EventStore::consume(const Event& event, std::string_view ocsf) {
  Row row;
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
    formatter_->format(event, row.json);
  } else {
    row.json.assign(ocsf);
  }
  enqueue(std::move(row));
}

void EventStore::consume_finding(std::string_view ocsf_finding, const Event& trigger) {
  Row row;
  row.time_ms = static_cast<int64_t>(trigger.wall_ns / 1'000'000ULL);
  row.class_uid = 2004;
  row.kind = "finding";
  row.event_kind = EventKind::kUnknown;
  row.pid = trigger.task.tgid;
  row.ppid = trigger.task.ppid;
  row.exe = trigger.process ? trigger.process->exe : std::string();
  row.start_ns = 0;
  row.uid = trigger.task.uid;
  row.auid = -1;
  row.json.assign(ocsf_finding);
  enqueue(std::move(row));
}

void EventStore::consume_audit(int class_uid, int64_t time_ms, uint32_t pid, const std::string& exe,
                               uint32_t uid, std::string ocsf_json) {
  Row row;
  row.time_ms = time_ms;
  row.class_uid = class_uid;
  row.kind = "remediation";
  row.event_kind = EventKind::kUnknown;
  row.pid = pid;
  row.ppid = 0;
  row.exe = exe;
  row.start_ns = 0;
  row.uid = uid;
  row.auid = -1;
  row.json = std::move(ocsf_json);
  enqueue(std::move(row));
}

void EventStore::enqueue(Row row) {
  std::unique_lock lock(mutex_);
  auto full = [this] {
    return queue_.size() >= options_.queue_capacity || queued_bytes_ >= options_.queue_max_bytes;
  };
  if (full()) {
    stats_.queue_waits++;
    not_empty_.notify_one();
    not_full_.wait(lock, [&] { return !full(); });
  }
  queued_bytes_ += row.json.size() + row.exe.size() + row.cmdline.size() + sizeof(Row);
  queue_.push_back(std::move(row));
  if (queue_.size() >= options_.batch_size) not_empty_.notify_one();
}

void EventStore::drain() {
  not_empty_.notify_one();
  std::unique_lock lock(mutex_);
  drained_.wait(lock, [this] { return queue_.empty() && in_flight_ == 0; });
}

StoreStats EventStore::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void EventStore::writer_loop() {
  // The store is background work: under CPU contention the protected workload comes first. If
  // the writer then falls behind, its bounded queue back-pressures the pipeline, and anything the
  // kernel cannot queue meanwhile is counted as lost, never silently dropped.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kWriterNice);
  auto last_prune = std::chrono::steady_clock::now();
  std::vector<Row> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      not_empty_.wait_for(lock, std::chrono::milliseconds(200),
                          [this] { return stopping_ || queue_.size() >= options_.batch_size; });
      if (queue_.empty()) {
        drained_.notify_all();
        if (stopping_) return;
        continue;
      }
      size_t n = std::min(queue_.size(), options_.batch_size);
      batch.clear();
      for (size_t i = 0; i < n; ++i) {
        const Row& front = queue_.front();
        queued_bytes_ -= front.json.size() + front.exe.size() + front.cmdline.size() + sizeof(Row);
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      in_flight_ = n;
    }
    not_full_.notify_all();
    write_batch(batch);
    {
      std::lock_guard lock(mutex_);
      in_flight_ = 0;
      stats_.written += batch.size();
    }
    drained_.notify_all();
    if (std::chrono::steady_clock::now() - last_prune >=
        std::chrono::milliseconds(options_.prune_interval_ms)) {
      prune();
      last_prune = std::chrono::steady_clock::now();
    }
  }
}

void EventStore::write_batch(std::vector<Row>& rows) {
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
    for (const Row& row : rows) {
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
  } catch (const std::exception& e) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    std::lock_guard lock(mutex_);
    stats_.write_errors++;
    spdlog::error("event store {}: batch of {} events not written: {}", options_.path, rows.size(),
                  e.what());
  }
}

void EventStore::prune() {
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
    std::lock_guard lock(mutex_);
    stats_.pruned += removed;
  } catch (const std::exception& e) {
    spdlog::error("event store {}: retention pass failed: {}", options_.path, e.what());
  }
}

EventReader::EventReader(const std::string& path) {
  if (!std::filesystem::exists(path)) throw std::runtime_error("no event store at " + path);
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string message = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    throw std::runtime_error("cannot open event store " + path + ": " + message);
  }
  sqlite3_busy_timeout(db_, 2000);
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
  while (stmt.step() == SQLITE_ROW) out.push_back(stmt.text_at(0));
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
