#include "decode/decoder.h"

namespace palisade::agent {
namespace {

void decode_exec(const pal_record& record, const RecordStrings& s, Event& out) {
  out.exe = normalize_path(s[0]);
  split_argv(s[1], out.argv);
  out.argv_truncated = record.a.exec.argv_truncated != 0;
  out.stdio_sockets = record.a.exec.stdio_sockets;
  out.cwd = normalize_path(s[2]);
  out.exec_filename.assign(s[3]);
}

void decode_fork(const pal_record& record, const RecordStrings&, Event& out) {
  out.target_pid = record.a.fork.child_tgid;
  out.target_start_ns = record.a.fork.child_start_ns;
}

void decode_exit(const pal_record& record, const RecordStrings&, Event& out) {
  out.exit_code = record.a.exit.exit_code;
}

}  // namespace

void register_process_decoders(DecoderTable& table) {
  table.add(PAL_PROC_EXEC, decode_exec);
  table.add(PAL_PROC_SNAPSHOT, decode_exec);  // same layout, synthesized from /proc
  table.add(PAL_PROC_FORK, decode_fork);
  table.add(PAL_PROC_EXIT, decode_exit);
}

}  // namespace palisade::agent
