// SPDX-License-Identifier: GPL-2.0
/* palisade's enforcement programs: what a WorkloadPolicy in enforce mode forbids, refused in the
 * kernel.
 *
 * Every program is attached once, at the root of the cgroup v2 hierarchy (or to the scheduler's
 * exec tracepoint), and looks the acting cgroup up in pal_workloads: a cgroup the agent has not
 * bound is left alone. The maps and the links are pinned under bpffs, so the rules stay in force
 * when the agent stops, crashes or restarts; a restarted agent adopts them.
 *
 *   cgroup/connect4|6     TCP connects and UDP connects (egress rules, isolation)
 *   cgroup/sendmsg4|6     unconnected UDP datagrams (egress rules, isolation)
 *   cgroup_skb/ingress    new inbound flows: TCP SYN and UDP (ingress rules), everything when isolated
 *   cgroup_skb/egress     everything when isolated
 *   tp_btf/sched_process_exec     SIGKILL an exec outside the allowlist (reactive, last resort)
 *   lsm/bprm_check_security       refuse that exec with EPERM (loaded only where BPF-LSM works)
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "enforce_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define EPERM 1
#define SIGKILL 9
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define EXEC_NAME_MAX 256

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PAL_MAX_BOUND_CGROUPS);
  __type(key, __u64); /* cgroup v2 id */
  __type(value, struct pal_workload);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_workloads SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, PAL_MAX_WORKLOAD_SLOTS);
  __type(key, __u32);
  __type(value, struct pal_rule_set);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_net_rules SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PAL_MAX_EXEC_ALLOW);
  __type(key, struct pal_exec_key);
  __type(value, struct pal_exec_allowed);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_exec_allow SEC(".maps");

/* Parents (such as the kubelet's /kubepods.slice) under which a cgroup the agent has not
 * identified yet gets the default posture: a new workload is never unprotected while it is being
 * identified. Identified cgroups are in pal_workloads (with no flags when nothing applies). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PAL_MAX_GUARDS);
  __type(key, __u64);
  __type(value, struct pal_workload);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_guards SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, PAL_MAX_PEER_ADDRS);
  __type(key, struct pal_peer_key);
  __type(value, __u8);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_peer_addrs SEC(".maps");

/* Denials wait here while the agent is away: a restarted agent reads what it missed. */
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_denials SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 2); /* 0: sequence numbers, 1: records the ring buffer could not take */
  __type(key, __u32);
  __type(value, __u64);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} pal_denial_counters SEC(".maps");

/* ---------------------------------------------------------------- workloads */

/* The workload of the current task's cgroup: its binding, else the posture of the nearest guarded
 * ancestor, else none. */
/* A child cgroup a workload made for itself (systemd's Delegate=, a nested runtime) stays under
 * its workload's rules: the nearest bound ancestor counts before any guard. */
static __always_inline struct pal_workload *current_workload(__u64 cgroup_id) {
  struct pal_workload *wl = bpf_map_lookup_elem(&pal_workloads, &cgroup_id);
  if (wl) return wl;
#pragma unroll
  for (int level = PAL_MAX_GUARD_DEPTH - 1; level >= 0; level--) {
    __u64 ancestor = bpf_get_current_ancestor_cgroup_id(level);
    if (ancestor == 0 || ancestor == cgroup_id) continue;
    wl = bpf_map_lookup_elem(&pal_workloads, &ancestor);
    if (wl) return wl;
    wl = bpf_map_lookup_elem(&pal_guards, &ancestor);
    if (wl) return wl;
  }
  return NULL;
}

static __always_inline struct pal_workload *skb_workload(struct __sk_buff *skb, __u64 cgroup_id) {
  struct pal_workload *wl = bpf_map_lookup_elem(&pal_workloads, &cgroup_id);
  if (wl) return wl;
#pragma unroll
  for (int level = PAL_MAX_GUARD_DEPTH - 1; level >= 0; level--) {
    __u64 ancestor = bpf_skb_ancestor_cgroup_id(skb, level);
    if (ancestor == 0 || ancestor == cgroup_id) continue;
    wl = bpf_map_lookup_elem(&pal_workloads, &ancestor);
    if (wl) return wl;
    wl = bpf_map_lookup_elem(&pal_guards, &ancestor);
    if (wl) return wl;
  }
  return NULL;
}

/* ---------------------------------------------------------------- records */

