// Replacing a small file (a status file, a state file) so that a reader sees the old content or
// the new one, never a partial write.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace palisade::base {

// Writes `text` to a temporary file next to `path` (created with `mode`, and owned by `group` when
// one is given), flushes it and renames it over `path`, creating missing parent directories.
// Throws EnvironmentError naming the path and the reason (a directory given as the path
// included); leaves no temporary file behind.
void write_file_atomically(const std::string& path, std::string_view text, mode_t mode = 0600,
                           std::optional<gid_t> group = std::nullopt);

}  // namespace palisade::base
