// File-integrity baseline, check, confirm, approve and restore against real files (as root: the
// tests change owners and drop privileges in a child to make paths unreadable).
#include "palisade/fim/fim.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace palisade::fim {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kNobody = 65534;
constexpr uid_t kOtherUid = 1234;
// sha256("hello")
constexpr const char* kHelloSha256 =
    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

class FimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    base = fs::temp_directory_path() /
           ("palisade-fim-" + std::to_string(getpid()) + "-" + info->name());
    fs::remove_all(base);
    fs::create_directories(tree());
    fs::permissions(base, fs::perms(0755), fs::perm_options::replace);
    fs::permissions(tree(), fs::perms(0755), fs::perm_options::replace);
    store_options.db_path = (base / "db" / "fim.db").string();
    store_options.content_dir = (base / "db" / "content").string();
  }
  void TearDown() override {
    std::error_code ec;
    for (auto& p : fs::recursive_directory_iterator(base, ec)) {
      fs::permissions(p.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(base, ec);
  }

  fs::path tree() const { return base / "tree"; }
  std::string at(const std::string& relative) const { return (tree() / relative).string(); }

  void write(const std::string& relative, const std::string& content, unsigned mode = 0644) {
    const fs::path path = tree() / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }

  BaselineOptions options() const {
    BaselineOptions o;
    o.roots = {tree().string()};
    o.threads = 3;
    return o;
  }

  // The planted tree most tests start from.
  void plant_tree() {
    write("etc/hosts", "hello");
    write("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
    write("etc/shadow", "root:*:1::::::\n", 0640);
    write("bin/tool", "#!/bin/sh\necho tool\n", 0755);
    write("bin/other", "#!/bin/sh\necho other\n", 0755);
    write("var/data", std::string(100000, 'd'));
    fs::create_symlink("hosts", tree() / "etc" / "alias");
  }

  // Changing owners and dropping privileges need root; the rest runs as anyone.
  static bool root() { return geteuid() == 0; }

  std::map<std::string, const FileChange*> by_path(const std::vector<FileChange>& changes) {
    std::map<std::string, const FileChange*> out;
    for (const auto& c : changes) out[c.path] = &c;
    return out;
  }

  fs::path base;
  FimStoreOptions store_options;
};

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Rewrites a file in place with same-size content and puts its atime and mtime back, as an
// attacker hiding an edit would: only ctime moves.
void rewrite_keeping_size_and_mtime(const std::string& path, const std::string& content) {
  const struct stat before = lstat_of(path);
  ASSERT_EQ(content.size(), static_cast<size_t>(before.st_size));
  const int fd = open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, content.data(), content.size(), 0), static_cast<ssize_t>(content.size()));
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(futimens(fd, times), 0);
  close(fd);
  const struct stat after = lstat_of(path);
  ASSERT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  ASSERT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  ASSERT_EQ(after.st_size, before.st_size);
}

uint64_t status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
  }
  return 0;
}

int failed_parts() {
  const auto* result = ::testing::UnitTest::GetInstance()->current_test_info()->result();
  int failed = 0;
  for (int i = 0; i < result->total_part_count(); ++i)
    failed += result->GetTestPartResult(i).failed();
  return failed;
}

