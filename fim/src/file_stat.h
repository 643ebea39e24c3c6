// FileRecords from stat data, and the test for "could this file have been written since".
#pragma once

#include <sys/stat.h>

#include <string>

#include "palisade/fim/fim.h"

namespace palisade::fim {

// A record from lstat data: type, mode, owner, size, times, inode; no hashes, no link target.
FileRecord record_of(const std::string& path, const struct stat& st);

// True when a write could have happened since `before` was taken: any of size, mtime, ctime or
// inode differs. Without one, the content cannot have changed short of raw device access.
bool touched(const FileRecord& before, const FileRecord& now);

}  // namespace palisade::fim