static __always_inline struct pal_record *begin_denial(__u32 size, __u32 kind, __u64 cgroup_id,
                                                       bool task_context) {
  struct pal_record *r = bpf_ringbuf_reserve(&pal_denials, size, 0);
  if (!r) {
    __u32 lost_key = 1;
    __u64 *lost = bpf_map_lookup_elem(&pal_denial_counters, &lost_key);
    if (lost) *lost += 1;
    return NULL;
  }
  __builtin_memset(r, 0, sizeof(*r));
  r->h.kind = kind;
  r->h.cpu = bpf_get_smp_processor_id();
  r->h.total_len = size;
  r->h.mono_ns = bpf_ktime_get_ns();
  r->h.result = -EPERM;
  r->h.task.cgroup_id = cgroup_id;
  r->h.task.auid = 0xffffffff;
  if (task_context) {
    __u64 pid_tgid = bpf_get_current_pid_tgid();
    __u64 uid_gid = bpf_get_current_uid_gid();
    r->h.task.pid = (__u32)pid_tgid;
    r->h.task.tgid = pid_tgid >> 32;
    r->h.task.uid = (__u32)uid_gid;
    r->h.task.gid = uid_gid >> 32;
    bpf_get_current_comm(r->h.task.comm, sizeof(r->h.task.comm));
  }
  __u32 seq_key = 0;
  __u64 *seq = bpf_map_lookup_elem(&pal_denial_counters, &seq_key);
  if (seq) {
    *seq += 1;
    r->h.seq = *seq;
  }
  return r;
}

static __always_inline struct pal_enforce_args *args_of(struct pal_record *r) {
  return (struct pal_enforce_args *)&r->a;
}

/* ---------------------------------------------------------------- network rules */

struct flow {
  __u16 family;
  __u8 protocol;
  __u16 remote_port; /* host order */
  __u16 local_port;
  __u8 remote[16];
  __u8 local[16];
};

struct net_decision {
  bool deny;
  __u8 reason;
  __u8 list;
  __s16 rule;
};

/* Compares the first `prefix` bits, a 32-bit word at a time (no per-byte loop: this runs for every
 * rule of every judged flow). */
static __always_inline bool prefix_matches(const __u8 *rule, const __u8 *addr, __u32 prefix) {
  const __u32 *r = (const __u32 *)rule;
  const __u32 *a = (const __u32 *)addr;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    __u32 start = (__u32)i * 32;
    if (prefix <= start) return true;
    __u32 bits = prefix - start;
    __u32 mask = bits >= 32 ? 0xffffffff : bpf_htonl(~(0xffffffffU >> bits));
    if ((r[i] & mask) != (a[i] & mask)) return false;
  }
  return true;
}

/* Egress rules match the remote port, ingress rules the local one (the port the workload serves);
 * both match the peer's address. */
static __always_inline bool rule_matches(const struct pal_net_rule *rule, const struct flow *f,
                                         bool ingress, __u32 slot, __u32 index) {
  if (rule->protocol != 0 && rule->protocol != f->protocol) return false;
  __u16 port = ingress ? f->local_port : f->remote_port;
  if (port < rule->port_low || port > rule->port_high) return false;
  if (rule->peer_set) {
    struct pal_peer_key key = {.slot = (__u16)slot, .rule = (__u16)index, .family = f->family};
    __builtin_memcpy(key.addr, f->remote, 16);
    return bpf_map_lookup_elem(&pal_peer_addrs, &key) != NULL;
  }
  if (rule->family == 0) return true;
  if (rule->family != f->family) return false;
  return prefix_matches(rule->addr, f->remote, rule->prefix);
}

struct rule_search {
  const struct pal_rule_set *set;
  __u32 slot;
  const struct flow *flow;
  __u8 list;
  bool ingress;
  int found;
};

/* One bpf_loop step per rule: the verifier checks the step once, not 64 unrolled copies. */
static long rule_step(__u64 i, void *ctx) {
  struct rule_search *s = ctx;
  if (i >= PAL_MAX_NET_RULES) return 1;
  const struct pal_net_rule *rule = &s->set->rules[i];
  if (rule->list == s->list && rule_matches(rule, s->flow, s->ingress, s->slot, (__u32)i)) {
    s->found = (int)i;
    return 1;
  }
  return 0;
}