// Runs body in a child process whose effective user is nobody (no capabilities): root can read
// anything, so this is how a path becomes unreadable. True when the child's expectations held.
template <typename Body>
bool as_nobody(Body body) {
  const pid_t child = fork();
  if (child == 0) {
    const int failed_before = failed_parts();
    if (setegid(kNobody) != 0 || seteuid(kNobody) != 0) _exit(3);
    body();
    _exit(failed_parts() > failed_before ? 1 : 0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(FimTest, BaselineRecordsEveryEntryWithItsHashes) {
  write("a.txt", "hello");
  write("sub/b.bin", std::string(1 << 20, 'b'));
  write("sub/empty", "");
  fs::create_symlink("../a.txt", tree() / "sub" / "link");
  FimStore store(store_options);
  const BaselineReport report = build_baseline(options(), store);
  // tree, a.txt, sub, sub/b.bin, sub/empty, sub/link
  EXPECT_EQ(report.files, 6U);
  EXPECT_EQ(report.bytes, 5U + (1U << 20));
  EXPECT_EQ(report.error_count, 0U);
  EXPECT_GT(report.files_per_second, 0);
  EXPECT_EQ(store.record_count(), 6U);

  const auto a = store.find(at("a.txt"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->type, FileType::kFile);
  EXPECT_EQ(a->sha256, kHelloSha256);
  EXPECT_EQ(a->fast_hash.size(), 16U);
  EXPECT_EQ(a->mode, 0644U);
  EXPECT_EQ(a->size, 5U);
  EXPECT_EQ(a->inode, lstat_of(at("a.txt")).st_ino);
  EXPECT_FALSE(a->is_protected);
  const auto link = store.find(at("sub/link"));
  ASSERT_TRUE(link);
  EXPECT_EQ(link->type, FileType::kSymlink);
  EXPECT_EQ(link->link_target, "../a.txt");
  EXPECT_TRUE(link->sha256.empty()) << "a symlink is not followed";
  EXPECT_EQ(store.find(tree().string())->type, FileType::kDirectory);

  const auto run = store.last_run();
  ASSERT_TRUE(run);
  EXPECT_EQ(run->files, 6U);
  EXPECT_EQ(run->roots, std::vector<std::string>{tree().string()});
  EXPECT_EQ(store.baseline_options().roots, std::vector<std::string>{tree().string()});
  EXPECT_TRUE(check(store, options()).changes.empty());
}

TEST_F(FimTest, CheckFindsExactlyThePlantedChanges) {
  if (!root()) GTEST_SKIP() << "needs root (chown, or dropping privileges)";
  plant_tree();
  FimStore store(store_options);
  build_baseline(options(), store);
  ASSERT_TRUE(check(store, options()).changes.empty()) << "nothing changed yet";

  rewrite_keeping_size_and_mtime(at("etc/hosts"), "HELLO");     // content, same size and mtime
  ASSERT_EQ(chmod(at("etc/shadow").c_str(), 0644), 0);          // mode
  ASSERT_EQ(chown(at("etc/passwd").c_str(), kOtherUid, 0), 0);  // owner
  write("etc/cron.d/backdoor", "* * * * * root sh\n");          // added (and a directory)
  fs::remove(tree() / "bin" / "other");                         // removed
  fs::remove(tree() / "etc" / "alias");                         // symlink retargeted
  fs::create_symlink("/etc/shadow", tree() / "etc" / "alias");
  ASSERT_EQ(chmod(at("bin/tool").c_str(), 04755), 0);  // setuid

  const CheckReport report = check(store, options());
  EXPECT_EQ(report.error_count, 0U);
  const auto changes = by_path(report.changes);
  ASSERT_EQ(report.changes.size(), 8U) << "and nothing else (parent directories' times are not "
                                          "changes)";

  const FileChange* hosts = changes.at(at("etc/hosts"));
  EXPECT_EQ(hosts->kind, ChangeKind::kModified);
  EXPECT_EQ(hosts->changed, kChangedContent);
  EXPECT_EQ(hosts->before->sha256, kHelloSha256);
  EXPECT_NE(hosts->after->sha256, kHelloSha256);
  EXPECT_NE(hosts->after->fast_hash, hosts->before->fast_hash);

  EXPECT_EQ(changes.at(at("etc/shadow"))->changed, kChangedMode);
  EXPECT_EQ(changes.at(at("etc/shadow"))->after->mode, 0644U);
  EXPECT_EQ(changes.at(at("etc/passwd"))->changed, kChangedOwner);
  EXPECT_EQ(changes.at(at("etc/passwd"))->after->uid, kOtherUid);
  EXPECT_EQ(changes.at(at("etc/cron.d"))->kind, ChangeKind::kAdded);
  EXPECT_EQ(changes.at(at("etc/cron.d/backdoor"))->kind, ChangeKind::kAdded);
  EXPECT_FALSE(changes.at(at("etc/cron.d/backdoor"))->after->sha256.empty());
  EXPECT_EQ(changes.at(at("bin/other"))->kind, ChangeKind::kRemoved);
  EXPECT_TRUE(changes.at(at("bin/other"))->before);
  EXPECT_EQ(changes.at(at("etc/alias"))->changed, kChangedTarget);
  EXPECT_EQ(changes.at(at("etc/alias"))->after->link_target, "/etc/shadow");
  const FileChange* tool = changes.at(at("bin/tool"));
  EXPECT_EQ(tool->changed, kChangedMode);
  EXPECT_EQ(tool->after->mode, 04755U);
  EXPECT_NE(describe(*tool).find("setuid added"), std::string::npos) << describe(*tool);
  EXPECT_NE(to_json(*hosts).find("\"changed\":[\"content\"]"), std::string::npos);
}

TEST_F(FimTest, ATouchedButUnchangedFileIsNotAChange) {
  plant_tree();
  FimStore store(store_options);
  build_baseline(options(), store);
  ASSERT_EQ(utimensat(AT_FDCWD, at("etc/hosts").c_str(), nullptr, 0), 0);  // now
  EXPECT_TRUE(check(store, options()).changes.empty());
  EXPECT_FALSE(confirm(store, at("etc/hosts")));
}

TEST_F(FimTest, ApproveAllMakesTheCurrentStateTheBaseline) {
  plant_tree();
  FimStore store(store_options);
  build_baseline(options(), store);
  write("etc/hosts", "changed");
  write("new", "new");
  fs::remove(tree() / "var" / "data");
  ASSERT_EQ(check(store, options()).changes.size(), 3U);

  const ApproveReport report = approve_all(store, options());
  EXPECT_EQ(report.added, 1U);
  EXPECT_EQ(report.removed, 1U);
  EXPECT_EQ(report.modified, 1U);
  EXPECT_TRUE(check(store, options()).changes.empty());
  EXPECT_FALSE(store.find(at("var/data")));
  EXPECT_EQ(store.find(at("new"))->size, 3U);
  // The refreshed record carries the new stamps, so confirm() decides without reading.
  EXPECT_EQ(store.find(at("etc/hosts"))->ctime_ns,
            lstat_of(at("etc/hosts")).st_ctim.tv_sec * 1'000'000'000LL +
                lstat_of(at("etc/hosts")).st_ctim.tv_nsec);
}

TEST_F(FimTest, ApprovingOnePathLeavesTheOthersReported) {
  plant_tree();
  FimStore store(store_options);
  build_baseline(options(), store);
  write("etc/hosts", "changed");
  write("bin/tool", "changed", 0755);
  fs::remove_all(tree() / "var");

  EXPECT_EQ(approve(store, options(), {at("etc/hosts")}).modified, 1U);
  const ApproveReport removed_dir = approve(store, options(), {at("var")});
  EXPECT_EQ(removed_dir.removed, 2U) << "the directory and what was in it";
  const CheckReport after = check(store, options());
  ASSERT_EQ(after.changes.size(), 1U);
  EXPECT_EQ(after.changes[0].path, at("bin/tool"));
  EXPECT_THROW(approve(store, options(), {"/etc/passwd"}), std::runtime_error)
      << "outside the baseline's roots";
  EXPECT_THROW(approve(store, options(), {}), std::invalid_argument);
}

TEST_F(FimTest, ConfirmRechecksOnePathAgainstItsRecord) {
  plant_tree();
  FimStore store(store_options);
  build_baseline(options(), store);
  EXPECT_FALSE(confirm(store, at("etc/hosts"))) << "untouched";

  rewrite_keeping_size_and_mtime(at("etc/hosts"), "jello");
  const auto modified = confirm(store, at("etc/hosts"));
  ASSERT_TRUE(modified);
  EXPECT_EQ(modified->kind, ChangeKind::kModified);
  EXPECT_EQ(modified->changed, kChangedContent);

  ASSERT_EQ(chmod(at("bin/tool").c_str(), 04755), 0);
  EXPECT_EQ(confirm(store, at("bin/tool"))->changed, kChangedMode);

  fs::remove(tree() / "etc" / "passwd");
  EXPECT_EQ(confirm(store, at("etc/passwd"))->kind, ChangeKind::kRemoved);

  write("etc/new", "x");
  const auto added = confirm(store, at("etc/./new"));
  ASSERT_TRUE(added);
  EXPECT_EQ(added->kind, ChangeKind::kAdded);
  EXPECT_EQ(added->path, at("etc/new"));

  EXPECT_FALSE(confirm(store, (base / "outside").string())) << "not watched";
  EXPECT_FALSE(confirm(store, at("etc/never-existed")));
  EXPECT_EQ(check(store, options()).changes.size(), 4U) << "confirm changes nothing";
}

TEST_F(FimTest, RestoresAProtectedFileWithItsContentModeAndOwner) {
  if (!root()) GTEST_SKIP() << "needs root (chown, or dropping privileges)";
  plant_tree();
  ASSERT_EQ(chown(at("etc/shadow").c_str(), 0, 42), 0);
  BaselineOptions o = options();
  o.protect = {at("etc/shadow"), "passwd"};
  FimStore store(store_options);
  build_baseline(o, store);
  const auto approved = store.find(at("etc/shadow"));
  ASSERT_TRUE(approved->is_protected);
  EXPECT_TRUE(store.find(at("etc/passwd"))->is_protected);
  EXPECT_FALSE(store.find(at("etc/hosts"))->is_protected);
  const std::string copy = store.content_path(approved->sha256);
  EXPECT_EQ(read_all(copy), "root:*:1::::::\n");
  EXPECT_EQ(lstat_of(copy).st_mode & 07777, 0400U);
  EXPECT_EQ(lstat_of(store_options.content_dir).st_mode & 07777, 0700U);

  write("etc/shadow", "root::0::::::\n", 0666);
  ASSERT_EQ(chown(at("etc/shadow").c_str(), kOtherUid, kOtherUid), 0);
  ASSERT_EQ(check(store, o).changes.size(), 1U);

  const RestoreResult result = restore_protected(store, at("etc/shadow"));
  EXPECT_EQ(read_all(at("etc/shadow")), "root:*:1::::::\n");
  const struct stat st = lstat_of(at("etc/shadow"));
  EXPECT_EQ(st.st_mode & 07777, 0640U);
  EXPECT_EQ(st.st_uid, 0U);
  EXPECT_EQ(st.st_gid, 42U);
  EXPECT_EQ(result.restored.sha256, approved->sha256);
  ASSERT_TRUE(result.replaced);
  EXPECT_EQ(result.replaced->uid, kOtherUid);
  EXPECT_NE(result.replaced->sha256, approved->sha256);
  EXPECT_TRUE(check(store, o).changes.empty());
  EXPECT_FALSE(confirm(store, at("etc/shadow")));
  EXPECT_THROW(restore_protected(store, at("etc/hosts")), std::runtime_error) << "not protected";
}

TEST_F(FimTest, RestoreReplacesASymlinkWithoutFollowingIt) {
  plant_tree();
  write("victim", "do not touch");
  BaselineOptions o = options();
  o.protect = {"passwd"};
  FimStore store(store_options);
  build_baseline(o, store);
  fs::remove(tree() / "etc" / "passwd");
  fs::create_symlink(at("victim"), tree() / "etc" / "passwd");

  const RestoreResult result = restore_protected(store, at("etc/passwd"));
  EXPECT_EQ(result.replaced->type, FileType::kSymlink);
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(tree() / "etc" / "passwd")));
  EXPECT_EQ(read_all(at("etc/passwd")), "root:x:0:0::/root:/bin/sh\n");
  EXPECT_EQ(read_all(at("victim")), "do not touch");
}

TEST_F(FimTest, RestoreRefusesAParentDirectorySwappedForASymlink) {
  plant_tree();
  BaselineOptions o = options();
  o.protect = {at("etc")};  // a directory protects what is under it
  FimStore store(store_options);
  build_baseline(o, store);
  ASSERT_TRUE(store.find(at("etc/hosts"))->is_protected);
  fs::create_directories(base / "elsewhere");
  fs::rename(tree() / "etc", base / "moved-etc");
  fs::create_directory_symlink(base / "elsewhere", tree() / "etc");

  try {
    restore_protected(store, at("etc/hosts"));
    ADD_FAILURE() << "restored through a symlink";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is a symlink"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(base / "elsewhere"));
}

TEST_F(FimTest, ProtectedCopiesAreSharedByContentAndDroppedWhenUnused) {
  write("a", "same");
  write("b", "same");
  write("c", "different");
  BaselineOptions o = options();
  o.protect = {"*"};
  FimStore store(store_options);
  build_baseline(o, store);
  auto copies = [&] {
    return std::distance(fs::directory_iterator(store_options.content_dir),
                         fs::directory_iterator());
  };
  EXPECT_EQ(copies(), 2);
  write("c", "changed");
  approve(store, o, {at("c")});
  EXPECT_EQ(copies(), 2) << "the new content is kept, the old one dropped";
  EXPECT_TRUE(fs::exists(store.content_path(store.find(at("c"))->sha256)));
}

TEST_F(FimTest, ExcludedPathsAreNeitherRecordedNorChecked) {
  plant_tree();
  write("var/log/app.log", "line\n");
  write("var/cache/blob", "x");
  BaselineOptions o = options();
  o.excludes = {"*.log", at("var/cache")};
  FimStore store(store_options);
  const BaselineReport report = build_baseline(o, store);
  EXPECT_FALSE(store.find(at("var/log/app.log")));
  EXPECT_FALSE(store.find(at("var/cache")));
  EXPECT_FALSE(store.find(at("var/cache/blob")));
  EXPECT_TRUE(store.find(at("var/log")));
  EXPECT_EQ(store.baseline_options().excludes, o.excludes);

  write("var/log/app.log", "another line\n");
  write("var/log/new.log", "x");
  write("var/cache/other", "y");
  EXPECT_TRUE(check(store, store.baseline_options()).changes.empty());
  EXPECT_FALSE(confirm(store, at("var/cache/other")));
  EXPECT_FALSE(confirm(store, at("var/log/new.log")));
  EXPECT_THROW(approve(store, o, {at("var/cache")}), std::runtime_error);
}

TEST_F(FimTest, RelativePathPatternsAreMadeAbsolute) {
  plant_tree();
  const fs::path cwd = fs::current_path();
  fs::current_path(base);
  BaselineOptions o;
  o.roots = {"tree"};
  o.protect = {"tree/etc/shadow"};
  o.excludes = {"tree/var", "*/bin"};
  FimStore store(store_options);
  const BaselineReport report = build_baseline(o, store);
  fs::current_path(cwd);
  EXPECT_EQ(report.protected_files, 1U);
  EXPECT_TRUE(store.find(at("etc/shadow"))->is_protected);
  EXPECT_FALSE(store.find(at("var")));
  EXPECT_FALSE(store.find(at("bin"))) << "a pattern starting with a wildcard is kept as it is";
  const BaselineOptions stored = store.baseline_options();
  EXPECT_EQ(stored.roots, std::vector<std::string>{tree().string()});
  EXPECT_EQ(stored.protect, std::vector<std::string>{at("etc/shadow")});
  EXPECT_EQ(stored.excludes, (std::vector<std::string>{at("var"), "*/bin"}));
}

TEST_F(FimTest, ConfirmFollowsABaselineRebuiltThroughAnotherConnection) {
  plant_tree();
  FimStore agent_side(store_options);
  {
    FimStore operator_side(store_options);
    BaselineOptions o = options();
    o.roots = {at("etc")};
    build_baseline(o, operator_side);
  }
  write("bin/new", "x");
  EXPECT_FALSE(confirm(agent_side, at("bin/new"))) << "bin is not watched yet";
  {
    FimStore operator_side(store_options);
    build_baseline(options(), operator_side);
  }
  write("bin/newer", "x");
  const auto added = confirm(agent_side, at("bin/newer"));
  ASSERT_TRUE(added) << "the new baseline's roots apply at once";
  EXPECT_EQ(added->kind, ChangeKind::kAdded);
}

TEST_F(FimTest, HashesALargeSparseFileWithBoundedMemory) {
  constexpr off_t kSize = 50 << 20;
  {
    const int fd = open(at("sparse").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "tail", 4, kSize), 4);
    close(fd);
  }
  BaselineOptions o = options();
  o.max_file_bytes = 64 << 10;
  FimStore store(store_options);
  std::ofstream("/proc/self/clear_refs") << "5";  // resets the peak RSS (VmHWM)
  const uint64_t before_kib = status_kib("VmRSS");
  const BaselineReport report = build_baseline(o, store);
  const uint64_t peak_kib = status_kib("VmHWM");
  EXPECT_EQ(report.bytes, static_cast<uint64_t>(kSize) + 4);
  // sha256 of 50 MiB of zeros followed by "tail"
  EXPECT_EQ(store.find(at("sparse"))->sha256,
            "7943a5270b2f9ab3646c30f876a76471276131346db9d3b9971f71be2ed6c288");
  EXPECT_LT(peak_kib - std::min(peak_kib, before_kib), 16U << 10)
      << "the file is streamed, not loaded";
}

TEST_F(FimTest, UnreadableEntriesAreReportedAsErrorsNotChanges) {
  if (!root()) GTEST_SKIP() << "needs root (chown, or dropping privileges)";
  write("readable", "r");
  write("secret", "s", 0600);
  write("locked/inside", "i", 0600);
  fs::permissions(tree() / "locked", fs::perms(0700), fs::perm_options::replace);
  // The database must be usable by the unprivileged child.
  fs::create_directories(base / "db");
  fs::permissions(base / "db", fs::perms::all, fs::perm_options::replace);
  {
    FimStore store(store_options);
    build_baseline(options(), store);  // as root: everything is readable
  }
  fs::permissions(store_options.db_path, fs::perms(0666), fs::perm_options::replace);

  const bool checked = as_nobody([&] {
    FimStore store(store_options);
    const CheckReport report = check(store, options());
    EXPECT_TRUE(report.changes.empty())
        << "what cannot be read is not reported as modified or removed: "
        << (report.changes.empty() ? "" : describe(report.changes[0]));
    EXPECT_EQ(report.error_count, 2U);
    std::map<std::string, std::string> errors;
    for (const auto& e : report.errors) errors[e.path] = e.reason;
    EXPECT_NE(errors[at("secret")].find("Permission denied"), std::string::npos);
    EXPECT_NE(errors[at("locked")].find("Permission denied"), std::string::npos);
  });
  EXPECT_TRUE(checked) << "check as nobody";
  const bool baselined = as_nobody([&] {
    FimStoreOptions own = store_options;
    own.db_path = (base / "db" / "nobody.db").string();
    FimStore store(own);
    const BaselineReport report = build_baseline(options(), store);
    EXPECT_EQ(report.error_count, 2U);
    EXPECT_FALSE(store.find(at("secret"))) << "no record without its content";
    EXPECT_TRUE(store.find(at("readable")));
  });
  EXPECT_TRUE(baselined) << "baseline as nobody";
}

TEST_F(FimTest, ABaselineNeedsExistingRoots) {
  FimStore store(store_options);
  BaselineOptions o;
  o.roots = {at("missing")};
  EXPECT_THROW(build_baseline(o, store), std::runtime_error);
  EXPECT_THROW(store.baseline_options(), std::runtime_error) << "no baseline was written";
  EXPECT_THROW(confirm(store, at("x")), std::runtime_error);
}

}  // namespace
}  // namespace palisade::fim
