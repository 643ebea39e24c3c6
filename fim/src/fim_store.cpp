#include "fim_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "palisade/base/clock.h"
#include "palisade/base/content_hasher.h"
#include "palisade/base/errno_text.h"

namespace palisade::fim {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS files (
  path TEXT PRIMARY KEY,
  type INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  gid INTEGER NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL,
  inode INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  fast_hash TEXT NOT NULL,
  link_target TEXT NOT NULL,
  protected INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_protected ON files(sha256) WHERE protected = 1;
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  files INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  one_filesystem INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS run_paths (
  run_id INTEGER NOT NULL REFERENCES runs(id),
  kind TEXT NOT NULL,
  position INTEGER NOT NULL,
  path TEXT NOT NULL,
  PRIMARY KEY (run_id, kind, position)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approvals (
  id INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  uid INTEGER NOT NULL,
  scope TEXT NOT NULL,
  added INTEGER NOT NULL,
  removed INTEGER NOT NULL,
  modified INTEGER NOT NULL);
)sql";

constexpr const char* kColumns =
    "path, type, mode, uid, gid, size, mtime_ns, ctime_ns, inode, sha256, fast_hash, "
    "link_target, protected";

// Temporary copies older than this are leftovers of an interrupted run, not one in progress.
constexpr auto kStaleTemp = std::chrono::hours(1);

std::string sql(const std::string& head, const std::string& tail = "") {
  return head + kColumns + tail;
}

// The range of paths below dir, as [low, high) in byte order: "/a/" up to "/a0" ('0' follows
// '/'), or everything absolute for "/".
std::pair<std::string, std::string> subtree_range(const std::string& dir) {
  const std::string low = dir == "/" ? "/" : dir + "/";
  std::string high = low;
  high.back() = '0';
  return {low, high};
}

// The database holds a hash of every watched file: readable by root only from the first byte.
void create_private_file(const std::string& path) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::runtime_error(path + ": cannot create: " + base::errno_text(errno));
  close(fd);
}

}  // namespace

FileRecord record_from_row(const base::SqliteStatement& row) {
  FileRecord r;
  r.path = row.text_at(0);
  r.type = static_cast<FileType>(row.int_at(1));
  r.mode = static_cast<uint32_t>(row.int_at(2));
  r.uid = static_cast<uint32_t>(row.int_at(3));
  r.gid = static_cast<uint32_t>(row.int_at(4));
  r.size = static_cast<uint64_t>(row.int_at(5));
  r.mtime_ns = row.int_at(6);
  r.ctime_ns = row.int_at(7);
  r.inode = static_cast<uint64_t>(row.int_at(8));
  r.sha256 = row.text_at(9);
  r.fast_hash = row.text_at(10);
  r.link_target = row.text_at(11);
  r.is_protected = row.int_at(12) != 0;
  return r;
}

FimStore::Impl::Transaction::Transaction(sqlite3* db) : db_(db) {
  base::exec_sql(db_, "BEGIN IMMEDIATE");
}

FimStore::Impl::Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void FimStore::Impl::Transaction::commit() {
  base::exec_sql(db_, "COMMIT");
  done_ = true;
}

FimStore::Impl::Impl(FimStoreOptions store_options) : options(std::move(store_options)) {
  const fs::path parent = fs::path(options.db_path).parent_path();
  std::error_code ec;
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec) throw std::runtime_error(parent.string() + ": cannot create: " + ec.message());
  create_private_file(options.db_path);
  if (sqlite3_open_v2(options.db_path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error(options.db_path + ": cannot open: " + message);
  }
  // The agent may confirm while an operator approves: wait for each other, briefly.
  sqlite3_busy_timeout(db, 5000);
  try {
    base::exec_sql(db, kSchema);
  } catch (const std::exception& e) {
    sqlite3_close(db);
    throw std::runtime_error(options.db_path + ": " + e.what());
  }
}

FimStore::Impl::~Impl() {
  // Statements first: a connection with live statements does not close.
  find_.reset();
  put_.reset();
  erase_.reset();
  mark_seen_.reset();
  data_version_.reset();
  sqlite3_close(db);
}