/* The first rule of `list` that matches, or -1. */
static __always_inline int find_rule(const struct pal_rule_set *set, __u32 slot, __u8 list,
                                     const struct flow *f, bool ingress) {
  struct rule_search s = {
      .set = set, .slot = slot, .flow = f, .list = list, .ingress = ingress, .found = -1};
  __u32 count = set->count;
  if (count > PAL_MAX_NET_RULES) count = PAL_MAX_NET_RULES;
  bpf_loop(count, rule_step, &s, 0);
  return s.found;
}

/* The same order as the policy engine: isolation, then deny rules, then the default, then allow
 * rules. */
static __always_inline struct net_decision decide_flow(const struct pal_workload *wl,
                                                       const struct flow *f, bool ingress) {
  struct net_decision d = {.deny = false, .reason = PAL_REASON_DEFAULT, .list = 0, .rule = -1};
  __u32 slot = wl->slot;
  const struct pal_rule_set *set = bpf_map_lookup_elem(&pal_net_rules, &slot);
  if (!set) return d;
  if (wl->flags & PAL_WL_ISOLATED) {
    /* Management traffic either way: to a management port the workload serves, or to one it
     * connects out to; the packets of such a flow match one of the two. */
    if (find_rule(set, slot, PAL_LIST_MANAGEMENT, f, false) >= 0 ||
        find_rule(set, slot, PAL_LIST_MANAGEMENT, f, true) >= 0)
      return d;
    d.deny = true;
    d.reason = PAL_REASON_ISOLATED;
    return d;
  }
  __u32 present = ingress ? PAL_WL_INGRESS : PAL_WL_EGRESS;
  if (!(wl->flags & present)) return d;
  __u8 deny_list = ingress ? PAL_LIST_INGRESS_DENY : PAL_LIST_EGRESS_DENY;
  int rule = find_rule(set, slot, deny_list, f, ingress);
  if (rule >= 0) {
    d.deny = true;
    d.reason = PAL_REASON_RULE;
    d.list = deny_list;
    d.rule = (__s16)rule;
    return d;
  }
  __u32 default_allow = ingress ? PAL_WL_INGRESS_DEFAULT_ALLOW : PAL_WL_EGRESS_DEFAULT_ALLOW;
  if (wl->flags & default_allow) return d;
  if (find_rule(set, slot, ingress ? PAL_LIST_INGRESS_ALLOW : PAL_LIST_EGRESS_ALLOW, f, ingress) >=
      0)
    return d;
  d.deny = true;
  return d;
}

static __always_inline bool enforced(const struct pal_workload *wl, struct net_decision d,
                                     bool ingress) {
  if (d.reason == PAL_REASON_ISOLATED) return true; /* a response action, never audit */
  return wl->flags & (ingress ? PAL_WL_INGRESS_ENFORCE : PAL_WL_EGRESS_ENFORCE);
}

static __always_inline void report_flow(__u64 cgroup_id, const struct pal_workload *wl,
                                        const struct flow *f, struct net_decision d, __u8 hook,
                                        bool deny, bool task_context) {
  struct pal_record *r =
      begin_denial(sizeof(struct pal_record), PAL_ENF_NET_DENY, cgroup_id, task_context);
  if (!r) return;
  struct pal_enforce_args *a = args_of(r);
  a->hook = hook;
  a->verdict = deny ? PAL_VERDICT_DENIED : PAL_VERDICT_AUDIT;
  a->reason = d.reason;
  a->rule_list = d.list;
  a->rule = d.rule;
  a->slot = (__u16)wl->slot;
  a->u.net.family = f->family;
  a->u.net.protocol = f->protocol;
  a->u.net.local_port = f->local_port;
  a->u.net.remote_port = f->remote_port;
  __builtin_memcpy(a->u.net.local_addr, f->local, 16);
  __builtin_memcpy(a->u.net.remote_addr, f->remote, 16);
  bpf_ringbuf_submit(r, 0);
}

/* IPv4-mapped IPv6 peers (::ffff:a.b.c.d) are judged as the IPv4 address they are. */
static __always_inline void unmap_v4(struct flow *f) {
  if (f->family != AF_INET6) return;
  const __u32 *w = (const __u32 *)f->remote;
  if (w[0] != 0 || w[1] != 0 || w[2] != bpf_htonl(0xffff)) return;
  __u32 v4 = w[3];
  __builtin_memset(f->remote, 0, 16);
  __builtin_memcpy(f->remote, &v4, 4);
  f->family = AF_INET;
}

