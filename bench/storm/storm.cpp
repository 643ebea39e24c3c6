// Workload generator for the overhead benchmarks: an exec storm, a file storm and a connect
// storm, each timed from inside so that process start-up is not measured. Prints seconds.
//   palisade-storm exec N
//   palisade-storm file N DIR
//   palisade-storm connect N
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

void exec_storm(long n) {
  for (long i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/true", "true", nullptr);
      _exit(127);
    }
    waitpid(pid, nullptr, 0);
  }
}

void file_storm(long n, const std::string& dir) {
  char a[4096];
  char b[4096];
  for (long i = 0; i < n; ++i) {
    std::snprintf(a, sizeof(a), "%s/f%ld", dir.c_str(), i);
    std::snprintf(b, sizeof(b), "%s/g%ld", dir.c_str(), i);
    int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "data\n", 5) != 5) std::abort();
    close(fd);
    if (rename(a, b) != 0 || unlink(b) != 0) std::abort();
  }
}

void connect_storm(long n) {
  int server = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) std::abort();
  listen(server, 4096);
  socklen_t len = sizeof(addr);
  getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread acceptor([server, n] {
    for (long i = 0; i < n; ++i) {
      int c = accept(server, nullptr, nullptr);
      if (c >= 0) close(c);
    }
  });
  for (long i = 0; i < n; ++i) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    // RST on close: no TIME_WAIT pile-up across 20,000 connections.
    linger lg{1, 0};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) std::abort();
    close(s);
  }
  acceptor.join();
  close(server);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s exec|file|connect N [DIR]\n", argv[0]);
    return 2;
  }
  const std::string kind = argv[1];
  const long n = std::strtol(argv[2], nullptr, 10);
  auto start = std::chrono::steady_clock::now();
  if (kind == "exec") {
    exec_storm(n);
  } else if (kind == "file" && argc > 3) {
    file_storm(n, argv[3]);
  } else if (kind == "connect") {
    connect_storm(n);
  } else {
    std::fprintf(stderr, "unknown storm %s\n", kind.c_str());
    return 2;
  }
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  std::printf("%.4f\n", took.count());
  return 0;
}