base::SqliteStatement& FimStore::Impl::prepared(std::unique_ptr<base::SqliteStatement>& slot,
                                                const char* text) {
  if (!slot) slot = std::make_unique<base::SqliteStatement>(db, text);
  slot->reset();
  return *slot;
}

std::optional<FileRecord> FimStore::Impl::find(const std::string& path) {
  static const std::string find_sql = sql("SELECT ", " FROM files WHERE path = ?");
  base::SqliteStatement& s = prepared(find_, find_sql.c_str());
  s.bind(1, path);
  if (s.step() != SQLITE_ROW) return std::nullopt;
  return record_from_row(s);
}

void FimStore::Impl::put(const FileRecord& r) {
  static const std::string put_sql =
      sql("INSERT OR REPLACE INTO files (", ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
  base::SqliteStatement& s = prepared(put_, put_sql.c_str());
  s.bind(1, r.path)
      .bind(2, static_cast<int64_t>(r.type))
      .bind(3, int64_t{r.mode})
      .bind(4, int64_t{r.uid})
      .bind(5, int64_t{r.gid})
      .bind(6, static_cast<int64_t>(r.size))
      .bind(7, r.mtime_ns)
      .bind(8, r.ctime_ns)
      .bind(9, static_cast<int64_t>(r.inode))
      .bind(10, r.sha256)
      .bind(11, r.fast_hash)
      .bind(12, r.link_target)
      .bind(13, int64_t{r.is_protected ? 1 : 0});
  if (s.step() != SQLITE_DONE) {
    throw std::runtime_error(r.path + ": cannot store the record: " + sqlite3_errmsg(db));
  }
}

void FimStore::Impl::erase(const std::string& path) {
  base::SqliteStatement& s = prepared(erase_, "DELETE FROM files WHERE path = ?");
  s.bind(1, path);
  if (s.step() != SQLITE_DONE) {
    throw std::runtime_error(path + ": cannot delete the record: " + sqlite3_errmsg(db));
  }
}

void FimStore::Impl::clear() {
  base::exec_sql(db, "DELETE FROM files");
}

void FimStore::Impl::add_run(const BaselineRun& run, const BaselineOptions& scope) {
  base::SqliteStatement insert(
      db,
      "INSERT INTO runs (time_ms, files, bytes, duration_ms, one_filesystem) "
      "VALUES (?,?,?,?,?)");
  insert.bind(1, run.time_ms)
      .bind(2, static_cast<int64_t>(run.files))
      .bind(3, static_cast<int64_t>(run.bytes))
      .bind(4, static_cast<int64_t>(run.duration_ms))
      .bind(5, int64_t{scope.one_filesystem ? 1 : 0});
  if (insert.step() != SQLITE_DONE) {
    throw std::runtime_error(std::string("cannot record the baseline run: ") + sqlite3_errmsg(db));
  }
  const int64_t id = sqlite3_last_insert_rowid(db);
  base::SqliteStatement path(
      db, "INSERT INTO run_paths (run_id, kind, position, path) VALUES (?,?,?,?)");
  for (const auto& [kind, list] :
       {std::pair{"root", &scope.roots}, std::pair{"exclude", &scope.excludes},
        std::pair{"protect", &scope.protect}}) {
    for (size_t i = 0; i < list->size(); ++i) {
      path.reset();
      path.bind(1, id)
          .bind(2, std::string(kind))
          .bind(3, static_cast<int64_t>(i))
          .bind(4, (*list)[i]);
      if (path.step() != SQLITE_DONE) {
        throw std::runtime_error(std::string("cannot record the baseline scope: ") +
                                 sqlite3_errmsg(db));
      }
    }
  }
  options_cache.reset();
}

void FimStore::Impl::add_approval(const std::vector<std::string>& scope,
                                  const ApproveReport& report) {
  base::SqliteStatement insert(
      db,
      "INSERT INTO approvals (time_ms, uid, scope, added, removed, modified) "
      "VALUES (?,?,?,?,?,?)");
  // For people reading the audit trail; a name that is not UTF-8 is shown with replacements.
  const std::string text =
      nlohmann::json(scope).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  insert.bind(1, base::wall_now_ms())
      .bind(2, int64_t{getuid()})
      .bind(3, text)
      .bind(4, static_cast<int64_t>(report.added))
      .bind(5, static_cast<int64_t>(report.removed))
      .bind(6, static_cast<int64_t>(report.modified));
  if (insert.step() != SQLITE_DONE) {
    throw std::runtime_error(std::string("cannot record the approval: ") + sqlite3_errmsg(db));
  }
}

std::optional<BaselineOptions> FimStore::Impl::stored_options() {
  // data_version moves when another connection commits (an operator's new baseline while the
  // agent keeps its store open): only then is the scope read again.
  base::SqliteStatement& version = prepared(data_version_, "PRAGMA data_version");
  const int64_t now = version.step() == SQLITE_ROW ? version.int_at(0) : -1;
  if (options_cache && now == options_version) return options_cache;
  options_cache.reset();
  options_version = now;
  base::SqliteStatement run(db, "SELECT id, one_filesystem FROM runs ORDER BY id DESC LIMIT 1");
  if (run.step() != SQLITE_ROW) return std::nullopt;
  BaselineOptions out;
  out.one_filesystem = run.int_at(1) != 0;
  base::SqliteStatement paths(
      db, "SELECT kind, path FROM run_paths WHERE run_id = ? ORDER BY kind, position");
  paths.bind(1, run.int_at(0));
  while (paths.step() == SQLITE_ROW) {
    const std::string kind = paths.text_at(0);
    auto& list = kind == "root" ? out.roots : kind == "exclude" ? out.excludes : out.protect;
    list.push_back(paths.text_at(1));
  }
  options_cache = out;
  return out;
}

void FimStore::Impl::start_seen() {
  base::exec_sql(db,
                 "CREATE TEMP TABLE IF NOT EXISTS seen (path TEXT PRIMARY KEY) WITHOUT ROWID;"
                 "DELETE FROM temp.seen;");
}

void FimStore::Impl::mark_seen(const std::string& path) {
  base::SqliteStatement& s =
      prepared(mark_seen_, "INSERT OR IGNORE INTO temp.seen (path) VALUES (?)");
  s.bind(1, path);
  if (s.step() != SQLITE_DONE) {
    throw std::runtime_error(path + ": cannot mark as seen: " + sqlite3_errmsg(db));
  }
}

void FimStore::Impl::mark_subtree_seen(const std::string& dir) {
  const auto [low, high] = subtree_range(dir);
  base::SqliteStatement s(db,
                          "INSERT OR IGNORE INTO temp.seen (path) "
                          "SELECT path FROM files WHERE path = ? OR (path >= ? AND path < ?)");
  s.bind(1, dir).bind(2, low).bind(3, high);
  if (s.step() != SQLITE_DONE) {
    throw std::runtime_error(dir + ": cannot mark as unknown: " + sqlite3_errmsg(db));
  }
}

void FimStore::Impl::for_each_unseen(const std::vector<std::string>& roots,
                                     const std::function<bool(FileRecord&&)>& fn) {
  static const std::string unseen_sql =
      sql("SELECT ",
          " FROM files WHERE (path = ? OR (path >= ? AND path < ?)) "
          "AND path NOT IN (SELECT path FROM temp.seen) ORDER BY path");
  base::SqliteStatement s(db, unseen_sql.c_str());
  for (const auto& root : roots) {
    const auto [low, high] = subtree_range(root);
    s.reset();
    s.bind(1, root).bind(2, low).bind(3, high);
    int rc = SQLITE_ROW;
    while ((rc = s.step()) == SQLITE_ROW) {
      if (!fn(record_from_row(s))) return;
    }
    if (rc != SQLITE_DONE) {
      throw std::runtime_error(std::string("cannot list removed entries: ") + sqlite3_errmsg(db));
    }
  }
}

std::string FimStore::Impl::content_path(const std::string& sha256) const {
  return (fs::path(options.content_dir) / sha256).string();
}

void FimStore::Impl::ensure_content_dir() const {
  const std::string& dir = options.content_dir;
  std::error_code ec;
  const fs::path parent = fs::path(dir).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw std::runtime_error(dir + ": cannot create the content store: " + base::errno_text(errno));
  }
  // Approved copies are what restore trusts: the directory must be ours and closed to others.
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw std::runtime_error(dir + ": the content store is not a directory (or is a symlink)");
  }
  if (st.st_uid != geteuid()) {
    throw std::runtime_error(dir + ": the content store belongs to uid " +
                             std::to_string(st.st_uid) + ", not to us");
  }
  if ((st.st_mode & 07777) != 0700 && chmod(dir.c_str(), 0700) != 0) {
    throw std::runtime_error(dir +
                             ": cannot make the content store 0700: " + base::errno_text(errno));
  }
}

