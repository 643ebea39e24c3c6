#include "guest_console.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "palisade/base/unique_fd.h"

namespace palisade::testing {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// busybox's line editor takes lines of up to 1024 bytes; keep clear of it with the markers added.
constexpr size_t kMaxCommandBytes = 800;
constexpr milliseconds kPollInterval{20};

// errno is read before anything else can change it: the arguments allocate nothing.
std::system_error os_error(std::string_view what, const std::string& path) {
  const int error = errno;
  return {error, std::generic_category(), std::string(what) + " " + path};
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw os_error("cannot read", path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string without_cr(std::string_view raw) {
  std::string text;
  text.reserve(raw.size());
  std::copy_if(raw.begin(), raw.end(), std::back_inserter(text), [](char c) { return c != '\r'; });
  return text;
}

// The last bytes of a text, for error messages.
std::string tail(const std::string& text, size_t bytes = 600) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

std::string single_quoted(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return quoted + "'";
}

std::string random_tag() {
  std::random_device random;
  std::ostringstream tag;
  tag << "pal" << std::hex << random() << random();
  return tag.str();
}

// Where `needle` starts a line of `text` at or after `from`, or npos.
size_t find_line_start(const std::string& text, std::string_view needle, size_t from = 0) {
  for (size_t at = text.find(needle, from); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    if (at == 0 || text[at - 1] == '\n') {
      return at;
    }
  }
  return std::string::npos;
}

// The console log from a given offset on: QEMU only appends to it while the domain runs.
class LogReader {
 public:
  LogReader(const std::string& path, off_t from) : path_(path), offset_(from) {
    fd_ = base::UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) {
      throw os_error("cannot open the console log", path);
    }
  }

  static off_t size_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      throw os_error("cannot stat the console log", path);
    }
    return st.st_size;
  }

  // Appends what was written since the last call to text() ('\r' removed).
  void update() {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) {
      throw os_error("cannot stat the console log", path_);
    }
    if (st.st_size < offset_) {
      throw std::runtime_error("the console log " + path_ +
                               " was truncated: did the domain restart during the command?");
    }
    char buffer[16384];
    while (true) {
      ssize_t n = ::pread(fd_.get(), buffer, sizeof buffer, offset_);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        throw os_error("cannot read the console log", path_);
      }
      if (n == 0) {
        break;
      }
      offset_ += n;
      text_ += without_cr(std::string_view(buffer, static_cast<size_t>(n)));
    }
  }

  const std::string& text() const { return text_; }

 private:
  std::string path_;
  off_t offset_;
  base::UniqueFd fd_;
  std::string text_;
};

