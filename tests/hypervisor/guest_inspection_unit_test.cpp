// Guest inspection without an appliance: the readers of guest configuration files, compare(),
// the inventory's JSON and the inspection history.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "inspect/config_parsers.h"
#include "inspect/ssh_keys.h"
#include "palisade/hypervisor/guest_inspection.h"
#include "test_keys.h"

namespace palisade::hypervisor {
namespace {

namespace fs = std::filesystem;
using namespace inspect;
using namespace testing;

TEST(GuestConfigParsers, PasswdKeepsEveryAccountAndCountsBrokenLines) {
  size_t malformed = 0;
  const auto users = parse_passwd(
      "root:x:0:0:root:/root:/bin/bash\n"
      "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n"
      "broken line\n"
      "bad:x:notanumber:1::/:/bin/sh\n"
      "\n"
      "toor:x:0:0::/root:/bin/sh",
      malformed);
  ASSERT_EQ(users.size(), 3U);
  EXPECT_EQ(users[0], (GuestUser{"root", 0, 0, "/root", "/bin/bash"}));
  EXPECT_EQ(users[1], (GuestUser{"alice", 1000, 1000, "/home/alice", "/bin/bash"}));
  EXPECT_EQ(users[2], (GuestUser{"toor", 0, 0, "/root", "/bin/sh"}));
  EXPECT_EQ(malformed, 2U);
}

TEST(GuestConfigParsers, GroupMembersAreSorted) {
  size_t malformed = 0;
  const auto groups = parse_group("sudo:x:27:bob,alice\nempty:x:5:\n", malformed);
  ASSERT_EQ(groups.size(), 2U);
  EXPECT_EQ(groups[0], (GuestGroup{"sudo", 27, {"alice", "bob"}}));
  EXPECT_EQ(groups[1], (GuestGroup{"empty", 5, {}}));
  EXPECT_EQ(malformed, 0U);
}

TEST(GuestConfigParsers, SudoersKeepsRulesAndDirectivesNotComments) {
  const auto lines = sudoers_lines(
      "# a comment\n"
      "Defaults\tenv_reset\n"
      "\n"
      "root    ALL=(ALL:ALL) ALL   # root may do anything\n"
      "#1000 ALL=(ALL) NOPASSWD: ALL\n"
      "%#27 ALL=(ALL) ALL\n"
      "Cmnd_Alias WEB = /usr/bin/systemctl restart web, \\\n"
      "    /usr/bin/systemctl reload web\n"
      "#includedir /etc/sudoers.d\n"
      "@include /etc/sudoers.local\n"
      "#include /etc/sudoers.extra\n");
  const std::vector<std::string> expected = {
      "Defaults env_reset",
      "root ALL=(ALL:ALL) ALL",
      "#1000 ALL=(ALL) NOPASSWD: ALL",
      "%#27 ALL=(ALL) ALL",
      "Cmnd_Alias WEB = /usr/bin/systemctl restart web, /usr/bin/systemctl reload web",
      "#includedir /etc/sudoers.d",
      "@include /etc/sudoers.local",
      "#include /etc/sudoers.extra"};
  EXPECT_EQ(lines, expected);
}

TEST(GuestConfigParsers, CrontabsInBothFormats) {
  size_t malformed = 0;
  const auto system = parse_crontab(
      "SHELL=/bin/sh\n"
      "PATH = /usr/bin:/bin\n"
      "# m h dom mon dow user command\n"
      "17 *\t* * *   root  cd / && run-parts --report /etc/cron.hourly\n"
      "@reboot root /usr/local/bin/start  --now\n"
      "* * * *\n",
      "/etc/crontab", "", true, malformed);
  ASSERT_EQ(system.size(), 2U);
  EXPECT_EQ(system[0], (CronEntry{"/etc/crontab", "root", "17 * * * *",
                                  "cd / && run-parts --report /etc/cron.hourly"}));
  EXPECT_EQ(system[1],
            (CronEntry{"/etc/crontab", "root", "@reboot", "/usr/local/bin/start  --now"}));
  EXPECT_EQ(malformed, 1U);

  malformed = 0;
  const auto user = parse_crontab("*/5 * * * * /home/alice/bin/sync\n",
                                  "/var/spool/cron/crontabs/alice", "alice", false, malformed);
  ASSERT_EQ(user.size(), 1U);
  EXPECT_EQ(user[0], (CronEntry{"/var/spool/cron/crontabs/alice", "alice", "*/5 * * * *",
                                "/home/alice/bin/sync"}));
}

TEST(GuestConfigParsers, DpkgStatusListsInstalledPackagesOnly) {
  const auto packages = parse_dpkg_status(
      "Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\n"
      "Version: 1:9.2p1-2+deb12u3\nDescription: secure shell server\n continued line\n\n"
      "Package: telnetd\nStatus: deinstall ok config-files\nVersion: 0.17-44\n\n"
      "Package: base-files\nStatus: hold ok installed\nVersion: 12.4+deb12u5\n"
      "Architecture: amd64\n");
  ASSERT_EQ(packages.size(), 2U);
  EXPECT_EQ(packages[0], (Package{"openssh-server", "1:9.2p1-2+deb12u3", "amd64"}));
  EXPECT_EQ(packages[1], (Package{"base-files", "12.4+deb12u5", "amd64"}));
}

TEST(GuestConfigParsers, AuthorizedKeysFileFollowsSshdConfig) {
  EXPECT_EQ(authorized_keys_patterns("PermitRootLogin no\n"),
            (std::vector<std::string>{".ssh/authorized_keys", ".ssh/authorized_keys2"}));
  EXPECT_EQ(authorized_keys_patterns("authorizedkeysfile=/etc/ssh/keys/%u .ssh/authorized_keys\n"
                                     "AuthorizedKeysFile /ignored\n"),
            (std::vector<std::string>{"/etc/ssh/keys/%u", ".ssh/authorized_keys"}));
  EXPECT_TRUE(authorized_keys_patterns("AuthorizedKeysFile none\n").empty());
  EXPECT_EQ(authorized_keys_patterns("Match User git\n  AuthorizedKeysFile /srv/git/keys\n"),
            (std::vector<std::string>{".ssh/authorized_keys", ".ssh/authorized_keys2"}));
  const GuestUser alice{"alice", 1000, 1000, "/home/alice", "/bin/bash"};
  EXPECT_EQ(expand_keys_pattern("/etc/ssh/keys/%u.%U%%", alice), "/etc/ssh/keys/alice.1000%");
  EXPECT_EQ(expand_keys_pattern(".ssh/authorized_keys", alice), "/home/alice/.ssh/authorized_keys");
  EXPECT_EQ(expand_keys_pattern("%h/.ssh/k", alice), "/home/alice/.ssh/k");
}

TEST(GuestSshKeys, FingerprintsMatchSshKeygen) {
  size_t malformed = 0;
  const std::string text = std::string(kAliceKey) + " alice@laptop\n" +
                           "command=\"/usr/bin/rsync --server \\\"x y\\\"\",no-pty " + kDeployKey +
                           " deploy@ci\n" + "# a comment\n" + "ssh-ed25519 not!base64 junk\n";
  const auto keys =
      parse_authorized_keys(text, "alice", "/home/alice/.ssh/authorized_keys", malformed);
  ASSERT_EQ(keys.size(), 2U);
  EXPECT_EQ(keys[0].type, "ssh-ed25519");
  EXPECT_EQ(keys[0].fingerprint, kAliceFingerprint);
  EXPECT_EQ(keys[0].comment, "alice@laptop");
  EXPECT_EQ(keys[0].options, "");
  EXPECT_EQ(keys[1].type, "ssh-rsa");
  EXPECT_EQ(keys[1].fingerprint, kDeployFingerprint);
  EXPECT_EQ(keys[1].options, "command=\"/usr/bin/rsync --server \\\"x y\\\"\",no-pty");
  EXPECT_EQ(keys[1].comment, "deploy@ci");
  EXPECT_EQ(keys[1].user, "alice");
  EXPECT_EQ(malformed, 1U);
  EXPECT_EQ(ssh_fingerprint("abc"), "");
}

// ---------------------------------------------------------------- compare()

fim::FileRecord file(const std::string& path, const std::string& sha256, uint32_t mode = 0755) {
  fim::FileRecord r;
  r.path = path;
  r.type = fim::FileType::kFile;
  r.mode = mode;
  r.size = 10;
  r.sha256 = sha256;
  r.mtime_ns = 1700000000000000000;
  r.ctime_ns = 1700000000000000000;
  r.inode = 12;
  return r;
}

GuestInventory base_inventory() {
  GuestInventory i;
  i.time_ms = 1;
  i.root = "/dev/sda1";
  i.os_type = "linux";
  i.distro = "debian";
  i.product_name = "Debian GNU/Linux 12 (bookworm)";
  i.hostname = "web-01";
  i.major_version = 12;
  i.users = {{"root", 0, 0, "/root", "/bin/bash"}, {"alice", 1000, 1000, "/home/alice", "/bin/sh"}};
  i.groups = {{"sudo", 27, {"alice"}}};
  i.sudoers = {"/etc/sudoers: root ALL=(ALL:ALL) ALL"};
  i.authorized_keys = {{"alice", "/home/alice/.ssh/authorized_keys", "ssh-ed25519",
                        kAliceFingerprint, "alice@laptop", ""}};
  i.cron = {{"/etc/crontab", "root", "17 * * * *", "run-parts /etc/cron.hourly"}};
  i.units = {{"/etc/systemd/system/web.service",
              "aa",
              "",
              true,
              {"/etc/systemd/system/multi-user.target.wants/web.service"}},
             {"/lib/systemd/system/ssh.service", "bb", "", false, {}}};
  i.setid_files = {file("/usr/bin/passwd", "cc", 04755)};
  i.packages = {{"openssh-server", "1:9.2p1-2", "amd64"}};
  i.files = {file("/etc/crontab", "c1", 0644), file("/etc/passwd", "p1", 0644),
             file("/etc/systemd/system/web.service", "aa", 0644), file("/usr/bin/edr-demo", "e1"),
             file("/usr/bin/passwd", "cc", 04755)};
  return i;
}

std::multiset<std::string> kinds(const std::vector<GuestChange>& changes) {
  std::multiset<std::string> out;
  for (const GuestChange& c : changes) out.insert(c.kind);
  return out;
}

// The one change from the base inventory to after (an empty one, and a failure, when not one).
GuestChange only_change(const GuestInventory& after) {
  const std::vector<GuestChange> changes = compare(base_inventory(), after);
  EXPECT_EQ(changes.size(), 1U) << (changes.empty() ? "no change" : changes.front().kind);
  return changes.size() == 1 ? changes.front() : GuestChange{};
}

void replace_file(GuestInventory& i, const fim::FileRecord& record) {
  auto it = std::find_if(i.files.begin(), i.files.end(),
                         [&](const fim::FileRecord& r) { return r.path == record.path; });
  if (it == i.files.end()) {
    i.files.push_back(record);
    std::sort(i.files.begin(), i.files.end(),
              [](const auto& a, const auto& b) { return a.path < b.path; });
  } else {
    *it = record;
  }
}

TEST(GuestCompare, IdenticalInventoriesHaveNoChanges) {
  EXPECT_TRUE(compare(base_inventory(), base_inventory()).empty());
}

TEST(GuestCompare, TimesAndInodesOfFilesAreNotChanges) {
  GuestInventory after = base_inventory();
  for (fim::FileRecord& r : after.files) {
    r.mtime_ns += 5;
    r.ctime_ns += 7;
    r.inode += 100;
  }
  after.time_ms = 99;
  after.warnings = {"something"};
  EXPECT_TRUE(compare(base_inventory(), after).empty());
}

TEST(GuestCompare, UserAddedExplainsThePasswdFile) {
  GuestInventory after = base_inventory();
  after.users.push_back({"mallory", 0, 0, "/root", "/bin/bash"});
  replace_file(after, file("/etc/passwd", "p2", 0644));
  const GuestChange change = only_change(after);
  EXPECT_EQ(change.kind, "user-added");
  EXPECT_EQ(change.subject, "mallory");
  EXPECT_EQ(change.path, "/etc/passwd");
  EXPECT_NE(change.detail.find("uid 0"), std::string::npos);
  EXPECT_TRUE(change.before.is_null());
  EXPECT_EQ(change.after["name"], "mallory");
}

TEST(GuestCompare, APasswdChangeWithoutMeaningIsStillAFileChange) {
  GuestInventory after = base_inventory();
  replace_file(after, file("/etc/passwd", "p2", 0644));  // e.g. a GECOS field edited
  const GuestChange change = only_change(after);
  EXPECT_EQ(change.kind, "file-modified");
  EXPECT_EQ(change.subject, "/etc/passwd");
}

TEST(GuestCompare, UserModifiedToUidZero) {
  GuestInventory after = base_inventory();
  after.users[1].uid = 0;
  const GuestChange change = only_change(after);
  EXPECT_EQ(change.kind, "user-modified");
  EXPECT_EQ(change.detail, "uid 1000 -> 0 (root's rights)");
}

TEST(GuestCompare, EachKindOfChange) {
  const GuestInventory before = base_inventory();
  GuestInventory after = base_inventory();
  after.users.erase(after.users.begin() + 1);                            // user-removed
  after.groups[0].members = {"bob"};                                     // group-members-changed
  after.groups.push_back({"docker", 999, {}});                           // group-added
  after.sudoers.push_back("/etc/sudoers.d/x: bob ALL=(ALL) ALL");        // sudoers-added
  after.authorized_keys.clear();                                         // authorized-key-removed
  after.cron.push_back({"/etc/cron.d/x", "root", "@reboot", "/tmp/x"});  // cron-added
  after.units[0].sha256 = "a2";                                          // unit-modified
  after.units[0].enabled = false;                                        // unit-disabled
  after.units[0].wanted_by.clear();
  after.units[1].enabled = true;  // unit-enabled
  after.units[1].wanted_by = {"/etc/systemd/system/multi-user.target.wants/ssh.service"};
  after.setid_files.push_back(file("/tmp/.x", "dd", 04755));                 // setid-added
  after.packages[0].version = "1:9.2p1-3";                                   // package-changed
  after.packages.push_back({"netcat", "1.10", "amd64"});                     // package-added
  after.hostname = "web-02";                                                 // os-changed
  replace_file(after, file("/usr/bin/edr-demo", "e2"));                      // file-modified
  replace_file(after, file("/usr/bin/new", "n1"));                           // file-added
  replace_file(after, file("/etc/systemd/system/web.service", "a2", 0644));  // told by unit
  const std::multiset<std::string> expected = {
      "os-changed",    "user-removed",           "group-added", "group-members-changed",
      "sudoers-added", "authorized-key-removed", "cron-added",  "unit-modified",
      "unit-disabled", "unit-enabled",           "setid-added", "package-changed",
      "package-added", "file-modified",          "file-added"};
  const auto changes = compare(before, after);
  EXPECT_EQ(kinds(changes), expected);
  // Groups in the documented order, OS first and files last; by subject inside a group.
  ASSERT_EQ(changes.size(), expected.size());
  EXPECT_EQ(changes.front().kind, "os-changed");
  const GuestChange& modified = changes[changes.size() - 2];
  EXPECT_EQ(modified.kind, "file-modified");
  EXPECT_EQ(modified.subject, "/usr/bin/edr-demo");
  EXPECT_NE(modified.detail.find("content sha256 e1 -> e2"), std::string::npos) << modified.detail;
  EXPECT_EQ(changes.back().kind, "file-added");
}

TEST(GuestCompare, NewSetidFileIsNotAlsoANewFile) {
  GuestInventory after = base_inventory();
  after.setid_files.push_back(file("/usr/bin/sushi", "s1", 04755));
  replace_file(after, file("/usr/bin/sushi", "s1", 04755));
  const GuestChange change = only_change(after);
  EXPECT_EQ(change.kind, "setid-added");
  EXPECT_EQ(change.after["mode"], "4755");
}

TEST(GuestCompare, LosingTheSetuidBitIsSetidRemovedOnly) {
  GuestInventory after = base_inventory();
  after.setid_files.clear();
  replace_file(after, file("/usr/bin/passwd", "cc", 0755));
  const GuestChange change = only_change(after);
  EXPECT_EQ(change.kind, "setid-removed");
}

TEST(GuestCompare, ContentOfASetidFileChanged) {
  GuestInventory after = base_inventory();
  after.setid_files[0].sha256 = "c2";
  replace_file(after, file("/usr/bin/passwd", "c2", 04755));
  const GuestChange change = only_change(after);
  EXPECT_EQ(change.kind, "setid-modified");
}

TEST(GuestCompare, UnknownHashIsNoContentChange) {
  GuestInventory after = base_inventory();
  replace_file(after, file("/usr/bin/edr-demo", ""));  // could not be hashed this time
  EXPECT_TRUE(compare(base_inventory(), after).empty());
}

TEST(GuestCompare, TreeCutShortReportsNoAddedOrRemovedFilesUnderIt) {
  GuestInventory after = base_inventory();
  after.incomplete_roots = {"/usr/bin"};
  after.files.erase(std::remove_if(after.files.begin(), after.files.end(),
                                   [](const auto& r) { return r.path == "/usr/bin/edr-demo"; }),
                    after.files.end());
  replace_file(after, file("/usr/bin/passwd", "cc", 04700));  // still compared: modified
  after.setid_files[0].mode = 04700;
  const GuestChange change = only_change(after);
  EXPECT_EQ(change.kind, "setid-modified");
}

TEST(GuestCompare, DuplicateCronLinesAreCounted) {
  GuestInventory after = base_inventory();
  after.cron.push_back(after.cron[0]);
  replace_file(after, file("/etc/crontab", "c2", 0644));
  const GuestChange change = only_change(after);
  EXPECT_EQ(change.kind, "cron-added");
  EXPECT_EQ(change.path, "/etc/crontab");
}

// ---------------------------------------------------------------- JSON and the store

TEST(GuestInventoryJson, RoundTrips) {
  GuestInventory i = base_inventory();
  i.files.push_back(fim::FileRecord{"/bin/sh", fim::FileType::kSymlink, 0777, 0, 0, 4, 5, 6, 7, "",
                                    "", "dash", false});
  i.incomplete_roots = {"/usr"};
  i.warnings = {"w1"};
  const nlohmann::json j = to_json(i);
  EXPECT_EQ(j["files"][0]["mode"], "0644");  // the node agent's record shape
  EXPECT_EQ(j["os"]["distro"], "debian");
  EXPECT_EQ(inventory_from_json(nlohmann::json::parse(j.dump())), i);
}

TEST(GuestInventoryJson, RejectsMalformedDocuments) {
  nlohmann::json j = to_json(base_inventory());
  j["schema"] = 2;
  EXPECT_THROW(inventory_from_json(j), std::invalid_argument);
  j = to_json(base_inventory());
  j["users"][0].erase("uid");
  EXPECT_THROW(inventory_from_json(j), std::invalid_argument);
  j = to_json(base_inventory());
  j["files"][0]["mode"] = "rwx";
  EXPECT_THROW(inventory_from_json(j), std::invalid_argument);
}

TEST(GuestInspectionStore, KeepsTheLastInspectionsOfEachVm) {
  const fs::path dir =
      fs::temp_directory_path() / ("palisade-inspection-store-" + std::to_string(getpid()));
  fs::remove_all(dir);
  {
    InspectionStore store((dir / "inspections.db").string(), 3);
    EXPECT_FALSE(store.latest("vm-a").has_value());
    for (int n = 1; n <= 5; ++n) {
      GuestInventory i = base_inventory();
      i.time_ms = n;
      store.save("vm-a", "web", "offline", i);
    }
    store.save("vm-b", "db", "snapshot", base_inventory());
    EXPECT_EQ(store.count("vm-a"), 3U);
    EXPECT_EQ(store.count("vm-b"), 1U);
    ASSERT_TRUE(store.latest("vm-a").has_value());
    EXPECT_EQ(store.latest("vm-a")->time_ms, 5);
    GuestInventory expected = base_inventory();
    expected.time_ms = 5;
    EXPECT_EQ(*store.latest("vm-a"), expected);
  }
  struct stat st {};
  ASSERT_EQ(::stat((dir / "inspections.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  InspectionStore reopened((dir / "inspections.db").string());
  EXPECT_EQ(reopened.latest("vm-a")->time_ms, 5);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace palisade::hypervisor
