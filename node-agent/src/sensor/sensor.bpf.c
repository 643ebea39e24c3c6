// SPDX-License-Identifier: GPL-2.0
/* palisade's eBPF sensor: process, file, network and privilege activity.
 *
 * Only hook types that load on kernels without kprobes/fentry/BPF-LSM are used: raw tracepoints
 * for the scheduler's process lifecycle and syscall tracepoints (enter stashes the arguments, exit
 * emits the event with the result). Every emitted record carries a per-CPU, per-class sequence
 * number taken in the same non-preemptible section as the ring-buffer write, so user space can
 * count exactly what was lost.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "sensor_abi.h"

char LICENSE[] SEC("license") = "GPL";

#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define AF_INET 2
#define AF_INET6 10
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define WRITE_INTENT (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)

#define EV_BUF 32768 /* largest record */
#define EV_MASK (EV_BUF - 1)
#define STR_MAX PAL_ARGV_LIMIT /* largest single string copy */
#define PATH_HALF 4096         /* dentry walk writes backwards into [0, PATH_HALF) */
#define PATH_SCRATCH 16384
#define PATH_MASK (PATH_SCRATCH - 1)
#define MAX_PATH_DEPTH 48
#define NAME_MASK 255

/* Set by user space before load. */
const volatile __u32 agent_tgid = 0;
const volatile __u32 argv_max = 4096;
/* Wake the reader only once this much is queued; it also drains on a short timer. A wake-up per
 * record costs a cross-CPU interrupt, which on a VM is dearer than the record itself. */
const volatile __u64 wakeup_bytes = 256 * 1024;

/* Syscall arguments kept between sys_enter and sys_exit, keyed by thread. */
struct pending {
  __u32 kind;
  __s32 dfd;
  __s32 dfd2;
  __s32 fd;
  __u32 flags;
  __u32 mode;
  __u32 uid;
  __u32 gid;
  __u64 path;
  __u64 path2;
  __u64 arg[4];
  __u32 old_uid, old_euid, old_gid, old_egid;
  __u8 sockaddr[28];
  __u32 sockaddr_len;
};

struct scratch {
  struct pending pend; /* exit handlers work on a copy, off the 512-byte stack */
  char ev[EV_BUF + STR_MAX];
  char path[PATH_SCRATCH + 512];
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 256); /* resized to the number of possible CPUs */
  __type(key, __u32);
  __type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, PAL_CLASS_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} seq_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, PAL_CLASS_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} lost_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct pending);
} pending_map SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, PAL_MAX_FILE_FILTERS);
  __type(key, __u32);
  __type(value, struct pal_file_filter);
} file_filters SEC(".maps");

/* ---------------------------------------------------------------- helpers */

static __always_inline bool is_self(void) {
  return (bpf_get_current_pid_tgid() >> 32) == agent_tgid;
}

static __always_inline struct scratch *get_scratch(void) {
  __u32 cpu = bpf_get_smp_processor_id();
  return bpf_map_lookup_elem(&scratch_map, &cpu);
}

static __always_inline __u32 pid_ns_inum(struct task_struct *task) {
  struct pid *pid = BPF_CORE_READ(task, thread_pid);
  unsigned int level = BPF_CORE_READ(pid, level);
  struct upid up = {};
  void *numbers = (void *)pid + bpf_core_field_offset(struct pid, numbers);
  bpf_probe_read_kernel(&up, sizeof(up), numbers + (level & 31) * bpf_core_type_size(struct upid));
  return BPF_CORE_READ(up.ns, ns.inum);
}

/* Reads through a BTF-typed task pointer are plain (fault-safe) loads, much cheaper than the
 * probe-read helper calls BPF_CORE_READ makes, and this runs for every event. */
static __always_inline void fill_task(struct pal_task *t) {
  struct task_struct *task = bpf_get_current_task_btf();
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  __u64 uid_gid = bpf_get_current_uid_gid();
  t->pid = (__u32)pid_tgid;
  t->tgid = pid_tgid >> 32;
  t->ppid = task->real_parent->tgid;
  t->uid = (__u32)uid_gid;
  t->gid = uid_gid >> 32;
  const struct cred *cred = task->cred;
  t->euid = cred->euid.val;
  t->egid = cred->egid.val;
  t->auid = 0xffffffff;
  if (bpf_core_field_exists(task->loginuid)) t->auid = task->loginuid.val;
  t->cgroup_id = bpf_get_current_cgroup_id();
  struct nsproxy *ns = task->nsproxy;
  t->mnt_ns = ns ? ns->mnt_ns->ns.inum : 0;
  t->pid_ns = pid_ns_inum(task);
  t->start_ns = task->group_leader->start_boottime;
  bpf_get_current_comm(t->comm, sizeof(t->comm));
}

