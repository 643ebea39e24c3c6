// The guest-console helper against the real test guest of scripts/libvirt-up.sh, and its pty
// lookup against status XML written here.
#include "guest_console.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace palisade::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class ConsolePtyLookup : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("palisade-pty-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write_status(const std::string& domain, const std::string& devices) {
    std::ofstream(dir_ / (domain + ".xml"))
        << "<domstatus state='running'>\n  <domain type='qemu' id='7'>\n    <devices>\n"
        << devices << "    </devices>\n  </domain>\n</domstatus>\n";
  }

  fs::path dir_;
};

TEST_F(ConsolePtyLookup, ReadsTheSerialPtyFromTheLiveStatusXml) {
  write_status("vm1",
               "      <interface type='user'><source path='/not/this'/></interface>\n"
               "      <serial type='pty'>\n        <source path='/dev/pts/7'/>\n"
               "        <log file='/tmp/console.log' append='off'/>\n      </serial>\n"
               "      <console type='pty' tty='/dev/pts/7'/>\n");
  EXPECT_EQ(find_console_pty("vm1", dir_), "/dev/pts/7");
}

TEST_F(ConsolePtyLookup, ReportsADomainWithoutAPtySerial) {
  write_status("vm2",
               "      <serial type='file'>\n        <source path='/tmp/x'/>\n      </serial>\n");
  EXPECT_THROW(find_console_pty("vm2", dir_), std::runtime_error);
}

TEST_F(ConsolePtyLookup, ReportsADomainThatIsNotRunning) {
  try {
    find_console_pty("absent", dir_);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.xml"), std::string::npos) << e.what();
  }
}

// Checked before the pty is touched.
TEST(GuestConsoleInput, RefusesCommandsThatAreNotOneLine) {
  GuestConsole console("/nonexistent/pty", "/nonexistent/console.log");
  EXPECT_THROW(console.exec("echo a\necho b"), std::invalid_argument);
  EXPECT_THROW(console.exec("echo \x1b[6n"), std::invalid_argument);
  EXPECT_THROW(console.exec(std::string(900, 'x')), std::invalid_argument);
}

// Needs the running test guest: root, and scripts/libvirt-up.sh's env.sh sourced.
class GuestConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root: the guest's pty and libvirt's state are root's";
    }
    std::optional<TestVm> vm = test_vm_from_env();
    if (!vm) {
      FAIL() << kTestVmMissing;
    }
    console_.emplace(find_console_pty(vm->domain), vm->console_log);
  }

  GuestConsole& console() { return *console_; }

 private:
  std::optional<GuestConsole> console_;
};

TEST_F(GuestConsoleTest, ReturnsWhatACommandPrints) {
  GuestOutput out = console().exec("echo hello");
  EXPECT_EQ(out.text, "hello\n");
  EXPECT_EQ(out.exit_status, 0);
}

TEST_F(GuestConsoleTest, ReturnsOutputWithoutATrailingNewlineAndEmptyOutput) {
  EXPECT_EQ(console().run("printf 'a b'"), "a b");
  EXPECT_EQ(console().run("true"), "");
}

TEST_F(GuestConsoleTest, ReportsTheExitStatus) {
  EXPECT_EQ(console().exec("sh -c 'exit 3'").exit_status, 3);
  GuestOutput missing = console().exec("cat /no/such/file");
  EXPECT_EQ(missing.exit_status, 1);
  EXPECT_NE(missing.text.find("No such file"), std::string::npos) << missing.text;
  EXPECT_THROW(console().run("false"), std::runtime_error);
}

TEST_F(GuestConsoleTest, KeepsQuotesAndShellSyntaxOfTheCommand) {
  EXPECT_EQ(console().run("x='it'\"'\"'s'; echo \"$x\" | tr a-z A-Z; echo \"done;\""),
            "IT'S\ndone;\n");
}

// More than the pty's buffer: the helper drains the pty, or the guest's serial port would stall.
TEST_F(GuestConsoleTest, ReturnsLongOutputsWhole) {
  std::string out = console().run("seq 1 5000");
  std::ostringstream expected;
  for (int i = 1; i <= 5000; ++i) {
    expected << i << '\n';
  }
  EXPECT_EQ(out, expected.str());
}

TEST_F(GuestConsoleTest, ReadsTheCarrierOfBothNics) {
  EXPECT_EQ(console().run("cat /sys/class/net/eth0/carrier"), "1\n");
  EXPECT_TRUE(console().carrier("eth0"));
  EXPECT_TRUE(console().carrier("eth1"));
  EXPECT_THROW(console().carrier("eth9"), std::runtime_error);
}

// The guest's own accounting: the busy loop takes most of the vCPU while it runs.
TEST_F(GuestConsoleTest, CpuBurnKeepsTheGuestBusy) {
  auto idle_and_total = [this] {
    std::istringstream cpu(console().run("head -n 1 /proc/stat"));
    std::string label;
    long long value = 0, total = 0, idle = 0;
    cpu >> label;
    for (int field = 0; cpu >> value; ++field) {
      total += value;
      if (field == 3) {
        idle = value;
      }
    }
    return std::pair{idle, total};
  };
  console().start_cpu_burn(4s);
  std::this_thread::sleep_for(500ms);
  auto [idle0, total0] = idle_and_total();
  std::this_thread::sleep_for(2s);
  auto [idle1, total1] = idle_and_total();
  ASSERT_GT(total1, total0);
  double busy = 1.0 - static_cast<double>(idle1 - idle0) / static_cast<double>(total1 - total0);
  EXPECT_GT(busy, 0.8);
}

TEST_F(GuestConsoleTest, InterruptsACommandThatTimesOutAndStaysUsable) {
  EXPECT_THROW(console().exec("sleep 60", 1500ms), std::runtime_error);
  EXPECT_EQ(console().run("echo still here"), "still here\n");
}

}  // namespace
}  // namespace palisade::testing
