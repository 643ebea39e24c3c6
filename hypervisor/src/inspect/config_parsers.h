// Readers of the guest's configuration files, on text already fetched (so they are tested without
// an appliance). Each takes what the guest wrote at face value and never fails on it: a line it
// cannot make sense of is counted in `malformed` for the caller to warn about.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "palisade/hypervisor/guest_inspection.h"

namespace palisade::hypervisor::inspect {

std::vector<GuestUser> parse_passwd(std::string_view text, size_t& malformed);
std::vector<GuestGroup> parse_group(std::string_view text, size_t& malformed);

// The lines of a sudoers file that take effect: continuation lines joined, comments and blank
// lines dropped ("#include" and "#includedir" are directives, "#1000" a user ID, not comments),
// white space collapsed.
std::vector<std::string> sudoers_lines(std::string_view text);

// A crontab. system_format: "/etc/crontab" and /etc/cron.d, whose lines name the user after the
// schedule; otherwise a user's crontab, whose owner is user. Variable assignments are skipped.
std::vector<CronEntry> parse_crontab(std::string_view text, const std::string& file,
                                     const std::string& user, bool system_format,
                                     size_t& malformed);

// Installed packages from dpkg's status database ("Status: ... installed" only).
std::vector<Package> parse_dpkg_status(std::string_view text);

// sshd's AuthorizedKeysFile patterns (the first setting outside a Match block, or sshd's default
// ".ssh/authorized_keys .ssh/authorized_keys2"); empty for "none".
std::vector<std::string> authorized_keys_patterns(std::string_view sshd_config);
// A pattern made into a path for one account: %h, %u, %U and %% expanded, relative to the home.
std::string expand_keys_pattern(const std::string& pattern, const GuestUser& user);

// Whole lines, without their '\n'.
std::vector<std::string_view> split_lines(std::string_view text);
std::string_view trim(std::string_view text);

}  // namespace palisade::hypervisor::inspect
