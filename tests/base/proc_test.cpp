// The /proc, mountinfo and cgroup readers: parsers on recorded text, readers on this process.
#include "palisade/base/proc.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>

#include "palisade/base/cgroup.h"
#include "palisade/base/mountinfo.h"

namespace palisade::base {
namespace {

TEST(Mountinfo, ParsesFixedOptionalAndSuperFields) {
  const auto entry = parse_mountinfo_line(
      "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue");
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->mount_id, 36u);
  EXPECT_EQ(entry->parent_id, 35u);
  EXPECT_EQ(entry->root, "/mnt1");
  EXPECT_EQ(entry->mount_point, "/mnt2");
  EXPECT_EQ(entry->mount_options, "rw,noatime");
  EXPECT_EQ(entry->fstype, "ext3");
  EXPECT_EQ(entry->source, "/dev/root");
  EXPECT_EQ(entry->super_options, "rw,errors=continue");
  EXPECT_TRUE(entry->has_mount_option("noatime"));
  EXPECT_FALSE(entry->has_mount_option("noexec"));
  EXPECT_FALSE(entry->has_mount_option("no")) << "whole options only";
}

TEST(Mountinfo, UndoesTheKernelsEscapesInPaths) {
  const auto entry =
      parse_mountinfo_line(R"(40 1 0:5 / /mnt/with\040space\011tab\134slash rw - tmpfs a\040b rw)");
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->mount_point, "/mnt/with space\ttab\\slash");
  EXPECT_EQ(entry->source, "a b");
  EXPECT_EQ(unescape_mount_text(R"(\040)"), " ") << "an escape at the very end";
  EXPECT_EQ(unescape_mount_text(R"(\04)"), R"(\04)") << "too short to be an escape";
  EXPECT_EQ(unescape_mount_text(R"(\089)"), R"(\089)") << "not octal";
}

TEST(Mountinfo, RefusesMalformedLines) {
  EXPECT_FALSE(parse_mountinfo_line("").has_value());
  EXPECT_FALSE(parse_mountinfo_line("x 1 0:1 / / rw - tmpfs t rw").has_value());
  EXPECT_FALSE(parse_mountinfo_line("1 1 0:1 / / rw shared:1 tmpfs t rw").has_value())
      << "no separator";
  EXPECT_FALSE(parse_mountinfo_line("1 1 0:1 / / rw -").has_value()) << "no filesystem type";
}

TEST(Mountinfo, ParsesAWholeTableAndSkipsBadLines) {
  std::istringstream in(
      "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
      "garbage\n"
      "30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw\n");
  const std::vector<MountEntry> mounts = parse_mountinfo(in);
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(cgroup2_mount_in(mounts), "/sys/fs/cgroup");
}

TEST(Mountinfo, FindsTheCgroup2MountOfHybridHostsAndItsEscapes) {
  std::istringstream hybrid(
      "25 1 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
      "26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
      "27 25 0:24 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n");
  EXPECT_EQ(cgroup2_mount_in(parse_mountinfo(hybrid)), "/sys/fs/cgroup/unified");
  std::istringstream escaped(R"(26 1 0:23 / /run/my\040cgroups rw - cgroup2 cgroup2 rw)");
  EXPECT_EQ(cgroup2_mount_in(parse_mountinfo(escaped)), "/run/my cgroups");
  std::istringstream none("22 1 8:1 / / rw - ext4 /dev/sda1 rw\n");
  EXPECT_EQ(cgroup2_mount_in(parse_mountinfo(none)), "");
}

TEST(Mountinfo, ReadsThisProcessesTable) {
  const std::vector<MountEntry> mounts = read_mountinfo();
  ASSERT_FALSE(mounts.empty());
  bool root = false;
  for (const MountEntry& m : mounts) root = root || m.mount_point == "/";
  EXPECT_TRUE(root);
  EXPECT_TRUE(read_mountinfo(0x7ffffff0U).empty()) << "no such process";
}

TEST(Cgroup, ParsesTheUnifiedLineOnly) {
  std::istringstream v2("0::/system.slice/ssh.service\n");
  EXPECT_EQ(parse_cgroup_v2_path(v2), "/system.slice/ssh.service");
  std::istringstream hybrid("12:cpu,cpuacct:/user.slice\n0::/user.slice/session-1.scope\n");
  EXPECT_EQ(parse_cgroup_v2_path(hybrid), "/user.slice/session-1.scope");
  std::istringstream v1_only("12:cpu,cpuacct:/user.slice\n");
  EXPECT_EQ(parse_cgroup_v2_path(v1_only), "");
}

