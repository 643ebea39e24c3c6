#include "decode/decoder.h"

namespace palisade::agent {
namespace {

void decode_file(const pal_record& record, const RecordStrings& s, Event& out) {
  out.path = normalize_path(s[0]);
  if (!s[1].empty()) out.path2 = normalize_path(s[1]);
  out.flags = record.a.file.flags;
  out.mode = record.a.file.mode;
  out.target_uid = record.a.file.uid;
  out.target_gid = record.a.file.gid;
}

}  // namespace

void register_file_decoders(DecoderTable& table) {
  for (uint16_t kind : {PAL_FILE_OPEN, PAL_FILE_UNLINK, PAL_FILE_RMDIR, PAL_FILE_RENAME,
                        PAL_FILE_CHMOD, PAL_FILE_CHOWN}) {
    table.add(kind, decode_file);
  }
}

}  // namespace palisade::agent