static __always_inline int judge_sock_addr(struct bpf_sock_addr *ctx, bool v6, __u8 hook) {
  __u64 cgroup_id = bpf_get_current_cgroup_id();
  struct pal_workload *wl = current_workload(cgroup_id);
  if (!wl) return 1;
  struct flow f = {};
  f.family = v6 ? AF_INET6 : AF_INET;
  f.protocol = (__u8)ctx->protocol;
  if (f.protocol == 0) f.protocol = ctx->type == 2 /* SOCK_DGRAM */ ? IPPROTO_UDP : IPPROTO_TCP;
  f.remote_port = bpf_ntohs((__u16)ctx->user_port);
  if (v6) {
    __u32 ip6[4];
    ip6[0] = ctx->user_ip6[0];
    ip6[1] = ctx->user_ip6[1];
    ip6[2] = ctx->user_ip6[2];
    ip6[3] = ctx->user_ip6[3];
    __builtin_memcpy(f.remote, ip6, 16);
    unmap_v4(&f);
  } else {
    __u32 ip4 = ctx->user_ip4;
    __builtin_memcpy(f.remote, &ip4, 4);
  }
  struct net_decision d = decide_flow(wl, &f, false);
  if (!d.deny) return 1;
  bool deny = enforced(wl, d, false);
  report_flow(cgroup_id, wl, &f, d, hook, deny, true);
  return deny ? 0 : 1;
}

SEC("cgroup/connect4")
int enforce_connect4(struct bpf_sock_addr *ctx) {
  return judge_sock_addr(ctx, false, PAL_HOOK_CONNECT);
}

SEC("cgroup/connect6")
int enforce_connect6(struct bpf_sock_addr *ctx) {
  return judge_sock_addr(ctx, true, PAL_HOOK_CONNECT);
}

SEC("cgroup/sendmsg4")
int enforce_sendmsg4(struct bpf_sock_addr *ctx) {
  return judge_sock_addr(ctx, false, PAL_HOOK_SENDMSG);
}

SEC("cgroup/sendmsg6")
int enforce_sendmsg6(struct bpf_sock_addr *ctx) {
  return judge_sock_addr(ctx, true, PAL_HOOK_SENDMSG);
}

/* ---------------------------------------------------------------- packets */

struct ports {
  __u16 source;
  __u16 dest;
};

/* Reads the addresses, protocol and ports of a packet (the skb starts at the IP header in
 * cgroup_skb programs). Returns the transport header's offset, or -1 for what is not IP. */
static __always_inline int parse_packet(struct __sk_buff *skb, struct flow *f, bool ingress,
                                        __u8 *tcp_flags) {
  __u32 thoff = 0;
  if (skb->protocol == bpf_htons(ETH_P_IP)) {
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0) return -1;
    f->family = AF_INET;
    f->protocol = ip.protocol;
    __builtin_memcpy(f->remote, ingress ? &ip.saddr : &ip.daddr, 4);
    __builtin_memcpy(f->local, ingress ? &ip.daddr : &ip.saddr, 4);
    thoff = (__u32)ip.ihl * 4;
  } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr ip6;
    if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0) return -1;
    f->family = AF_INET6;
    f->protocol = ip6.nexthdr; /* extension headers: judged by addresses only */
    __builtin_memcpy(f->remote, ingress ? &ip6.saddr : &ip6.daddr, 16);
    __builtin_memcpy(f->local, ingress ? &ip6.daddr : &ip6.saddr, 16);
    thoff = sizeof(ip6);
    unmap_v4(f);
  } else {
    return -1;
  }
  if (f->protocol == IPPROTO_TCP || f->protocol == IPPROTO_UDP) {
    struct ports p;
    if (bpf_skb_load_bytes(skb, thoff, &p, sizeof(p)) == 0) {
      f->remote_port = bpf_ntohs(ingress ? p.source : p.dest);
      f->local_port = bpf_ntohs(ingress ? p.dest : p.source);
    }
    if (f->protocol == IPPROTO_TCP) {
      __u8 flags = 0;
      bpf_skb_load_bytes(skb, thoff + 13, &flags, 1);
      *tcp_flags = flags;
    }
  }
  return (int)thoff;
}

#define TCP_SYN 0x02
#define TCP_ACK 0x10

