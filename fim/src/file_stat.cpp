#include "file_stat.h"

#include "palisade/base/clock.h"

namespace palisade::fim {

FileRecord record_of(const std::string& path, const struct stat& st) {
  FileRecord r;
  r.path = path;
  if (S_ISREG(st.st_mode)) {
    r.type = FileType::kFile;
  } else if (S_ISDIR(st.st_mode)) {
    r.type = FileType::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    r.type = FileType::kSymlink;
  } else {
    r.type = FileType::kOther;
  }
  r.mode = st.st_mode & 07777U;
  r.uid = st.st_uid;
  r.gid = st.st_gid;
  r.size = static_cast<uint64_t>(st.st_size);
  r.mtime_ns = base::timespec_ns(st.st_mtim);
  r.ctime_ns = base::timespec_ns(st.st_ctim);
  r.inode = st.st_ino;
  return r;
}

bool touched(const FileRecord& before, const FileRecord& now) {
  return before.size != now.size || before.mtime_ns != now.mtime_ns ||
         before.ctime_ns != now.ctime_ns || before.inode != now.inode;
}

}  // namespace palisade::fim
