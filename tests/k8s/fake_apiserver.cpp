#include "fake_apiserver.h"

#include <cpprest/http_client.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace palisade::k8s::testing {

namespace fs = std::filesystem;

namespace {

const fs::path kTestDir = PALISADE_K8S_TEST_DIR;

pid_t spawn(const std::vector<std::string>& args, int stdout_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
  return pid;
}

// Reads one line from `fd` within `timeout`.
std::string read_line(int fd, std::chrono::milliseconds timeout) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char c = 0;
    if (::read(fd, &c, 1) != 1) break;
    if (c == '\n') return line;
    line.push_back(c);
  }
  throw std::runtime_error("fake API server did not start: \"" + line + "\"");
}

struct CertDir {
  TempDir dir;
  CertDir() {
    const pid_t pid = spawn({"python3", (kTestDir / "fake_apiserver.py").string(), "--certs",
                             (dir.path() / "certs").string(), "--certs-only"},
                            -1);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("making test certificates failed (python3, openssl)");
    }
  }
};

}  // namespace

TempDir::TempDir() {
  std::string templ = (fs::temp_directory_path() / "palisade-k8s-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

const fs::path& test_certs() {
  static const CertDir certs;
  static const fs::path path = certs.dir.path() / "certs";
  return path;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

nlohmann::json fixture(const std::string& name) {
  return nlohmann::json::parse(read_text(kTestDir / "fixtures" / name));
}

nlohmann::json fixture_item(const std::string& list, std::size_t index) {
  const auto listing = fixture(list);
  auto item = listing["items"].at(index);
  std::string kind = listing["kind"].get<std::string>();
  item["kind"] = kind.substr(0, kind.size() - 4);  // "PodList" -> "Pod"
  item["apiVersion"] = listing["apiVersion"];
  return item;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

FakeApiServer::FakeApiServer() {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  pid_ =
      spawn({"python3", (kTestDir / "fake_apiserver.py").string(), "--certs", test_certs().string(),
             "--fixtures", (kTestDir / "fixtures").string(), "--token", kToken},
            fds[1]);
  ::close(fds[1]);
  try {
    std::istringstream ready(read_line(fds[0], std::chrono::seconds(20)));
    std::string word;
    ready >> word >> port_ >> control_port_;
    if (word != "READY") throw std::runtime_error("fake API server: unexpected \"" + word + "\"");
  } catch (...) {
    ::close(fds[0]);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    throw;
  }
  ::close(fds[0]);
}

FakeApiServer::~FakeApiServer() {
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

ClusterConfig FakeApiServer::config(const std::string& token) const {
  ClusterConfig c;
  c.server = url();
  c.ca_pem = read_text(test_certs() / "ca.crt");
  if (!token.empty()) c.set_token(token);
  return c;
}

nlohmann::json FakeApiServer::control(const std::string& command, const nlohmann::json& args) {
  web::http::client::http_client http("http://127.0.0.1:" + std::to_string(control_port_));
  const auto body = args.is_null() ? std::string("{}") : args.dump();
  auto resp = http.request(web::http::methods::POST, "/" + command, body, "application/json").get();
  return nlohmann::json::parse(resp.extract_utf8string(true).get());
}

nlohmann::json FakeApiServer::query(const std::string& path_and_query) {
  web::http::client::http_client http("http://127.0.0.1:" + std::to_string(control_port_));
  auto resp = http.request(web::http::methods::GET, path_and_query).get();
  return nlohmann::json::parse(resp.extract_utf8string(true).get());
}

std::string FakeApiServer::push(const std::string& type, const nlohmann::json& object) {
  return control("push", {{"type", type}, {"object", object}})["resourceVersion"];
}

std::string FakeApiServer::kubeconfig() const {
  return "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
         "clusters:\n- name: test\n  cluster:\n    server: " +
         url() + "\n    certificate-authority: " + (test_certs() / "ca.crt").string() +
         "\nusers:\n- name: test\n  user:\n    token: " + kToken +
         "\ncontexts:\n- name: test\n  context: {cluster: test, user: test}\n";
}

}  // namespace palisade::k8s::testing
