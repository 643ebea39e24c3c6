// Starts N idle child processes (each exec'd, so the agent tracks a real image), prints "ready",
// and keeps them until stdin closes or a signal arrives. Used by bench/memory.sh.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 10000;
  for (long i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      execl("/bin/sleep", "sleep", "3600", nullptr);
      _exit(127);
    }
    if (pid < 0) {
      std::perror("fork");
      return 1;
    }
  }
  std::printf("ready\n");
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  // The children die with us (PR_SET_PDEATHSIG).
  return 0;
}
