// The inspection history: SQLite in WAL mode, one row per inspection with the inventory as JSON,
// the oldest rows of a VM beyond keep_per_vm deleted in the same transaction as the new one.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

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

struct StatementCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementCloser>;

}  // namespace

struct InspectionStore::Impl {
  std::string path;
  size_t keep_per_vm;
  sqlite3* db = nullptr;

  ~Impl() { sqlite3_close(db); }

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(path + ": " + what + ": " + sqlite3_errmsg(db));
  }

  void exec(const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      const std::string message = error != nullptr ? error : sqlite3_errmsg(db);
      sqlite3_free(error);
      throw std::runtime_error(path + ": " + message);
    }
  }

  StatementPtr prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) fail("prepare");
    return StatementPtr(s);
  }

  void bind(sqlite3_stmt* s, int index, const std::string& text) {
    if (sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT) !=
        SQLITE_OK) {
      fail("bind");
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
    StatementPtr insert = impl_->prepare(
        "INSERT INTO inspections (vm_uuid, vm_name, time_ms, method, inventory) "
        "VALUES (?, ?, ?, ?, ?)");
    impl_->bind(insert.get(), 1, vm_uuid);
    impl_->bind(insert.get(), 2, vm_name);
    sqlite3_bind_int64(insert.get(), 3, inventory.time_ms);
    impl_->bind(insert.get(), 4, method);
    impl_->bind(insert.get(), 5, json);
    if (sqlite3_step(insert.get()) != SQLITE_DONE) impl_->fail("insert");
    StatementPtr trim = impl_->prepare(
        "DELETE FROM inspections WHERE vm_uuid = ?1 AND id NOT IN "
        "(SELECT id FROM inspections WHERE vm_uuid = ?1 ORDER BY id DESC LIMIT ?2)");
    impl_->bind(trim.get(), 1, vm_uuid);
    sqlite3_bind_int64(trim.get(), 2, static_cast<int64_t>(impl_->keep_per_vm));
    if (sqlite3_step(trim.get()) != SQLITE_DONE) impl_->fail("trim history");
    impl_->exec("COMMIT");
  } catch (...) {
    sqlite3_exec(impl_->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::optional<GuestInventory> InspectionStore::latest(const std::string& vm_uuid) {
  StatementPtr s = impl_->prepare(
      "SELECT inventory FROM inspections WHERE vm_uuid = ? ORDER BY id DESC LIMIT 1");
  impl_->bind(s.get(), 1, vm_uuid);
  const int r = sqlite3_step(s.get());
  if (r == SQLITE_DONE) return std::nullopt;
  if (r != SQLITE_ROW) impl_->fail("select");
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0));
  const auto size = static_cast<size_t>(sqlite3_column_bytes(s.get(), 0));
  return inventory_from_json(nlohmann::json::parse(std::string(text == nullptr ? "" : text, size)));
}

size_t InspectionStore::count(const std::string& vm_uuid) {
  StatementPtr s = impl_->prepare("SELECT COUNT(*) FROM inspections WHERE vm_uuid = ?");
  impl_->bind(s.get(), 1, vm_uuid);
  if (sqlite3_step(s.get()) != SQLITE_ROW) impl_->fail("count");
  return static_cast<size_t>(sqlite3_column_int64(s.get(), 0));
}

}  // namespace palisade::hypervisor
