// Driving palisade's test guest (scripts/libvirt-up.sh) from the hypervisor tests: running shell
// commands inside it through its serial console and reading what they print.
//
// The console is a pty that QEMU holds the master side of. A command is written to the pty's slave
// side, and its output is read from the console log QEMU writes (the domain's <serial><log file>),
// between two marker lines the command line prints around it. docs/hypervisor-testenv.md has the
// details; scripts/libvirt-up.sh builds the guest and exports the variables read below.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace palisade::testing {

// The line the guest's /init prints on the console once it is up (scripts/libvirt-up.sh).
inline constexpr std::string_view kGuestReadyMarker = "PALISADE-GUEST-READY";

// What scripts/libvirt-up.sh exports in $PALISADE_VM_DIR/env.sh.
struct TestVm {
  std::string uri;          // PALISADE_TEST_LIBVIRT_URI (qemu:///system)
  std::string domain;       // PALISADE_TEST_DOMAIN
  std::string disk;         // PALISADE_TEST_DISK: the qcow2 image, for libguestfs
  std::string console_log;  // PALISADE_TEST_CONSOLE_LOG
  std::string mac;          // PALISADE_TEST_MAC: the user-mode NIC, guest eth0
  std::string tap_mac;      // PALISADE_TEST_TAP_MAC: the tap NIC, guest eth1
  std::string tap_dev;      // PALISADE_TEST_TAP_DEV: the tap NIC's host device
};

// The test VM described by the environment; nothing when PALISADE_TEST_DOMAIN is unset. Throws
// when the domain is set but another variable the helpers need is missing.
std::optional<TestVm> test_vm_from_env();

// What to tell whoever ran the hypervisor tests without the test environment.
inline constexpr std::string_view kTestVmMissing =
    "PALISADE_TEST_DOMAIN is not set: run `bash scripts/libvirt-up.sh` as root and source the "
    "env.sh it writes (default /var/tmp/palisade-vm/env.sh); scripts/test.sh does both";

// The serial console's pty (/dev/pts/N) of a running domain, from the live status XML the system
// libvirtd keeps as <status_dir>/<domain>.xml. The pty changes each time the domain starts.
std::string find_console_pty(const std::string& domain,
                             const std::string& status_dir = "/run/libvirt/qemu");

// Waits until the console log holds the guest's READY line: after the domain (re)started, the
// console shell is there once this returns. Throws on timeout.
void wait_for_guest_ready(const std::string& console_log, std::chrono::milliseconds timeout);

struct GuestOutput {
  std::string text;  // what the command wrote to stdout and stderr, '\r' removed
  int exit_status = 0;
};

// Runs commands in the shell on the guest's serial console, one at a time (an exclusive lock on
// the pty keeps two users apart, in this process or another).
class GuestConsole {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{20'000};

  GuestConsole(std::string pty_path, std::string console_log);

  // Runs one line of shell in the guest and returns its output. The command must not read
  // standard input (the console) or exit the shell. On timeout the command is interrupted with
  // Ctrl-C and std::runtime_error thrown; a command with control characters or longer than the
  // shell's line editor accepts is a std::invalid_argument.
  GuestOutput exec(const std::string& command, std::chrono::milliseconds timeout = kDefaultTimeout);

  // exec(), returning the output; throws when the command exits non-zero.
  std::string run(const std::string& command, std::chrono::milliseconds timeout = kDefaultTimeout);

  // Starts a busy loop in the guest's background that keeps its vCPU busy for `duration`, and
  // returns at once.
  void start_cpu_burn(std::chrono::seconds duration);

  // The guest's view of a NIC's carrier (/sys/class/net/<iface>/carrier): eth0 is the user-mode
  // NIC, eth1 the tap NIC. Throws when the interface is missing or administratively down.
  bool carrier(const std::string& iface);

  const std::string& pty_path() const { return pty_path_; }

 private:
  std::string pty_path_;
  std::string console_log_;
};

}  // namespace palisade::testing
