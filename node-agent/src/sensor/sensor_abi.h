/* The record format shared by the eBPF sensor (producer) and user space (decoders, capture files).
 *
 * Plain C with fixed-width types so that the same header compiles for the BPF target and for the
 * host. A record is a pal_header, a fixed-size pal_args union, then up to PAL_MAX_STRINGS strings
 * packed back to back (no terminators; their lengths are in the header). Capture files store these
 * records verbatim, so changing this layout requires bumping PAL_ABI_VERSION.
 */
#ifndef PALISADE_SENSOR_ABI_H
#define PALISADE_SENSOR_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PAL_ABI_VERSION 1
#define PAL_COMM_LEN 16
#define PAL_PATH_MAX 4096
#define PAL_ARGV_LIMIT 16384 /* upper bound for the configurable argv byte limit */
#define PAL_MAX_STRINGS 4
#define PAL_MAX_FILE_FILTERS 8
#define PAL_FILTER_PREFIX_LEN 64

/* Event kinds. The high bits select the event class used for loss accounting (kind >> 4). */
enum pal_kind {
  PAL_PROC_EXEC = 1,
  PAL_PROC_FORK = 2,
  PAL_PROC_EXIT = 3,
  PAL_PROC_SNAPSHOT = 4, /* synthesized by user space from /proc at start-up */

  PAL_FILE_OPEN = 16,
  PAL_FILE_UNLINK = 17,
  PAL_FILE_RMDIR = 18,
  PAL_FILE_RENAME = 19,
  PAL_FILE_CHMOD = 20,
  PAL_FILE_CHOWN = 21,

  PAL_NET_CONNECT = 32,
  PAL_NET_ACCEPT = 33,
  PAL_NET_BIND = 34,
  PAL_NET_LISTEN = 35,

  PAL_PRIV_SETUID = 48,
  PAL_PRIV_SETGID = 49,
  PAL_PRIV_CAPSET = 50,
  PAL_PRIV_PTRACE = 51,
  PAL_PRIV_MODULE = 52,
  PAL_PRIV_MOUNT = 53,
  PAL_PRIV_UNSHARE = 54,
  PAL_PRIV_SETNS = 55,
  PAL_PRIV_MEMFD = 56,
  PAL_PRIV_BPF = 57,

  /* 64-79: enforcement denials (enforce/enforce_abi.h) */
  PAL_KIND_LIMIT = 80
};

enum pal_class {
  PAL_CLASS_PROCESS = 0,
  PAL_CLASS_FILE = 1,
  PAL_CLASS_NETWORK = 2,
  PAL_CLASS_PRIVILEGE = 3,
  PAL_CLASS_COUNT = 4 /* the sensor's classes; enforcement (4) numbers its own records */
};

#define PAL_CLASS_OF(kind) (((kind) >> 4) & 7)

/* Who did it: the calling task at the time of the event. */
struct pal_task {
  __u32 pid; /* thread id */
  __u32 tgid;
  __u32 ppid; /* tgid of the real parent */
  __u32 uid;
  __u32 gid;
  __u32 euid;
  __u32 egid;
  __u32 auid; /* login uid; 0xffffffff when unset */
  __u64 cgroup_id;
  __u32 mnt_ns;
  __u32 pid_ns;
  __u64 start_ns; /* task start time (boot-based), with tgid a unique process key */
  char comm[PAL_COMM_LEN];
};

struct pal_header {
  __u16 kind;
  __u16 cpu;
  __u32 total_len; /* bytes of the whole record */
  __u64 seq;       /* per-CPU, per-class sequence number; gaps mean lost events */
  __u64 mono_ns;   /* CLOCK_MONOTONIC */
  __s64 result;    /* syscall return value, or exit status for PAL_PROC_EXIT */
  struct pal_task task;
  __u16 str_len[PAL_MAX_STRINGS];
};

/* Strings per kind, in order:
 *  EXEC, SNAPSHOT: executable path, argv (NUL-separated), cwd, filename passed to execve
 *  FILE_*:         path, second path (rename destination)
 *  NET_*:          (none)
 *  PRIV_MODULE:    module file path (finit_module)
 *  PRIV_MOUNT:     source, target, fstype
 *  PRIV_SETNS:     namespace file path
 *  PRIV_MEMFD:     memfd name
 */
struct pal_exec_args {
  __u32 argv_truncated;
  __u32 stdio_sockets; /* bit n set: fd n (0, 1, 2) is a socket, as in a reverse shell */
};

struct pal_fork_args {
  __u32 child_pid;
  __u32 child_tgid;
  __u64 child_start_ns;
};

struct pal_exit_args {
  __u32 exit_code; /* wait(2) status: (code << 8) | signal */
  __u32 pad;
};

struct pal_file_args {
  __u32 flags; /* open flags, or AT_* flags */
  __u32 mode;
  __u32 uid; /* chown target; 0xffffffff when unchanged */
  __u32 gid;
  __s32 fd; /* for fd-based calls (fchmod, fchown), else -1 */
  __u32 pad;
};

struct pal_net_args {
  __u16 family; /* AF_INET or AF_INET6 */
  __u16 sock_type;
  __u16 protocol;
  __u16 local_port;
  __u16 remote_port;
  __u16 pad;
  __s32 fd;
  __u8 local_addr[16];
  __u8 remote_addr[16];
};

struct pal_priv_args {
  __u64 arg[4]; /* meaning per kind, see docs/events.md */
  __u32 old_uid;
  __u32 old_euid;
  __u32 old_gid;
  __u32 old_egid;
};

union pal_args {
  struct pal_exec_args exec;
  struct pal_fork_args fork;
  struct pal_exit_args exit;
  struct pal_file_args file;
  struct pal_net_args net;
  struct pal_priv_args priv;
};

struct pal_record {
  struct pal_header h;
  union pal_args a;
  /* followed by str_len[0] bytes, then str_len[1] bytes, ... */
};

/* One prefix rule for file events, checked in the kernel. */
struct pal_file_filter {
  __u32 len;     /* 0 = unused slot */
  __u32 include; /* 1 = only report paths under one of the include prefixes; 0 = exclude */
  char prefix[PAL_FILTER_PREFIX_LEN];
};

#endif /* PALISADE_SENSOR_ABI_H */
