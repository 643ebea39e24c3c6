#pragma once
// Runs tests/k8s/fake_apiserver.py as a child process for one test and drives it through its
// control port.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "palisade/k8s/config.h"

namespace palisade::k8s::testing {

// CA, server and client certificates made once per test process (openssl CLI, via python).
const std::filesystem::path& test_certs();
std::string read_text(const std::filesystem::path& path);
nlohmann::json fixture(const std::string& name);  // tests/k8s/fixtures/<name>
// The `index`-th item of a fixture list, with the kind and apiVersion a watch event carries.
nlohmann::json fixture_item(const std::string& list, std::size_t index);

// Polls `done` every 10 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& done,
                std::chrono::milliseconds timeout = std::chrono::milliseconds(8000));

// A unique temporary directory, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class FakeApiServer {
 public:
  static constexpr const char* kToken = "test-token";
  FakeApiServer();
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  // Trusts the test CA and sends `token` (none when empty).
  ClusterConfig config(const std::string& token = kToken) const;
  // A kubeconfig that reaches this server with the test CA and token (for the agent binary).
  std::string kubeconfig() const;

  nlohmann::json control(const std::string& command, const nlohmann::json& args = {});
  nlohmann::json query(const std::string& path_and_query);
  nlohmann::json requests() { return query("/requests"); }
  // Applies a watch event (type ADDED/MODIFIED/DELETED) to the server's state.
  std::string push(const std::string& type, const nlohmann::json& object);

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int control_port_ = 0;
};

}  // namespace palisade::k8s::testing
