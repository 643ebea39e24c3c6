// libFuzzer target: arbitrary bytes as each configuration file palisade reads from a guest disk
// (passwd, group, sudoers, crontabs, dpkg status, authorized_keys, sshd_config). A guest is not
// trusted: every reader must take anything without crashing, hanging or leaking.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "inspect/config_parsers.h"
#include "inspect/ssh_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::hypervisor;
  using namespace palisade::hypervisor::inspect;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  size_t malformed = 0;
  const auto users = parse_passwd(text, malformed);
  (void)parse_group(text, malformed);
  (void)sudoers_lines(text);
  (void)parse_crontab(text, "/etc/crontab", "root", true, malformed);
  (void)parse_crontab(text, "/var/spool/cron/crontabs/u", "u", false, malformed);
  (void)parse_dpkg_status(text);
  (void)parse_authorized_keys(text, "root", "/root/.ssh/authorized_keys", malformed);
  for (const auto& pattern : authorized_keys_patterns(text)) {
    for (const auto& user : users) (void)expand_keys_pattern(pattern, user);
  }
  return 0;
}