// The slave side of the console pty, held open while a command runs: QEMU drops what is written
// to the pty while no one holds it open, and notices an opener only on its next check (~1 s).
class PtySession {
 public:
  PtySession(const std::string& path, Clock::time_point deadline) : path_(path) {
    fd_ = base::UniqueFd(::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
    if (!fd_) {
      throw os_error("cannot open the console pty", path);
    }
    lock(deadline);
    // Raw and without echo: with echo on, the pty would send the guest's output back to it as
    // input; raw also keeps the '\r' that ends our line from being turned into anything else.
    termios mode{};
    if (::tcgetattr(fd_.get(), &mode) != 0) {
      throw os_error("tcgetattr on", path);
    }
    ::cfmakeraw(&mode);
    if (::tcsetattr(fd_.get(), TCSANOW, &mode) != 0) {
      throw os_error("tcsetattr on", path);
    }
    ::tcflush(fd_.get(), TCIFLUSH);
  }

  void write_all(std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_.get(), data.data(), data.size());
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        throw os_error("cannot write to the console pty", path_);
      } else if (Clock::now() > deadline) {
        throw std::runtime_error("the console pty " + path_ + " accepts no input");
      } else {
        wait(POLLOUT);
      }
    }
  }

  // Reads and drops what the guest printed: the same bytes reach the console log, and a full pty
  // buffer would stall the guest's serial port.
  void drain() {
    char buffer[4096];
    while (::read(fd_.get(), buffer, sizeof buffer) > 0) {
    }
  }

  void wait(short events) {
    pollfd pfd{fd_.get(), events, 0};
    ::poll(&pfd, 1, static_cast<int>(kPollInterval.count()));
  }

 private:
  void lock(Clock::time_point deadline) {
    while (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        throw os_error("cannot lock", path_);
      }
      if (Clock::now() > deadline) {
        throw std::runtime_error("another user holds the console pty " + path_);
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  std::string path_;
  base::UniqueFd fd_;
};

// The output between "<tag>-begin\n" and "\n<tag>-end <status>\n", once the end line is whole.
std::optional<GuestOutput> parse_output(const std::string& text, const std::string& tag) {
  const std::string begin = tag + "-begin\n";
  size_t start = find_line_start(text, begin);
  if (start == std::string::npos) {
    return std::nullopt;
  }
  start += begin.size();
  const std::string end = "\n" + tag + "-end ";
  size_t stop = text.find(end, start);
  if (stop == std::string::npos) {
    return std::nullopt;
  }
  size_t status_at = stop + end.size();
  size_t line_end = text.find('\n', status_at);
  if (line_end == std::string::npos) {
    return std::nullopt;
  }
  GuestOutput out;
  out.text = text.substr(start, stop - start);
  auto [rest, error] =
      std::from_chars(text.data() + status_at, text.data() + line_end, out.exit_status);
  if (error != std::errc() || rest != text.data() + line_end) {
    throw std::runtime_error("unreadable exit status in the guest's end marker: " +
                             text.substr(stop + 1, line_end - stop - 1));
  }
  return out;
}

}  // namespace

std::optional<TestVm> test_vm_from_env() {
  auto var = [](const char* name, bool required) {
    const char* value = std::getenv(name);
    if (value == nullptr && required) {
      throw std::runtime_error(std::string(name) +
                               " is not set although PALISADE_TEST_DOMAIN is: source the env.sh "
                               "of scripts/libvirt-up.sh again");
    }
    return std::string(value == nullptr ? "" : value);
  };
  if (std::getenv("PALISADE_TEST_DOMAIN") == nullptr) {
    return std::nullopt;
  }
  return TestVm{.uri = var("PALISADE_TEST_LIBVIRT_URI", true),
                .domain = var("PALISADE_TEST_DOMAIN", true),
                .disk = var("PALISADE_TEST_DISK", true),
                .console_log = var("PALISADE_TEST_CONSOLE_LOG", true),
                .mac = var("PALISADE_TEST_MAC", true),
                .tap_mac = var("PALISADE_TEST_TAP_MAC", false),
                .tap_dev = var("PALISADE_TEST_TAP_DEV", false)};
}

std::string find_console_pty(const std::string& domain, const std::string& status_dir) {
  if (domain.empty() || domain.find('/') != std::string::npos) {
    throw std::invalid_argument("not a domain name: '" + domain + "'");
  }
  const std::string path = status_dir + "/" + domain + ".xml";
  std::ifstream probe(path);
  if (!probe) {
    throw std::runtime_error("no live status XML " + path + ": is " + domain +
                             " running under the system libvirtd? (scripts/libvirt-up.sh)");
  }
  const std::string xml = read_whole(path);
  for (std::string_view open : {"<serial type='pty'", "<serial type=\"pty\""}) {
    size_t serial = xml.find(open);
    if (serial == std::string::npos) {
      continue;
    }
    size_t serial_end = xml.find("</serial>", serial);
    size_t source = xml.find("<source path=", serial);
    if (source == std::string::npos || source > serial_end) {
      break;
    }
    size_t value = source + std::string_view("<source path=").size();
    const char quote = xml[value];
    size_t value_end = xml.find(quote, value + 1);
    if (value_end == std::string::npos || value_end > serial_end) {
      break;
    }
    return xml.substr(value + 1, value_end - value - 1);
  }
  throw std::runtime_error(path + " has no <serial type='pty'> with a <source path>: " + domain +
                           " needs a pty serial console");
}