static __always_inline int judge_packet(struct __sk_buff *skb, bool ingress) {
  __u64 cgroup_id = bpf_skb_cgroup_id(skb);
  struct pal_workload *wl = skb_workload(skb, cgroup_id);
  if (!wl) return 1;
  bool isolated = wl->flags & PAL_WL_ISOLATED;
  /* Outgoing flows were judged at connect and sendmsg; packets only matter when isolated. */
  if (!ingress && !isolated) return 1;
  struct flow f = {};
  __u8 tcp_flags = 0;
  if (parse_packet(skb, &f, ingress, &tcp_flags) < 0) return 1;
  /* A new inbound flow is a SYN or a datagram to an unconnected socket; the rest of an accepted
   * flow follows its SYN, and datagrams to a connected socket answer a flow the egress rules let
   * out. An IPv6 packet with extension headers before its transport header is judged as new:
   * its flags cannot be read, and letting it pass would let a SYN through unjudged. */
  bool connected_udp = false;
  if (ingress && f.protocol == IPPROTO_UDP) {
    struct bpf_sock *sk = skb->sk;
    if (sk) sk = bpf_sk_fullsock(sk);
    connected_udp = sk && sk->dst_port != 0;
  }
  bool new_flow = (f.protocol == IPPROTO_UDP && !connected_udp) ||
                  (f.protocol == IPPROTO_TCP && (tcp_flags & TCP_SYN) && !(tcp_flags & TCP_ACK)) ||
                  (f.family == AF_INET6 && f.protocol != IPPROTO_TCP && f.protocol != IPPROTO_UDP &&
                   f.protocol != 58 /* ICMPv6 */);
  if (!isolated && !new_flow) return 1;
  struct net_decision d = decide_flow(wl, &f, ingress);
  if (!d.deny) return 1;
  bool deny = enforced(wl, d, ingress);
  /* One record per refused flow, not per retransmitted packet of an isolated workload's flows. */
  if (new_flow || !isolated)
    report_flow(cgroup_id, wl, &f, d, ingress ? PAL_HOOK_SKB_INGRESS : PAL_HOOK_SKB_EGRESS, deny,
                false);
  return deny ? 0 : 1;
}

SEC("cgroup_skb/ingress")
int enforce_ingress(struct __sk_buff *skb) {
  return judge_packet(skb, true);
}

SEC("cgroup_skb/egress")
int enforce_egress(struct __sk_buff *skb) {
  return judge_packet(skb, false);
}

/* ---------------------------------------------------------------- exec */

/* The inode's ctime field moved twice: i_ctime (up to 6.5), __i_ctime (6.6 to 6.10), then
 * i_ctime_sec and i_ctime_nsec (6.11 on). */
