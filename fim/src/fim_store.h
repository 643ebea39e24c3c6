// The store's private side, for the library's operations: record and run tables, the bookkeeping
// a check needs, and the content store.
#pragma once

#include <sqlite3.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "palisade/base/sqlite_statement.h"
#include "palisade/base/unique_fd.h"
#include "palisade/fim/fim.h"

namespace palisade::fim {

struct FimStore::Impl {
  explicit Impl(FimStoreOptions store_options);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Commits on commit(), rolls back if destroyed before.
  class Transaction {
   public:
    explicit Transaction(sqlite3* db);
    ~Transaction();
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit();

   private:
    sqlite3* db_;
    bool done_ = false;
  };

  std::optional<FileRecord> find(const std::string& path);
  void put(const FileRecord& record);  // insert or replace
  void erase(const std::string& path);
  void clear();
  void add_run(const BaselineRun& run, const BaselineOptions& options);
  void add_approval(const std::vector<std::string>& scope, const ApproveReport& report);
  std::optional<BaselineOptions> stored_options();

  // A check marks each path it sees; what is under its roots and was not seen has been removed.
  void start_seen();
  void mark_seen(const std::string& path);
  void mark_subtree_seen(const std::string& dir);  // a directory that could not be read
  void for_each_unseen(const std::vector<std::string>& roots,
                       const std::function<bool(FileRecord&&)>& fn);

  // Content store. A copy is written to a temporary file first and named by its sha256 only
  // once complete, so a name always holds exactly that content.
  std::string content_path(const std::string& sha256) const;
  base::UniqueFd open_content_temp(std::string& temp_path) const;
  void keep_content(const std::string& temp_path, int fd, const std::string& sha256) const;
  void collect_garbage();  // removes copies no protected record refers to

  FimStoreOptions options;
  sqlite3* db = nullptr;
  std::optional<BaselineOptions> options_cache;  // the last baseline's scope
  int64_t options_version = -1;                  // PRAGMA data_version it was read at

 private:
  base::SqliteStatement& prepared(std::unique_ptr<base::SqliteStatement>& slot, const char* sql);
  void ensure_content_dir() const;

  std::unique_ptr<base::SqliteStatement> find_;
  std::unique_ptr<base::SqliteStatement> put_;
  std::unique_ptr<base::SqliteStatement> erase_;
  std::unique_ptr<base::SqliteStatement> mark_seen_;
  std::unique_ptr<base::SqliteStatement> data_version_;
};

// Binds and reads a FileRecord in the column order of the files table.
FileRecord record_from_row(const base::SqliteStatement& row);

}  // namespace palisade::fim
