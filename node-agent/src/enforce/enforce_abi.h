/* The enforcement programs' maps and denial records, shared by enforcer.bpf.c and user space.
 *
 * Workloads are cgroups: the agent binds a cgroup v2 id to a workload slot whose rules live in the
 * kernel, so enforcement keeps working with the agent gone. The maps are pinned under bpffs with
 * this layout; changing a struct below requires bumping PAL_ENFORCE_ABI, which changes the pin
 * directory, so that an agent never adopts maps of another layout.
 */
#ifndef PALISADE_ENFORCE_ABI_H
#define PALISADE_ENFORCE_ABI_H

#include "../sensor/sensor_abi.h"

#define PAL_ENFORCE_ABI 1
#define PAL_MAX_WORKLOAD_SLOTS 1024
#define PAL_MAX_NET_RULES 64
#define PAL_MAX_BOUND_CGROUPS 16384
#define PAL_MAX_EXEC_ALLOW 65536
#define PAL_MAX_GUARDS 64 /* parents whose unidentified child cgroups get the default posture */
#define PAL_MAX_GUARD_DEPTH 16 /* cgroup levels searched for a guarded parent */
#define PAL_MAX_PEER_ADDRS 65536

/* pal_workload.flags */
#define PAL_WL_EGRESS 0x1               /* egress rules apply */
#define PAL_WL_EGRESS_ENFORCE 0x2       /* ... and deny (else audit: report, allow) */
#define PAL_WL_EGRESS_DEFAULT_ALLOW 0x4 /* no rule matched: allow */
#define PAL_WL_INGRESS 0x8
#define PAL_WL_INGRESS_ENFORCE 0x10
#define PAL_WL_INGRESS_DEFAULT_ALLOW 0x20
#define PAL_WL_ISOLATED 0x40 /* all traffic denied but the management rules */
#define PAL_WL_EXEC 0x80     /* the exec allowlist is checked in the kernel (LSM or kill) */
#define PAL_WL_EXEC_ENFORCE 0x100
#define PAL_WL_FILES 0x200 /* read-only/writable paths enforced: the open flags are recorded */

/* The value for a cgroup bound to a workload. */
struct pal_workload {
  __u32 slot;
  __u32 flags;
};

/* pal_net_rule.list */
enum pal_rule_list {
  PAL_LIST_EGRESS_DENY = 1,
  PAL_LIST_EGRESS_ALLOW = 2,
  PAL_LIST_INGRESS_DENY = 3,
  PAL_LIST_INGRESS_ALLOW = 4,
  PAL_LIST_MANAGEMENT = 5, /* still allowed, both ways, while the workload is isolated */
};

struct pal_net_rule {
  __u8 list;
  __u8 family;    /* 0 = any, 2 = AF_INET, 10 = AF_INET6 */
  __u8 prefix;    /* bits of addr that must match */
  __u8 protocol;  /* 0 = any, 6 = tcp, 17 = udp */
  __u16 port_low; /* host order */
  __u16 port_high;
  __u8 addr[16];
  __u8 peer_set; /* 1: the peer must be in pal_peer_addrs under (slot, rule); addr is unused */
  __u8 pad[3];
};

/* The current addresses of the pods a rule names by workload (namespace and labels). */
struct pal_peer_key {
  __u16 slot;
  __u16 rule;
  __u16 family;
  __u16 pad;
  __u8 addr[16];
};

/* One slot's rules: deny lists are checked before allow lists. */
struct pal_rule_set {
  __u32 count;
  __u32 generation; /* which policy the rules came from; reported with denials */
  struct pal_net_rule rules[PAL_MAX_NET_RULES];
};

/* The kernel exec allowlist (LSM and kill mechanisms): files by identity, per slot. A write to the
 * file changes its ctime, so a changed file no longer matches its entry. */
struct pal_exec_key {
  __u32 slot;
  __u32 pad;
  __u64 dev; /* the kernel's dev_t (new_encode_dev of the superblock's s_dev) */
  __u64 ino;
};

struct pal_exec_allowed {
  __s64 ctime_ns;
};

#define PAL_ENFORCE_GENERATION_NONE 0

/* Denial records: kinds of the enforcement class (PAL_CLASS_ENFORCE). */
enum pal_enforce_kind {
  PAL_ENF_NET_DENY = 64,  /* a connect, sendmsg or packet of a bound workload was refused */
  PAL_ENF_EXEC_DENY = 65, /* an exec outside the allowlist was refused or killed */
  PAL_ENF_FILE_DENY = 66, /* a write-open of a read-only path was refused (synthesized) */
};

#define PAL_CLASS_ENFORCE 4

/* pal_enforce_args.hook */
enum pal_enforce_hook {
  PAL_HOOK_CONNECT = 1,
  PAL_HOOK_SENDMSG = 2,
  PAL_HOOK_SKB_INGRESS = 3,
  PAL_HOOK_SKB_EGRESS = 4,
  PAL_HOOK_EXEC_KILL = 5,     /* bpf_send_signal(SIGKILL) at exec: reactive */
  PAL_HOOK_EXEC_LSM = 6,      /* lsm/bprm_check_security: the exec failed with EPERM */
  PAL_HOOK_EXEC_FANOTIFY = 7, /* FAN_OPEN_EXEC_PERM answered FAN_DENY (synthesized by user space) */
  PAL_HOOK_OPEN_FANOTIFY = 8, /* FAN_OPEN_PERM of a write-open answered FAN_DENY */
};

/* pal_enforce_args.verdict */
#define PAL_VERDICT_DENIED 1
#define PAL_VERDICT_AUDIT 2 /* would have been denied; audit mode let it through */

/* Follows the header of PAL_ENF_* records, in the sensor's argument union (so no bigger than its
 * largest member). Network denials fill `net`, exec denials `exec` and the executable's path as
 * the first string. */
struct pal_enforce_net {
  __u16 family;
  __u16 protocol;
  __u16 local_port; /* host order */
  __u16 remote_port;
  __u8 local_addr[16];
  __u8 remote_addr[16];
};

struct pal_enforce_exec {
  __u64 dev;
  __u64 ino;
  __s64 ctime_ns;
  __u8 pad[16];
};

struct pal_enforce_args {
  __u8 hook;
  __u8 verdict;
  __u8 reason;
  __u8 rule_list;
  __s16 rule; /* index in the slot's rule set; -1 when none */
  __u16 slot;
  union {
    struct pal_enforce_net net;
    struct pal_enforce_exec exec;
  } u;
};

#define PAL_REASON_DEFAULT 0
#define PAL_REASON_RULE 1
#define PAL_REASON_ISOLATED 2
#define PAL_REASON_NOT_ALLOWLISTED 3
/* Not part of the container's image: in the overlayfs upper layer (fanotify only). */
#define PAL_REASON_DRIFT 4
#define PAL_REASON_READ_ONLY 5
#define PAL_REASON_NOT_WRITABLE 6

#endif /* PALISADE_ENFORCE_ABI_H */
