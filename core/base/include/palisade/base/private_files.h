// The files that hold what the agent saw (status, JSON output, event store) are created readable
// by their owner only (0600) or, when the operator names a group (its log shipper's, its
// monitoring's), by that group too (0640, owned by the group). Process-wide, set at start.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace palisade::base {

// The group the agent's output files are shared with; nullopt = owner only.
void set_reader_group(std::optional<gid_t> group);
std::optional<gid_t> reader_group();
// 0640 with a reader group, 0600 without.
mode_t private_file_mode();
// Gives a file the agent just created to the reader group (no-op without one). Throws
// EnvironmentError naming the path when the kernel refuses.
void share_with_reader_group(int fd, const std::string& path);
// open(path, flags) of an output file: created (O_EXCL) with private_file_mode() and given to the
// reader group, or, when it exists, opened as it is (its owner's mode kept). -1 with errno as
// open(2) sets it; throws EnvironmentError naming the path when the group cannot be given.
int open_private_file(const std::string& path, int flags);
// The gid of a group name; throws ConfigurationError naming `where` when there is none.
gid_t group_id(const std::string& name, const std::string& where);

}  // namespace palisade::base
