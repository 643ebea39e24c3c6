// Reading an input file with a size limit: enough of it to tell that it is too big, never all of
// a file that is (a 50 MB policy document, a configuration that is really a log).
#pragma once

#include <cstddef>
#include <string>

namespace palisade::base {

// At most max_bytes + 1 bytes of the file at path: more than max_bytes means it is too big. Throws
// EnvironmentError naming the file when it cannot be opened or read.
std::string read_file_prefix(const std::string& path, size_t max_bytes);

}  // namespace palisade::base
