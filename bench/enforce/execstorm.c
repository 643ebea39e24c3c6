// Exec storm driver for bench/enforce/exec-latency.sh (compiled by the script with gcc).
//   execstorm run N WARMUP CGROUP_DIR   join the cgroup, run WARMUP untimed then N timed
//                                       fork+execv("/usr/bin/true")+waitpid; prints
//                                       "<execs/s> <mean us per exec> <failed execs>"
//   execstorm check PATH CGROUP_DIR     join the cgroup, exec PATH once; prints what happened:
//                                       "exit <status>", "refused <errno name>" or
//                                       "killed <signal>"
// Every exec is done by a child of this process, so the subject that execs is always this
// driver (fapolicyd's rules name it by its path).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void join_cgroup(const char* dir) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
  FILE* f = fopen(path, "w");
  if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) {
    fprintf(stderr, "execstorm: cannot join %s: %s\n", dir, strerror(errno));
    exit(2);
  }
}

// Runs path once; returns its wait status, and in *exec_errno the errno of a failed execv
static int run_once(const char* path, int* exec_errno) {
  char* const argv[] = {(char*)path, NULL};
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    execv(path, argv);
    int e = errno;
    if (write(fds[1], &e, sizeof(e)) != sizeof(e)) _exit(127);
    _exit(127);
  }
  close(fds[1]);
  int e = 0;
  *exec_errno = read(fds[0], &e, sizeof(e)) == sizeof(e) ? e : 0;
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// The timed loop has no pipe: exactly fork + execv + waitpid, as the workload to measure.
static long storm(long n) {
  char* const argv[] = {"true", NULL};
  long failed = 0;
  for (long i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      execv("/usr/bin/true", argv);
      _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      failed++;
    }
  }
  return failed;
}

int main(int argc, char** argv) {
  if (argc == 5 && strcmp(argv[1], "run") == 0) {
    const long n = strtol(argv[2], NULL, 10);
    const long warmup = strtol(argv[3], NULL, 10);
    join_cgroup(argv[4]);
    long failed = storm(warmup);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    failed += storm(n);
    clock_gettime(CLOCK_MONOTONIC, &b);
    const double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%.1f %.2f %ld\n", (double)n / s, s * 1e6 / (double)n, failed);
    return failed == 0 ? 0 : 1;
  }
  if (argc == 4 && strcmp(argv[1], "check") == 0) {
    join_cgroup(argv[3]);
    int e = 0;
    const int status = run_once(argv[2], &e);
    if (e != 0) {
      printf("refused %s\n", strerrorname_np(e) ? strerrorname_np(e) : "?");
    } else if (WIFSIGNALED(status)) {
      printf("killed %s\n", sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
    } else {
      printf("exit %d\n", WEXITSTATUS(status));
    }
    return 0;
  }
  fprintf(stderr, "usage: %s run N WARMUP CGROUP_DIR | check PATH CGROUP_DIR\n", argv[0]);
  return 2;
}