base::UniqueFd FimStore::Impl::open_content_temp(std::string& temp_path) const {
  ensure_content_dir();
  temp_path = (fs::path(options.content_dir) / ".tmp-XXXXXX").string();
  base::UniqueFd fd(mkostemp(temp_path.data(), O_CLOEXEC));
  if (!fd) {
    throw std::runtime_error(options.content_dir +
                             ": cannot create a copy: " + base::errno_text(errno));
  }
  return fd;
}

void FimStore::Impl::keep_content(const std::string& temp_path, int fd,
                                  const std::string& sha256) const {
  const std::string final_path = content_path(sha256);
  if (fchmod(fd, 0400) != 0 || fsync(fd) != 0) {
    const int error = errno;
    unlink(temp_path.c_str());
    throw std::runtime_error(temp_path + ": cannot seal the copy: " + base::errno_text(error));
  }
  // Same content, same name: a copy already there is kept and this one dropped.
  if (renameat2(AT_FDCWD, temp_path.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) != 0) {
    const int error = errno;
    unlink(temp_path.c_str());
    if (error != EEXIST) {
      throw std::runtime_error(final_path + ": cannot keep the copy: " + base::errno_text(error));
    }
  }
}

void FimStore::Impl::collect_garbage() {
  std::error_code ec;
  base::SqliteStatement used(db, "SELECT 1 FROM files WHERE protected = 1 AND sha256 = ? LIMIT 1");
  const auto stale_before = fs::file_time_type::clock::now() - kStaleTemp;
  for (const auto& entry : fs::directory_iterator(options.content_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0) {
      if (fs::last_write_time(entry.path(), ec) < stale_before) fs::remove(entry.path(), ec);
      continue;
    }
    used.reset();
    used.bind(1, name);
    if (used.step() != SQLITE_ROW) fs::remove(entry.path(), ec);
  }
}

