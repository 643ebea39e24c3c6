// The inspection history: SQLite in WAL mode, one row per inspection with the inventory as JSON,
// the oldest rows of a VM beyond keep_per_vm deleted in the same transaction as the new one.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "palisade/base/sqlite_statement.h"
#include "palisade/hypervisor/guest_inspection.h"

namespace palisade::hypervisor {
namespace {

constexpr const char* kSchema = R"sql(
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS inspections (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  vm_uuid TEXT NOT NULL,
  vm_name TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  method TEXT NOT NULL,
  inventory TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inspections_by_vm ON inspections (vm_uuid, id);
)sql";

}  // namespace

struct InspectionStore::Impl {
  std::string path;
  size_t keep_per_vm;
  sqlite3* db = nullptr;

  ~Impl() { sqlite3_close(db); }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path + ": " + what + ": " + sqlite3_errmsg(db));
  }

  // The shared helpers' errors, with the store's path in front.
  void exec(const char* sql) {
    try {
      base::exec_sql(db, sql);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }

  base::SqliteStatement prepare(const char* sql) {
    try {
      return base::SqliteStatement(db, sql);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }
};

InspectionStore::InspectionStore(const std::string& path, size_t keep_per_vm)
    : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  impl_->keep_per_vm = keep_per_vm == 0 ? 1 : keep_per_vm;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) throw std::runtime_error(parent.string() + ": cannot create: " + ec.message());
  // Inventories name accounts, keys and sudo rules: readable by the owner only, from the start.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::runtime_error(path + ": cannot create: " + std::strerror(errno));
  ::close(fd);
  if (sqlite3_open_v2(path.c_str(), &impl_->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    const std::string message = impl_->db != nullptr ? sqlite3_errmsg(impl_->db) : "out of memory";
    throw std::runtime_error(path + ": cannot open: " + message);
  }
  sqlite3_busy_timeout(impl_->db, 5000);
  impl_->exec(kSchema);
}

InspectionStore::~InspectionStore() = default;

void InspectionStore::save(const std::string& vm_uuid, const std::string& vm_name,
                           const std::string& method, const GuestInventory& inventory) {
  // Guest paths are bytes; what is not UTF-8 is stored with replacement characters.
  const std::string json =
      to_json(inventory).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  impl_->exec("BEGIN IMMEDIATE");
  try {
    base::SqliteStatement insert = impl_->prepare(
        "INSERT INTO inspections (vm_uuid, vm_name, time_ms, method, inventory) "
        "VALUES (?, ?, ?, ?, ?)");
    insert.bind(1, vm_uuid).bind(2, vm_name).bind(3, inventory.time_ms).bind(4, method);
    insert.bind(5, json);
    if (insert.step() != SQLITE_DONE) impl_->fail("insert");
    base::SqliteStatement trim = impl_->prepare(
        "DELETE FROM inspections WHERE vm_uuid = ?1 AND id NOT IN "
        "(SELECT id FROM inspections WHERE vm_uuid = ?1 ORDER BY id DESC LIMIT ?2)");
    trim.bind(1, vm_uuid).bind(2, static_cast<int64_t>(impl_->keep_per_vm));
    if (trim.step() != SQLITE_DONE) impl_->fail("trim history");
    impl_->exec("COMMIT");
  } catch (...) {
    sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::optional<GuestInventory> InspectionStore::latest(const std::string& vm_uuid) {
  base::SqliteStatement s = impl_->prepare(
      "SELECT inventory FROM inspections WHERE vm_uuid = ? ORDER BY id DESC LIMIT 1");
  s.bind(1, vm_uuid);
  const int r = s.step();
  if (r == SQLITE_DONE) return std::nullopt;
  if (r != SQLITE_ROW) impl_->fail("select");
  return inventory_from_json(nlohmann::json::parse(s.text_at(0)));
}

size_t InspectionStore::count(const std::string& vm_uuid) {
  base::SqliteStatement s = impl_->prepare("SELECT COUNT(*) FROM inspections WHERE vm_uuid = ?");
  s.bind(1, vm_uuid);
  if (s.step() != SQLITE_ROW) impl_->fail("count");
  return static_cast<size_t>(s.int_at(0));
}

}  // namespace palisade::hypervisor
