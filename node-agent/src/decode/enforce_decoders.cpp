#include <algorithm>
#include <cstring>

#include "decode/decoder.h"
#include "enforce/enforce_abi.h"

namespace palisade::agent {
namespace {

static_assert(sizeof(pal_enforce_args) <= sizeof(pal_args),
              "enforcement arguments must fit the sensor's argument union");

std::string_view hook_name(uint8_t hook) {
  switch (hook) {
    case PAL_HOOK_CONNECT:
      return "connect";
    case PAL_HOOK_SENDMSG:
      return "sendmsg";
    case PAL_HOOK_SKB_INGRESS:
      return "ingress";
    case PAL_HOOK_SKB_EGRESS:
      return "egress";
    case PAL_HOOK_EXEC_KILL:
      return "exec-kill";
    case PAL_HOOK_EXEC_LSM:
      return "exec-lsm";
    case PAL_HOOK_EXEC_FANOTIFY:
      return "exec-fanotify";
    case PAL_HOOK_OPEN_FANOTIFY:
      return "open-fanotify";
    default:
      return "unknown";
  }
}

std::string_view reason_name(uint8_t reason) {
  switch (reason) {
    case PAL_REASON_DEFAULT:
      return "default-deny";
    case PAL_REASON_RULE:
      return "deny-rule";
    case PAL_REASON_ISOLATED:
      return "isolated";
    case PAL_REASON_NOT_ALLOWLISTED:
      return "not-allowlisted";
    case PAL_REASON_READ_ONLY:
      return "read-only";
    case PAL_REASON_DRIFT:
      return "drift";
    default:
      return "unknown";
  }
}

pal_enforce_args enforce_args(const pal_record& record) {
  pal_enforce_args args{};
  std::memcpy(&args, &record.a, sizeof(args));
  return args;
}

// Strings the enforcer adds in user space: the policy, the rule and the workload it was bound to.
void decode_common(const pal_enforce_args& args, const RecordStrings& strings, Event& out) {
  EnforcementInfo& info = out.enforcement;
  info.hook = hook_name(args.hook);
  info.enforced = args.verdict == PAL_VERDICT_DENIED;
  info.reason = reason_name(args.reason);
  info.rule = args.rule;
  info.slot = args.slot;
  info.policy.assign(strings[1]);
  info.rule_text.assign(strings[2]);
  info.workload.assign(strings[3]);
}

void decode_net_deny(const pal_record& record, const RecordStrings& strings, Event& out) {
  const pal_enforce_args args = enforce_args(record);
  decode_common(args, strings, out);
  const pal_enforce_net& n = args.u.net;
  out.family = n.family;
  out.protocol = n.protocol;
  out.sock_type = n.protocol == 17 ? 2 : 1;  // SOCK_DGRAM : SOCK_STREAM
  std::copy(std::begin(n.local_addr), std::end(n.local_addr), out.local.addr.begin());
  std::copy(std::begin(n.remote_addr), std::end(n.remote_addr), out.remote.addr.begin());
  out.local.port = n.local_port;
  out.remote.port = n.remote_port;
}

void decode_exec_deny(const pal_record& record, const RecordStrings& strings, Event& out) {
  const pal_enforce_args args = enforce_args(record);
  decode_common(args, strings, out);
  out.enforcement.dev = args.u.exec.dev;
  out.enforcement.ino = args.u.exec.ino;
  out.exe = strings[0].empty() || strings[0][0] != '/' ? std::string(strings[0])
                                                       : normalize_path(strings[0]);
  out.path = out.exe;
}

}  // namespace

void decode_file_deny(const pal_record& record, const RecordStrings& strings, Event& out) {
  decode_common(enforce_args(record), strings, out);
  out.path = normalize_path(strings[0]);
  out.flags = 01;  // O_WRONLY: what was asked
}

void register_enforce_decoders(DecoderTable& table) {
  table.add(PAL_ENF_NET_DENY, decode_net_deny);
  table.add(PAL_ENF_EXEC_DENY, decode_exec_deny);
  table.add(PAL_ENF_FILE_DENY, decode_file_deny);
}

}  // namespace palisade::agent