TEST(Cgroup, TheIdOfThisProcessIsTheInodeOfItsCgroupDirectory) {
  const std::string mount = cgroup2_mount();
  ASSERT_FALSE(mount.empty()) << "this machine runs cgroup v2";
  const std::string path = cgroup_v2_path_of(static_cast<uint32_t>(getpid()));
  ASSERT_FALSE(path.empty());
  struct stat st {};
  ASSERT_EQ(stat((mount + path).c_str(), &st), 0);
  EXPECT_EQ(cgroup_id_of_process(static_cast<uint32_t>(getpid())), st.st_ino);
  EXPECT_EQ(cgroup_id_of_path(path), st.st_ino);
  EXPECT_EQ(cgroup_id_of_path(""), 0u);
  EXPECT_EQ(cgroup_id_of_path("/no/such/cgroup"), 0u);
  EXPECT_EQ(cgroup_id_of_process(0x7ffffff0U), 0u);
}

TEST(Proc, ParsesStatusIds) {
  const auto status = parse_proc_status(
      "Name:\tbash\nTgid:\t100\nPid:\t101\nPPid:\t99\nUid:\t1000\t0\t0\t0\nGid:\t10\t20\t20\t20\n"
      "VmRSS:\t    5120 kB\n");
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->tgid, 100u);
  EXPECT_EQ(status->ppid, 99u);
  EXPECT_EQ(status->uid, 1000u);
  EXPECT_EQ(status->euid, 0u);
  EXPECT_EQ(status->gid, 10u);
  EXPECT_EQ(status->egid, 20u);
  EXPECT_EQ(status->rss_kib, 5120u);
  EXPECT_FALSE(parse_proc_status("Name:\tbash\nTgid:\t1\n").has_value()) << "lines missing";
  EXPECT_FALSE(parse_proc_status("Tgid:\tx\nPPid:\t1\nUid:\t0\t0\nGid:\t0\t0\n").has_value());
}

TEST(Proc, ParsesStatWithACommThatHasSpacesAndParentheses) {
  std::string text = "4242 (my (odd) name) S 77";
  for (int field = 5; field <= 21; ++field) text += " " + std::to_string(field);
  text += " 123456 999 0";
  const auto parsed = parse_proc_stat(text);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->ppid, 77u);
  EXPECT_EQ(parsed->start_ticks, 123456u);
  EXPECT_FALSE(parse_proc_stat("4242 (short) S 1 2 3").has_value());
  EXPECT_FALSE(parse_proc_stat("no parenthesis").has_value());
}

TEST(Proc, ReadsThisProcess) {
  const auto self = static_cast<uint32_t>(getpid());
  const auto status = read_proc_status(self);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->tgid, self);
  EXPECT_EQ(status->ppid, static_cast<uint32_t>(getppid()));
  EXPECT_EQ(status->uid, getuid());
  EXPECT_GT(status->rss_kib, 0u);
  const auto parsed = parse_proc_stat(read_proc_file(self, "stat"));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->ppid, static_cast<uint32_t>(getppid()));
  EXPECT_EQ(read_proc_link(0, "exe"), read_proc_link(self, "exe"));
  EXPECT_FALSE(read_proc_link(self, "exe").empty());
  struct stat ns {};
  ASSERT_EQ(stat("/proc/self/ns/pid", &ns), 0);
  EXPECT_EQ(namespace_inode(self, "pid"), ns.st_ino);
}

TEST(Proc, AProcessThatIsGoneReadsAsNothing) {
  constexpr uint32_t kNoSuchPid = 0x7ffffff0U;
  EXPECT_FALSE(read_proc_status(kNoSuchPid).has_value());
  EXPECT_EQ(read_proc_file(kNoSuchPid, "stat"), "");
  EXPECT_EQ(read_proc_link(kNoSuchPid, "exe"), "");
  EXPECT_EQ(namespace_inode(kNoSuchPid, "pid"), 0u);
  EXPECT_EQ(proc_path(kNoSuchPid, "exe"), "/proc/2147483632/exe");
  EXPECT_EQ(proc_path(0, "exe"), "/proc/self/exe");
}

}  // namespace
}  // namespace palisade::base