struct inode___pre_6_6 {
  struct timespec64 i_ctime;
} __attribute__((preserve_access_index));
struct inode___pre_6_11 {
  struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

/* Since Linux 6.13 the top bit of i_ctime_nsec says that the ctime was queried (multigrain
 * timestamps): it is not part of the time, and a stat() sets it. */
#define PAL_CTIME_NSEC_MASK 0x7fffffffU

static __always_inline __s64 inode_ctime_ns(struct inode *inode) {
  if (bpf_core_field_exists(inode->i_ctime_sec))
    return BPF_CORE_READ(inode, i_ctime_sec) * 1000000000LL +
           (BPF_CORE_READ(inode, i_ctime_nsec) & PAL_CTIME_NSEC_MASK);
  struct inode___pre_6_11 *mid = (void *)inode;
  if (bpf_core_field_exists(mid->__i_ctime))
    return BPF_CORE_READ(mid, __i_ctime.tv_sec) * 1000000000LL +
           BPF_CORE_READ(mid, __i_ctime.tv_nsec);
  struct inode___pre_6_6 *old = (void *)inode;
  return BPF_CORE_READ(old, i_ctime.tv_sec) * 1000000000LL + BPF_CORE_READ(old, i_ctime.tv_nsec);
}

struct exec_check {
  bool deny;
  bool enforce;
  __u32 slot;
  __u64 dev;
  __u64 ino;
  __s64 ctime_ns;
};

static __always_inline struct exec_check check_exec(struct linux_binprm *bprm, __u64 cgroup_id) {
  struct exec_check c = {};
  struct pal_workload *wl = current_workload(cgroup_id);
  if (!wl || !(wl->flags & PAL_WL_EXEC)) return c;
  struct inode *inode = BPF_CORE_READ(bprm, file, f_inode);
  c.slot = wl->slot;
  c.enforce = wl->flags & PAL_WL_EXEC_ENFORCE;
  c.dev = BPF_CORE_READ(inode, i_sb, s_dev);
  c.ino = BPF_CORE_READ(inode, i_ino);
  c.ctime_ns = inode_ctime_ns(inode);
  struct pal_exec_key key = {.slot = c.slot, .pad = 0, .dev = c.dev, .ino = c.ino};
  struct pal_exec_allowed *allowed = bpf_map_lookup_elem(&pal_exec_allow, &key);
  /* A file written since it was allowlisted is a new version: not the one that was approved. */
  c.deny = !allowed || allowed->ctime_ns != c.ctime_ns;
  return c;
}

static __always_inline void report_exec(struct linux_binprm *bprm, __u64 cgroup_id,
                                        struct exec_check c, __u8 hook) {
  const __u32 size = sizeof(struct pal_record) + EXEC_NAME_MAX;
  struct pal_record *r = begin_denial(size, PAL_ENF_EXEC_DENY, cgroup_id, true);
  if (!r) return;
  struct pal_enforce_args *a = args_of(r);
  a->hook = hook;
  a->verdict = c.enforce ? PAL_VERDICT_DENIED : PAL_VERDICT_AUDIT;
  a->reason = PAL_REASON_NOT_ALLOWLISTED;
  a->rule = -1;
  a->slot = (__u16)c.slot;
  a->u.exec.dev = c.dev;
  a->u.exec.ino = c.ino;
  a->u.exec.ctime_ns = c.ctime_ns;
  struct task_struct *task = bpf_get_current_task_btf();
  r->h.task.ppid = task->real_parent->tgid;
  r->h.task.start_ns = task->group_leader->start_boottime;
  char *name = (char *)(r + 1);
  long n = bpf_probe_read_kernel_str(name, EXEC_NAME_MAX, BPF_CORE_READ(bprm, filename));
  r->h.str_len[0] = n > 1 ? (__u16)(n - 1) : 0;
  bpf_ringbuf_submit(r, 0);
}

/* Last resort where neither BPF-LSM nor fanotify is used: the new image is killed before it runs
 * its first instruction in user space. Reactive — the exec itself succeeded — and labelled so. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(enforce_exec_kill, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) {
  __u64 cgroup_id = bpf_get_current_cgroup_id();
  struct exec_check c = check_exec(bprm, cgroup_id);
  if (!c.deny) return 0;
  if (c.enforce) bpf_send_signal(SIGKILL);
  report_exec(bprm, cgroup_id, c, PAL_HOOK_EXEC_KILL);
  return 0;
}

SEC("lsm/bprm_check_security")
int BPF_PROG(enforce_exec_lsm, struct linux_binprm *bprm, int ret) {
  if (ret != 0) return ret;
  __u64 cgroup_id = bpf_get_current_cgroup_id();
  struct exec_check c = check_exec(bprm, cgroup_id);
  if (!c.deny) return 0;
  report_exec(bprm, cgroup_id, c, PAL_HOOK_EXEC_LSM);
  return c.enforce ? -EPERM : 0;
}

/* ---------------------------------------------------------------- open intent */

/* fanotify's FAN_OPEN_PERM does not say whether an open is for writing: the flags each thread of a
 * workload with read-only paths passed to its last open are kept here for the agent's write guard
 * to read (the permission event comes within that same open). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32); /* thread id */
  __type(value, __u32);
} pal_open_intent SEC(".maps");

static __always_inline void record_intent(__u32 flags) {
  __u64 cgroup_id = bpf_get_current_cgroup_id();
  struct pal_workload *wl = current_workload(cgroup_id);
  if (!wl || !(wl->flags & PAL_WL_FILES)) return;
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  bpf_map_update_elem(&pal_open_intent, &tid, &flags, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int intent_openat(struct trace_event_raw_sys_enter *ctx) {
  record_intent((__u32)ctx->args[2]);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int intent_openat2(struct trace_event_raw_sys_enter *ctx) {
  __u64 flags = 0;
  bpf_probe_read_user(&flags, sizeof(flags), (void *)ctx->args[2]); /* open_how.flags */
  record_intent((__u32)flags);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int intent_open(struct trace_event_raw_sys_enter *ctx) {
  record_intent((__u32)ctx->args[1]);
  return 0;
}

SEC("tracepoint/syscalls/sys_enter_creat")
int intent_creat(struct trace_event_raw_sys_enter *ctx) {
  record_intent(01 | 0100 | 01000); /* O_WRONLY | O_CREAT | O_TRUNC */
  return 0;
}
