#include "decode/decoder.h"

namespace palisade::agent {
namespace {

void decode_priv(const pal_record& record, const RecordStrings& s, Event& out) {
  const pal_priv_args& p = record.a.priv;
  for (size_t i = 0; i < out.args.size(); ++i) out.args[i] = p.arg[i];
  out.old_uid = p.old_uid;
  out.old_euid = p.old_euid;
  out.old_gid = p.old_gid;
  out.old_egid = p.old_egid;
  for (auto str : s) {
    if (!str.empty()) out.strings.emplace_back(str);
  }
}

// finit_module and mount carry a resolved path first.
void decode_priv_with_path(const pal_record& record, const RecordStrings& s, Event& out) {
  decode_priv(record, s, out);
  if (out.kind == EventKind::kPrivModule && out.args[3] == 1) {  // finit_module
    out.path = normalize_path(s[0]);
    out.strings.clear();
  }
  if (out.kind == EventKind::kPrivMount) out.path = normalize_path(s[1]);
}

}  // namespace

void register_privilege_decoders(DecoderTable& table) {
  for (uint16_t kind : {PAL_PRIV_SETUID, PAL_PRIV_SETGID, PAL_PRIV_CAPSET, PAL_PRIV_PTRACE,
                        PAL_PRIV_UNSHARE, PAL_PRIV_SETNS, PAL_PRIV_MEMFD, PAL_PRIV_BPF}) {
    table.add(kind, decode_priv);
  }
  table.add(PAL_PRIV_MODULE, decode_priv_with_path);
  table.add(PAL_PRIV_MOUNT, decode_priv_with_path);
}

}  // namespace palisade::agent