/* Starts a record in the per-CPU scratch buffer. */
static __always_inline struct pal_record *begin_record(struct scratch *sc, __u32 kind,
                                                       long result) {
  struct pal_record *r = (struct pal_record *)sc->ev;
  __builtin_memset(&r->h, 0, sizeof(r->h));
  __builtin_memset(&r->a, 0, sizeof(r->a));
  r->h.kind = kind;
  r->h.cpu = bpf_get_smp_processor_id();
  r->h.mono_ns = bpf_ktime_get_ns();
  r->h.result = result;
  fill_task(&r->h.task);
  return r;
}

/* Numbers the record and hands it to user space; a full ring buffer is counted, never silent. */
static __always_inline int submit(struct scratch *sc, __u32 size) {
  struct pal_record *r = (struct pal_record *)sc->ev;
  __u32 cls = PAL_CLASS_OF(r->h.kind);
  __u64 *seq = bpf_map_lookup_elem(&seq_map, &cls);
  if (!seq) return 0;
  *seq += 1;
  r->h.seq = *seq;
  r->h.total_len = size;
  if (size > EV_BUF) return 0;
  __u64 queued = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
  __u64 flags = queued >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
  if (bpf_ringbuf_output(&events, sc->ev, size, flags) != 0) {
    __u64 *lost = bpf_map_lookup_elem(&lost_map, &cls);
    if (lost) *lost += 1;
  }
  return 0;
}

static __always_inline struct file *fd_to_file(struct task_struct *task, int fd) {
  struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
  unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
  struct file **fds = BPF_CORE_READ(fdt, fd);
  struct file *file = NULL;
  if (fd < 0 || (unsigned int)fd >= max_fds) return NULL;
  bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
  return file;
}

/* Walks dentries up to the namespace root, writing the path backwards so that it ends at
 * path[PATH_HALF]. One bpf_loop step per component: the callback is verified once, where an
 * open-coded loop would make the verifier explore every combination of mount crossings. */
struct walk_state {
  struct dentry *dentry;
  struct vfsmount *vfsmnt;
  struct mount *mnt;
  int off;
};

static long walk_one_component(__u32 index, void *ctx) {
  struct walk_state *w = ctx;
  struct scratch *sc = get_scratch();
  if (!sc) return 1;
  /* Plain locals: CO-RE must not treat walk_state members as kernel fields. */
  struct dentry *dentry = w->dentry;
  struct vfsmount *vfsmnt = w->vfsmnt;
  struct mount *mnt = w->mnt;
  struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
  struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
  if (dentry == mnt_root || dentry == parent) {
    struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
    if (!mnt_parent || mnt_parent == mnt) return 1; /* the namespace root */
    w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
    w->mnt = mnt_parent;
    w->vfsmnt = (struct vfsmount *)((void *)mnt_parent + bpf_core_field_offset(struct mount, mnt));
    return 0;
  }
  __u32 len = BPF_CORE_READ(dentry, d_name.len) & NAME_MASK;
  const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
  int next = w->off - (int)len - 1;
  if (next < 0 || next >= PATH_HALF) return 1; /* too long: keep the tail we have */
  sc->path[next & (PATH_HALF - 1)] = '/';
  bpf_probe_read_kernel(&sc->path[(next + 1) & (PATH_HALF - 1)], len, name);
  w->off = next;
  w->dentry = parent;
  return 0;
}

static __always_inline __u32 dentry_path_backward(struct dentry *dentry, struct vfsmount *vfsmnt,
                                                  char *buf) {
  struct walk_state w = {
      .dentry = dentry,
      .vfsmnt = vfsmnt,
      .mnt = container_of(vfsmnt, struct mount, mnt),
      .off = PATH_HALF,
  };
  bpf_loop(MAX_PATH_DEPTH, walk_one_component, &w, 0);
  int off = w.off;
  if (off <= 0 || off >= PATH_HALF) {
    off = PATH_HALF - 1;
    buf[PATH_HALF - 1] = '/';
  }
  return (__u32)off;
}

struct span {
  __u32 start;
  __u32 len;
};

static __always_inline struct span resolve_file(struct file *file, char *buf) {
  struct span s = {PATH_HALF, 0};
  if (!file) return s;
  struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
  struct vfsmount *mnt = BPF_CORE_READ(file, f_path.mnt);
  s.start = dentry_path_backward(dentry, mnt, buf);
  s.len = PATH_HALF - s.start;
  return s;
}

/* Resolves a user path relative to dfd (or the cwd) into buf; absolute paths are taken as given.
 * User space normalizes "." and ".." lexically. */