FimStore::FimStore(FimStoreOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

FimStore::~FimStore() = default;

const FimStoreOptions& FimStore::options() const {
  return impl_->options;
}

std::optional<FileRecord> FimStore::find(const std::string& path) {
  return impl_->find(path);
}

uint64_t FimStore::record_count() {
  base::SqliteStatement s(impl_->db, "SELECT count(*) FROM files");
  return s.step() == SQLITE_ROW ? static_cast<uint64_t>(s.int_at(0)) : 0;
}

std::optional<BaselineRun> FimStore::last_run() {
  base::SqliteStatement s(
      impl_->db,
      "SELECT id, time_ms, files, bytes, duration_ms FROM runs ORDER BY id DESC LIMIT 1");
  if (s.step() != SQLITE_ROW) return std::nullopt;
  BaselineRun run;
  run.id = s.int_at(0);
  run.time_ms = s.int_at(1);
  run.files = static_cast<uint64_t>(s.int_at(2));
  run.bytes = static_cast<uint64_t>(s.int_at(3));
  run.duration_ms = static_cast<uint64_t>(s.int_at(4));
  if (auto scope = impl_->stored_options()) run.roots = scope->roots;
  return run;
}

BaselineOptions FimStore::baseline_options() {
  auto scope = impl_->stored_options();
  if (!scope) throw std::runtime_error(impl_->options.db_path + ": no baseline yet");
  return *scope;
}

std::string FimStore::content_path(const std::string& sha256) const {
  return impl_->content_path(sha256);
}

}  // namespace palisade::fim