void wait_for_guest_ready(const std::string& console_log, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string text;
  while (true) {
    std::ifstream in(console_log, std::ios::binary);
    if (in) {
      std::ostringstream content;
      content << in.rdbuf();
      text = without_cr(content.str());
      size_t at = find_line_start(text, kGuestReadyMarker);
      if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
        return;
      }
    }
    if (Clock::now() > deadline) {
      throw std::runtime_error(
          "the guest printed no " + std::string(kGuestReadyMarker) + " line in " + console_log +
          " within " + std::to_string(timeout.count()) + " ms; the log ends with:\n" + tail(text));
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

GuestConsole::GuestConsole(std::string pty_path, std::string console_log)
    : pty_path_(std::move(pty_path)), console_log_(std::move(console_log)) {}

GuestOutput GuestConsole::exec(const std::string& command, milliseconds timeout) {
  if (std::any_of(command.begin(), command.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    throw std::invalid_argument("a guest command is one line without control characters: " +
                                command);
  }
  const std::string tag = random_tag();
  // The markers are printed from two words, so the line the shell echoes never contains them.
  // eval keeps a command that ends in '&' or has its own ';' intact.
  const std::string line = "\x15printf '%s%s\\n' " + tag + " -begin; eval " +
                           single_quoted(command) + "; printf '\\n%s%s %d\\n' " + tag +
                           " -end \"$?\"\r";
  if (line.size() > kMaxCommandBytes) {
    throw std::invalid_argument("guest command too long for the console's line editor (" +
                                std::to_string(command.size()) + " bytes): " + command);
  }
  const auto deadline = Clock::now() + timeout;
  PtySession pty(pty_path_, deadline);
  LogReader log(console_log_, LogReader::size_of(console_log_));
  pty.write_all(line, deadline);
  while (Clock::now() < deadline) {
    pty.drain();
    log.update();
    if (auto out = parse_output(log.text(), tag)) {
      return *out;
    }
    pty.wait(POLLIN);
  }
  // Interrupt the command so that the shell takes the next one, then report.
  pty.write_all("\x03", Clock::now() + milliseconds(500));
  for (int i = 0; i < 25; ++i) {
    pty.drain();
    pty.wait(POLLIN);
  }
  log.update();
  throw std::runtime_error("guest command did not finish within " +
                           std::to_string(timeout.count()) + " ms (interrupted): " + command +
                           "\nconsole " + pty_path_ + ", log " + console_log_ +
                           "; the console since the command:\n" + tail(log.text()));
}

std::string GuestConsole::run(const std::string& command, milliseconds timeout) {
  GuestOutput out = exec(command, timeout);
  if (out.exit_status != 0) {
    throw std::runtime_error("guest command exited with " + std::to_string(out.exit_status) + ": " +
                             command + "\n" + tail(out.text));
  }
  return out.text;
}

void GuestConsole::start_cpu_burn(std::chrono::seconds duration) {
  // Started from a subshell, so that the console shell keeps no job whose end it would report.
  run("(timeout " + std::to_string(duration.count()) +
      " sh -c 'while :; do :; done' >/dev/null 2>&1 &)");
}

bool GuestConsole::carrier(const std::string& iface) {
  if (iface.empty() ||
      iface.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != std::string::npos) {
    throw std::invalid_argument("not an interface name: '" + iface + "'");
  }
  const std::string value = run("cat /sys/class/net/" + iface + "/carrier");
  if (value == "1\n") {
    return true;
  }
  if (value == "0\n") {
    return false;
  }
  throw std::runtime_error("unexpected carrier of " + iface + " in the guest: '" + value + "'");
}

}  // namespace palisade::testing