static __always_inline struct span resolve_user_path(struct task_struct *task, int dfd,
                                                     const char *upath, char *buf) {
  struct span s = {PATH_HALF, 0};
  char first = 0;
  if (upath) bpf_probe_read_user(&first, 1, upath);
  if (first == '/') {
    long n = bpf_probe_read_user_str(&buf[PATH_HALF], PATH_HALF, upath);
    s.len = n > 0 ? (__u32)(n - 1) : 0;
    return s;
  }
  if (dfd == AT_FDCWD) {
    struct dentry *dentry = BPF_CORE_READ(task, fs, pwd.dentry);
    struct vfsmount *mnt = BPF_CORE_READ(task, fs, pwd.mnt);
    s.start = dentry_path_backward(dentry, mnt, buf);
  } else {
    struct file *dir = fd_to_file(task, dfd);
    if (!dir) return s;
    s.start = resolve_file(dir, buf).start;
  }
  s.len = PATH_HALF - s.start;
  if (first == 0) return s; /* empty path (AT_EMPTY_PATH): the directory itself */
  buf[PATH_HALF] = '/';
  long n = bpf_probe_read_user_str(&buf[PATH_HALF + 1], PATH_HALF - 1, upath);
  if (n > 1) s.len += (__u32)n; /* '/' + name, without the terminator */
  return s;
}

/* Prefix rules for file events, one bpf_loop step per rule (see walk_one_component for why). */
struct filter_state {
  __u32 start;
  __u32 len;
  __u8 any_include;
  __u8 included;
  __u8 excluded;
};

static long check_one_filter(__u32 index, void *ctx) {
  struct filter_state *fs = ctx;
  struct scratch *sc = get_scratch();
  __u32 key = index;
  struct pal_file_filter *f = bpf_map_lookup_elem(&file_filters, &key);
  if (!sc || !f || f->len == 0) return 0;
  if (f->include) fs->any_include = 1;
  __u32 prefix_len = f->len;
  __u32 start = fs->start;
  if (prefix_len > PAL_FILTER_PREFIX_LEN || prefix_len > fs->len) return 0;
  /* Compare eight bytes at a time, unrolled: a byte loop costs the verifier far more. */
  const __u64 *want = (const __u64 *)f->prefix;
#pragma unroll
  for (__u32 w = 0; w < PAL_FILTER_PREFIX_LEN / 8; w++) {
    if (w * 8 >= prefix_len) break;
    __u64 have = 0;
    /* A helper read, not a load: the verifier then treats the bytes as opaque and does not
     * explore their values (a direct load made exit_rename exceed the complexity limit). */
    bpf_probe_read_kernel(&have, sizeof(have), &sc->path[(start + w * 8) & PATH_MASK]);
    __u32 remaining = prefix_len - w * 8;
    __u64 mask = remaining >= 8 ? ~0ULL : ((1ULL << (remaining * 8)) - 1); /* little-endian */
    if ((have & mask) != (want[w] & mask)) return 0;
  }
  if (f->include) {
    fs->included = 1;
    return 0;
  }
  fs->excluded = 1;
  return 1;
}

static __always_inline bool path_filtered(struct span s) {
  struct filter_state fs = {.start = s.start, .len = s.len};
  bpf_loop(PAL_MAX_FILE_FILTERS, check_one_filter, &fs, 0);
  return fs.excluded || (fs.any_include && !fs.included);
}

/* Appends buf[s] as string idx of the record; returns the new end offset. */
static __always_inline __u32 append_span(struct scratch *sc, __u32 off, int idx, struct span s) {
  struct pal_record *r = (struct pal_record *)sc->ev;
  __u32 len = s.len;
  if (len > PAL_PATH_MAX - 1) len = PAL_PATH_MAX - 1;
  barrier_var(len);
  len &= (PAL_PATH_MAX - 1);
  bpf_probe_read_kernel(&sc->ev[off & EV_MASK], len, &sc->path[s.start & PATH_MASK]);
  r->h.str_len[idx & (PAL_MAX_STRINGS - 1)] = (__u16)len;
  return off + len;
}

static __always_inline __u32 append_str(struct scratch *sc, __u32 off, int idx, const void *src,
                                        bool user) {
  struct pal_record *r = (struct pal_record *)sc->ev;
  long n = user ? bpf_probe_read_user_str(&sc->ev[off & EV_MASK], PAL_PATH_MAX, src)
                : bpf_probe_read_kernel_str(&sc->ev[off & EV_MASK], PAL_PATH_MAX, src);
  __u32 len = n > 0 ? (__u32)(n - 1) : 0;
  r->h.str_len[idx & (PAL_MAX_STRINGS - 1)] = (__u16)len;
  return off + len;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* Which of fds 0-2 are sockets: a shell reading and writing a network connection. */
static __always_inline __u32 stdio_socket_bits(struct task_struct *task) {
  __u32 bits = 0;
#pragma unroll
  for (int fd = 0; fd < 3; fd++) {
    struct file *f = fd_to_file(task, fd);
    if (!f) continue;
    umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
    if ((mode & S_IFMT) == S_IFSOCK) bits |= 1U << fd;
  }
  return bits;
}

/* ------------------------------------------------------ process lifecycle */

SEC("raw_tracepoint/sched_process_exec")
int handle_exec(struct bpf_raw_tracepoint_args *ctx) {
  if (is_self()) return 0;
  struct task_struct *task = (struct task_struct *)ctx->args[0];
  struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
  struct scratch *sc = get_scratch();
  if (!sc) return 0;
  struct pal_record *r = begin_record(sc, PAL_PROC_EXEC, 0);
  __u32 off = sizeof(struct pal_record);

  off = append_span(sc, off, 0, resolve_file(BPF_CORE_READ(bprm, file), sc->path));

  struct mm_struct *mm = BPF_CORE_READ(task, mm);
  unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
  unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
  __u32 len = arg_end > arg_start ? (__u32)(arg_end - arg_start) : 0;
  __u32 limit = argv_max;
  if (len > limit) {
    len = limit;
    r->a.exec.argv_truncated = 1;
  }
  /* The barrier keeps clang from folding the mask into the compares the verifier cannot use. */
  barrier_var(len);
  len &= (STR_MAX - 1);
  if (bpf_probe_read_user(&sc->ev[off & EV_MASK], len, (void *)arg_start) != 0) len = 0;
  r->h.str_len[1] = (__u16)len;
  off += len;

  struct dentry *cwd = BPF_CORE_READ(task, fs, pwd.dentry);
  struct vfsmount *cwd_mnt = BPF_CORE_READ(task, fs, pwd.mnt);
  __u32 start = dentry_path_backward(cwd, cwd_mnt, sc->path);
  struct span cwd_span = {start, PATH_HALF - start};
  off = append_span(sc, off, 2, cwd_span);
  off = append_str(sc, off, 3, BPF_CORE_READ(bprm, filename), false);
  r->a.exec.stdio_sockets = stdio_socket_bits(task);
  return submit(sc, off);
}

SEC("raw_tracepoint/sched_process_fork")
int handle_fork(struct bpf_raw_tracepoint_args *ctx) {
  if (is_self()) return 0;
  struct task_struct *child = (struct task_struct *)ctx->args[1];
  __u32 child_pid = BPF_CORE_READ(child, pid);
  __u32 child_tgid = BPF_CORE_READ(child, tgid);
  if (child_pid != child_tgid) return 0; /* a new thread, not a new process */
  struct scratch *sc = get_scratch();
  if (!sc) return 0;
  struct pal_record *r = begin_record(sc, PAL_PROC_FORK, child_tgid);
  r->a.fork.child_pid = child_pid;
  r->a.fork.child_tgid = child_tgid;
  r->a.fork.child_start_ns = BPF_CORE_READ(child, start_boottime);
  return submit(sc, sizeof(struct pal_record));
}

SEC("raw_tracepoint/sched_process_exit")
int handle_exit(struct bpf_raw_tracepoint_args *ctx) {
  if (is_self()) return 0;
  struct task_struct *task = (struct task_struct *)ctx->args[0];
  /* Report the process, not each thread: only when the last thread of the group leaves. */
  if (BPF_CORE_READ(task, signal, live.counter) != 0) return 0;
  struct scratch *sc = get_scratch();
  if (!sc) return 0;
  __u32 code = BPF_CORE_READ(task, exit_code);
  struct pal_record *r = begin_record(sc, PAL_PROC_EXIT, code);
  r->a.exit.exit_code = code;
  return submit(sc, sizeof(struct pal_record));
}

/* --------------------------------------------------------- syscall pairs */

static __always_inline int stash(struct pending *p) {
  __u64 id = bpf_get_current_pid_tgid();
  bpf_map_update_elem(&pending_map, &id, p, BPF_ANY);
  return 0;
}

static __always_inline struct pending *take(__u32 kind, struct scratch *sc) {
  __u64 id = bpf_get_current_pid_tgid();
  struct pending *p = bpf_map_lookup_elem(&pending_map, &id);
  if (!p) return NULL;
  struct pending *copy = &sc->pend;
  __builtin_memcpy(copy, p, sizeof(*copy));
  bpf_map_delete_elem(&pending_map, &id);
  return copy->kind == kind ? copy : NULL;
}

#define ENTER(sc_name)                                                        \
  SEC("tracepoint/syscalls/sys_enter_" #sc_name)                              \
  int enter_##sc_name(struct trace_event_raw_sys_enter *ctx) {                \
    if (is_self()) return 0;                                                  \
    struct pending p = {};                                                    \
    /* Copied out: the verifier forbids reads through a moved ctx pointer. */ \
    const unsigned long a[6] = {ctx->args[0], ctx->args[1], ctx->args[2],     \
                                ctx->args[3], ctx->args[4], ctx->args[5]};    \
    if (!fill_##sc_name(&p, a)) return 0;                                     \
    return stash(&p);                                                         \
  }

#define EXIT(sc_name, family)                                \
  SEC("tracepoint/syscalls/sys_exit_" #sc_name)              \
  int exit_##sc_name(struct trace_event_raw_sys_exit *ctx) { \
    return finish_##family(ctx->ret, KIND_##sc_name);        \
  }

#define SYSCALL(sc_name, family) ENTER(sc_name) EXIT(sc_name, family)

/* Stash identifiers double as the check that enter and exit belong to the same syscall. */
enum stash_kind {
  KIND_openat = 1,
  KIND_open,
  KIND_creat,
  KIND_openat2,
  KIND_unlink,
  KIND_unlinkat,
  KIND_rmdir,
  KIND_rename,
  KIND_renameat,
  KIND_renameat2,
  KIND_chmod,
  KIND_fchmod,
  KIND_fchmodat,
  KIND_fchmodat2,
  KIND_chown,
  KIND_lchown,
  KIND_fchown,
  KIND_fchownat,
  KIND_connect,
  KIND_accept,
  KIND_accept4,
  KIND_bind,
  KIND_listen,
  KIND_setuid,
  KIND_setreuid,
  KIND_setresuid,
  KIND_setfsuid,
  KIND_setgid,
  KIND_setregid,
  KIND_setresgid,
  KIND_setfsgid,
  KIND_capset,
  KIND_ptrace,
  KIND_init_module,
  KIND_finit_module,
  KIND_mount,
  KIND_unshare,
  KIND_setns,
  KIND_memfd_create,
  KIND_bpf,
};

/* ------------------------------------------------------------------ files */

static __always_inline bool write_intent(__u32 flags) {
  return (flags & WRITE_INTENT) != 0;
}

#define FILL(name) \
  static __always_inline bool fill_##name(struct pending *p, const unsigned long *a)

FILL(openat) {
  p->kind = KIND_openat;
  p->dfd = (int)a[0];
  p->path = a[1];
  p->flags = (__u32)a[2];
  p->mode = (__u32)a[3];
  return write_intent(p->flags);
}
FILL(open) {
  p->kind = KIND_open;
  p->dfd = AT_FDCWD;
  p->path = a[0];
  p->flags = (__u32)a[1];
  p->mode = (__u32)a[2];
  return write_intent(p->flags);
}
FILL(creat) {
  p->kind = KIND_creat;
  p->dfd = AT_FDCWD;
  p->path = a[0];
  p->flags = O_CREAT | O_WRONLY | O_TRUNC;
  p->mode = (__u32)a[1];
  return true;
}
FILL(openat2) {
  struct open_how how = {};
  bpf_probe_read_user(&how, sizeof(how), (void *)a[2]);
  p->kind = KIND_openat2;
  p->dfd = (int)a[0];
  p->path = a[1];
  p->flags = (__u32)how.flags;
  p->mode = (__u32)how.mode;
  return write_intent(p->flags);
}
FILL(unlink) {
  p->kind = KIND_unlink;
  p->dfd = AT_FDCWD;
  p->path = a[0];
  return true;
}
FILL(unlinkat) {
  p->kind = KIND_unlinkat;
  p->dfd = (int)a[0];
  p->path = a[1];
  p->flags = (__u32)a[2];
  return true;
}
FILL(rmdir) {
  p->kind = KIND_rmdir;
  p->dfd = AT_FDCWD;
  p->path = a[0];
  return true;
}
FILL(rename) {
  p->kind = KIND_rename;
  p->dfd = AT_FDCWD;
  p->path = a[0];
  p->dfd2 = AT_FDCWD;
  p->path2 = a[1];
  return true;
}
FILL(renameat) {
  p->kind = KIND_renameat;
  p->dfd = (int)a[0];
  p->path = a[1];
  p->dfd2 = (int)a[2];
  p->path2 = a[3];
  return true;
}
FILL(renameat2) {
  p->kind = KIND_renameat2;
  p->dfd = (int)a[0];
  p->path = a[1];
  p->dfd2 = (int)a[2];
  p->path2 = a[3];
  p->flags = (__u32)a[4];
  return true;
}
FILL(chmod) {
  p->kind = KIND_chmod;
  p->dfd = AT_FDCWD;
  p->path = a[0];
  p->mode = (__u32)a[1];
  return true;
}
FILL(fchmod) {
  p->kind = KIND_fchmod;
  p->fd = (int)a[0];
  p->mode = (__u32)a[1];
  return true;
}
FILL(fchmodat) {
  p->kind = KIND_fchmodat;
  p->dfd = (int)a[0];
  p->path = a[1];
  p->mode = (__u32)a[2];
  return true;
}
FILL(fchmodat2) {
  p->kind = KIND_fchmodat2;
  p->dfd = (int)a[0];
  p->path = a[1];
  p->mode = (__u32)a[2];
  p->flags = (__u32)a[3];
  return true;
}
FILL(chown) {
  p->kind = KIND_chown;
  p->dfd = AT_FDCWD;
  p->path = a[0];
  p->uid = (__u32)a[1];
  p->gid = (__u32)a[2];
  return true;
}
FILL(lchown) {
  p->kind = KIND_lchown;
  p->dfd = AT_FDCWD;
  p->path = a[0];
  p->uid = (__u32)a[1];
  p->gid = (__u32)a[2];
  return true;
}
FILL(fchown) {
  p->kind = KIND_fchown;
  p->fd = (int)a[0];
  p->uid = (__u32)a[1];
  p->gid = (__u32)a[2];
  return true;
}
FILL(fchownat) {
  p->kind = KIND_fchownat;
  p->dfd = (int)a[0];
  p->path = a[1];
  p->uid = (__u32)a[2];
  p->gid = (__u32)a[3];
  p->flags = (__u32)a[4];
  return true;
}

static __always_inline __u32 file_event_kind(__u32 stash_kind, __u32 flags) {
  switch (stash_kind) {
    case KIND_openat:
    case KIND_open:
    case KIND_creat:
    case KIND_openat2:
      return PAL_FILE_OPEN;
    case KIND_unlink:
      return PAL_FILE_UNLINK;
    case KIND_unlinkat:
      return (flags & AT_REMOVEDIR) ? PAL_FILE_RMDIR : PAL_FILE_UNLINK;
    case KIND_rmdir:
      return PAL_FILE_RMDIR;
    case KIND_rename:
    case KIND_renameat:
    case KIND_renameat2:
      return PAL_FILE_RENAME;
    case KIND_chmod:
    case KIND_fchmod:
    case KIND_fchmodat:
    case KIND_fchmodat2:
      return PAL_FILE_CHMOD;
    default:
      return PAL_FILE_CHOWN;
  }
}

static __always_inline int finish_file(long ret, const __u32 stash_kind) {
  struct scratch *sc = get_scratch();
  if (!sc) return 0;
  struct pending *p = take(stash_kind, sc);
  if (!p) return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  const bool is_open = file_event_kind(stash_kind, 0) == PAL_FILE_OPEN;

  struct span first;
  if (is_open && ret >= 0)
    first = resolve_file(fd_to_file(task, (int)ret), sc->path); /* the file actually opened */
  else if (stash_kind == KIND_fchmod || stash_kind == KIND_fchown)
    first = resolve_file(fd_to_file(task, p->fd), sc->path);
  else
    first = resolve_user_path(task, p->dfd, (const char *)p->path, sc->path);
  bool filtered = path_filtered(first);

  struct pal_record *r = begin_record(sc, file_event_kind(stash_kind, p->flags), ret);
  r->a.file.flags = p->flags;
  r->a.file.mode = p->mode;
  r->a.file.uid = p->uid;
  r->a.file.gid = p->gid;
  r->a.file.fd = (stash_kind == KIND_fchmod || stash_kind == KIND_fchown) ? p->fd : -1;
  __u32 off = append_span(sc, sizeof(struct pal_record), 0, first);

  if (stash_kind == KIND_rename || stash_kind == KIND_renameat || stash_kind == KIND_renameat2) {
    struct span second = resolve_user_path(task, p->dfd2, (const char *)p->path2, sc->path);
    /* A rename is dropped only when both ends are filtered out. */
    filtered = filtered && path_filtered(second);
    off = append_span(sc, off, 1, second);
  }
  if (filtered) return 0;
  return submit(sc, off);
}

SYSCALL(openat, file)
SYSCALL(open, file)
SYSCALL(creat, file)
SYSCALL(openat2, file)
SYSCALL(unlink, file)
SYSCALL(unlinkat, file)
SYSCALL(rmdir, file)
SYSCALL(rename, file)
SYSCALL(renameat, file)
SYSCALL(renameat2, file)
SYSCALL(chmod, file)
SYSCALL(fchmod, file)
SYSCALL(fchmodat, file)
SYSCALL(fchmodat2, file)
SYSCALL(chown, file)
SYSCALL(lchown, file)
SYSCALL(fchown, file)
SYSCALL(fchownat, file)

/* ---------------------------------------------------------------- network */

static __always_inline bool stash_sockaddr(struct pending *p, const void *uaddr, long addrlen) {
  __u16 family = 0;
  if (!uaddr || bpf_probe_read_user(&family, sizeof(family), uaddr) != 0) return false;
  if (family != AF_INET && family != AF_INET6) return false;
  __u32 len = addrlen > (long)sizeof(p->sockaddr) ? sizeof(p->sockaddr) : (__u32)addrlen;
  if (len < 8) return false;
  bpf_probe_read_user(p->sockaddr, len & 31, uaddr);
  p->sockaddr_len = len;
  return true;
}

FILL(connect) {
  p->kind = KIND_connect;
  p->fd = (int)a[0];
  return stash_sockaddr(p, (void *)a[1], (long)a[2]);
}
FILL(bind) {
  p->kind = KIND_bind;
  p->fd = (int)a[0];
  return stash_sockaddr(p, (void *)a[1], (long)a[2]);
}
FILL(accept) {
  p->kind = KIND_accept;
  p->fd = (int)a[0];
  return true;
}
FILL(accept4) {
  p->kind = KIND_accept4;
  p->fd = (int)a[0];
  return true;
}
FILL(listen) {
  p->kind = KIND_listen;
  p->fd = (int)a[0];
  p->arg[0] = a[1];
  return true;
}

static __always_inline struct sock *fd_to_sock(struct task_struct *task, int fd) {
  struct file *file = fd_to_file(task, fd);
  if (!file) return NULL;
  struct socket *sock = (struct socket *)BPF_CORE_READ(file, private_data);
  return BPF_CORE_READ(sock, sk);
}

/* Fills local and remote endpoints from the kernel socket. */
static __always_inline bool read_sock(struct pal_net_args *n, struct sock *sk) {
  if (!sk) return false;
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != AF_INET && family != AF_INET6) return false;
  n->family = family;
  n->sock_type = BPF_CORE_READ(sk, sk_type);
  n->protocol = BPF_CORE_READ(sk, sk_protocol);
  n->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
  n->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (family == AF_INET) {
    __u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    __u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(n->local_addr, &l, 4);
    __builtin_memcpy(n->remote_addr, &r, 4);
  } else {
    BPF_CORE_READ_INTO(&n->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
    BPF_CORE_READ_INTO(&n->remote_addr, sk, __sk_common.skc_v6_daddr);
  }
  return true;
}

/* Copies a stashed sockaddr_in/_in6 into the remote (connect) or local (bind) endpoint. */
static __always_inline void sockaddr_to_endpoint(struct pending *p, __u8 *addr, __u16 *port,
                                                 __u16 *family) {
  __u16 fam = 0, nport = 0;
  __builtin_memcpy(&fam, p->sockaddr, 2);
  __builtin_memcpy(&nport, p->sockaddr + 2, 2);
  *family = fam;
  *port = bpf_ntohs(nport);
  if (fam == AF_INET)
    __builtin_memcpy(addr, p->sockaddr + 4, 4);
  else
    __builtin_memcpy(addr, p->sockaddr + 8, 16);
}

#define EINPROGRESS 115

static __always_inline int finish_net(long ret, const __u32 stash_kind) {
  struct scratch *sc = get_scratch();
  if (!sc) return 0;
  struct pending *p = take(stash_kind, sc);
  if (!p) return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  __u32 kind = stash_kind == KIND_connect  ? PAL_NET_CONNECT
               : stash_kind == KIND_bind   ? PAL_NET_BIND
               : stash_kind == KIND_listen ? PAL_NET_LISTEN
                                           : PAL_NET_ACCEPT;
  if (kind == PAL_NET_ACCEPT && ret < 0) return 0; /* EAGAIN storms on non-blocking sockets */
  struct pal_record *r = begin_record(sc, kind, ret);
  struct pal_net_args *n = &r->a.net;
  n->fd = kind == PAL_NET_ACCEPT ? (int)ret : p->fd;
  bool ok = ret == 0 || ret == -EINPROGRESS || (kind == PAL_NET_ACCEPT && ret >= 0);
  bool known = ok ? read_sock(n, fd_to_sock(task, n->fd)) : false;
  if (kind == PAL_NET_CONNECT)
    sockaddr_to_endpoint(p, n->remote_addr, &n->remote_port, &n->family);
  else if (kind == PAL_NET_BIND)
    sockaddr_to_endpoint(p, n->local_addr, &n->local_port, &n->family);
  else if (!known)
    return 0; /* listen/accept on a non-INET socket */
  return submit(sc, sizeof(struct pal_record));
}

SYSCALL(connect, net)
SYSCALL(accept, net)
SYSCALL(accept4, net)
SYSCALL(bind, net)
SYSCALL(listen, net)

/* -------------------------------------------------------------- privilege */

static __always_inline void save_creds(struct pending *p) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  p->old_uid = BPF_CORE_READ(task, cred, uid.val);
  p->old_euid = BPF_CORE_READ(task, cred, euid.val);
  p->old_gid = BPF_CORE_READ(task, cred, gid.val);
  p->old_egid = BPF_CORE_READ(task, cred, egid.val);
}

#define FILL_IDS(name, n_args)                           \
  FILL(name) {                                           \
    p->kind = KIND_##name;                               \
    for (int i = 0; i < (n_args); i++) p->arg[i] = a[i]; \
    save_creds(p);                                       \
    return true;                                         \
  }
FILL_IDS(setuid, 1)
FILL_IDS(setreuid, 2)
FILL_IDS(setresuid, 3)
FILL_IDS(setfsuid, 1)
FILL_IDS(setgid, 1)
FILL_IDS(setregid, 2)
FILL_IDS(setresgid, 3)
FILL_IDS(setfsgid, 1)
FILL_IDS(unshare, 1)

FILL(capset) {
  struct {
    __u32 effective, permitted, inheritable;
  } data[2] = {};
  p->kind = KIND_capset;
  bpf_probe_read_user(&data, sizeof(data), (void *)a[1]);
  p->arg[0] = data[0].effective | ((__u64)data[1].effective << 32);
  p->arg[1] = data[0].permitted | ((__u64)data[1].permitted << 32);
  p->arg[2] = data[0].inheritable | ((__u64)data[1].inheritable << 32);
  save_creds(p);
  return true;
}

#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206
FILL(ptrace) {
  long request = (long)a[0];
  p->kind = KIND_ptrace;
  p->arg[0] = a[0];
  p->arg[1] = a[1];
  /* Attaching and writing another process's memory matter; PEEKs and CONTs are noise. */
  return request == PTRACE_ATTACH || request == PTRACE_SEIZE || request == PTRACE_POKETEXT ||
         request == PTRACE_POKEDATA;
}
FILL(init_module) {
  p->kind = KIND_init_module;
  p->arg[0] = a[1];
  p->path = a[2];
  return true;
}
FILL(finit_module) {
  p->kind = KIND_finit_module;
  p->fd = (int)a[0];
  p->flags = (__u32)a[2];
  p->path = a[1];
  return true;
}
FILL(mount) {
  p->kind = KIND_mount;
  p->path = a[0];
  p->path2 = a[1];
  p->arg[0] = a[2];
  p->arg[1] = a[3];
  return true;
}
FILL(setns) {
  p->kind = KIND_setns;
  p->fd = (int)a[0];
  p->arg[0] = a[1];
  return true;
}
FILL(memfd_create) {
  p->kind = KIND_memfd_create;
  p->path = a[0];
  p->arg[0] = a[1];
  return true;
}
FILL(bpf) {
  p->kind = KIND_bpf;
  p->arg[0] = a[0];
  p->arg[1] = a[2];
  __u32 prog_type = 0;
  if (a[0] == 5 /* BPF_PROG_LOAD */)
    bpf_probe_read_user(&prog_type, sizeof(prog_type), (void *)a[1]);
  p->arg[2] = prog_type;
  return true;
}

static __always_inline __u32 priv_event_kind(__u32 stash_kind) {
  switch (stash_kind) {
    case KIND_setuid:
    case KIND_setreuid:
    case KIND_setresuid:
    case KIND_setfsuid:
      return PAL_PRIV_SETUID;
    case KIND_setgid:
    case KIND_setregid:
    case KIND_setresgid:
    case KIND_setfsgid:
      return PAL_PRIV_SETGID;
    case KIND_capset:
      return PAL_PRIV_CAPSET;
    case KIND_ptrace:
      return PAL_PRIV_PTRACE;
    case KIND_init_module:
    case KIND_finit_module:
      return PAL_PRIV_MODULE;
    case KIND_mount:
      return PAL_PRIV_MOUNT;
    case KIND_unshare:
      return PAL_PRIV_UNSHARE;
    case KIND_setns:
      return PAL_PRIV_SETNS;
    case KIND_memfd_create:
      return PAL_PRIV_MEMFD;
    default:
      return PAL_PRIV_BPF;
  }
}

static __always_inline int finish_priv(long ret, const __u32 stash_kind) {
  struct scratch *sc = get_scratch();
  if (!sc) return 0;
  struct pending *p = take(stash_kind, sc);
  if (!p) return 0;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct pal_record *r = begin_record(sc, priv_event_kind(stash_kind), ret);
  struct pal_priv_args *pa = &r->a.priv;
  __builtin_memcpy(pa->arg, p->arg, sizeof(pa->arg));
  pa->old_uid = p->old_uid;
  pa->old_euid = p->old_euid;
  pa->old_gid = p->old_gid;
  pa->old_egid = p->old_egid;
  __u32 off = sizeof(struct pal_record);
  if (stash_kind == KIND_finit_module) {
    off = append_span(sc, off, 0, resolve_file(fd_to_file(task, p->fd), sc->path));
    pa->arg[0] = p->flags;
    pa->arg[3] = 1; /* loaded from a file: string 0 is its path */
  } else if (stash_kind == KIND_init_module) {
    off = append_str(sc, off, 0, (const void *)p->path, true); /* module parameters */
  } else if (stash_kind == KIND_mount) {
    off = append_str(sc, off, 0, (const void *)p->path, true);
    off = append_span(sc, off, 1,
                      resolve_user_path(task, AT_FDCWD, (const char *)p->path2, sc->path));
    off = append_str(sc, off, 2, (const void *)p->arg[0], true);
  } else if (stash_kind == KIND_setns) {
    struct file *ns_file = fd_to_file(task, p->fd);
    pa->arg[1] = BPF_CORE_READ(ns_file, f_inode, i_ino);
  } else if (stash_kind == KIND_memfd_create) {
    off = append_str(sc, off, 0, (const void *)p->path, true);
  }
  return submit(sc, off);
}

SYSCALL(setuid, priv)
SYSCALL(setreuid, priv)
SYSCALL(setresuid, priv)
SYSCALL(setfsuid, priv)
SYSCALL(setgid, priv)
SYSCALL(setregid, priv)
SYSCALL(setresgid, priv)
SYSCALL(setfsgid, priv)
SYSCALL(capset, priv)
SYSCALL(ptrace, priv)
SYSCALL(init_module, priv)
SYSCALL(finit_module, priv)
SYSCALL(mount, priv)
SYSCALL(unshare, priv)
SYSCALL(setns, priv)
SYSCALL(memfd_create, priv)
SYSCALL(bpf, priv)
