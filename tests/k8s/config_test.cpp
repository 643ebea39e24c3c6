// ClusterConfig: in-cluster from a service-account directory and the environment; kubeconfig
// with tokens and client certificates; errors that name file, line, column and field.

#include "palisade/k8s/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <regex>

#include "fake_apiserver.h"
#include "palisade/k8s/client.h"

namespace palisade::k8s {
namespace {

namespace fs = std::filesystem;
using testing::FakeApiServer;
using testing::read_text;
using testing::TempDir;
using testing::test_certs;

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string base64(const std::string& data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(data[i]) << 16) |
                       (static_cast<unsigned char>(data[i + 1]) << 8) |
                       static_cast<unsigned char>(data[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < data.size()) {
    unsigned v = static_cast<unsigned char>(data[i]) << 16;
    if (i + 1 < data.size()) v |= static_cast<unsigned char>(data[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

// Sets environment variables for one test and restores them after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string expect_config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigurationError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigurationError";
  return {};
}

TEST(InClusterConfig, ReadsServiceAccountDirectoryAndEnvironment) {
  TempDir sa;
  write(sa.path() / "token", "token-one\n");
  write(sa.path() / "ca.crt", read_text(test_certs() / "ca.crt"));
  write(sa.path() / "namespace", "shop");
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");

  const ClusterConfig c = ClusterConfig::in_cluster(sa.path());
  EXPECT_EQ(c.server, "https://10.96.0.1:443");
  EXPECT_EQ(c.namespace_name, "shop");
  EXPECT_EQ(c.ca_pem, read_text(test_certs() / "ca.crt"));
  EXPECT_EQ(c.bearer_token(), "token-one");
}

TEST(InClusterConfig, RereadsTheTokenWhenKubeletRotatesIt) {
  TempDir sa;
  write(sa.path() / "token", "token-one");
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  const ClusterConfig c = ClusterConfig::in_cluster(sa.path());
  ASSERT_EQ(c.bearer_token(), "token-one");
  // kubelet writes a new file and swaps it in atomically.
  write(sa.path() / "token.new", "token-two");
  fs::rename(sa.path() / "token.new", sa.path() / "token");
  EXPECT_EQ(c.bearer_token(), "token-two");
  // NOLINTNEXTLINE(performance-unnecessary-copy-initialization): the copy is what is tested
  const ClusterConfig copy = c;  // copies share the source
  EXPECT_EQ(copy.bearer_token(), "token-two");
}

TEST(InClusterConfig, BracketsAnIpv6ServiceHost) {
  TempDir sa;
  write(sa.path() / "token", "t");
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "fd00:10:96::1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "6443");
  EXPECT_EQ(ClusterConfig::in_cluster(sa.path()).server, "https://[fd00:10:96::1]:6443");
}

TEST(InClusterConfig, ErrorsNameTheMissingPieces) {
  TempDir sa;
  {
    ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
    const auto msg = expect_config_error([&] { ClusterConfig::in_cluster(sa.path()); });
    EXPECT_NE(msg.find((sa.path() / "token").string()), std::string::npos) << msg;
  }
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  write(sa.path() / "token", "t");
  const auto msg = expect_config_error([&] { ClusterConfig::in_cluster(sa.path()); });
  EXPECT_NE(msg.find("KUBERNETES_SERVICE_HOST"), std::string::npos) << msg;
}

TEST(InClusterConfig, ReachesTheApiServerWithTheServiceAccount) {
  FakeApiServer server;
  TempDir sa;
  write(sa.path() / "token", FakeApiServer::kToken);
  write(sa.path() / "ca.crt", read_text(test_certs() / "ca.crt"));
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "127.0.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", std::to_string(server.port()));
  Client client(ClusterConfig::in_cluster(sa.path()));
  EXPECT_EQ(client.get("/api/v1/namespaces/shop/pods")["kind"], "PodList");
}

const char* kKubeconfigWithToken = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: SERVER/
    certificate-authority: pki/ca.crt
contexts:
- name: dev
  context:
    cluster: dev-cluster
    user: dev-user
    namespace: shop
users:
- name: dev-user
  user:
    token: test-token
)";

std::string with_server(const std::string& text, const std::string& server) {
  return std::regex_replace(text, std::regex("SERVER"), server);
}

TEST(Kubeconfig, TokenAndCertificateAuthorityFileRelativeToTheKubeconfig) {
  FakeApiServer server;
  TempDir dir;
  write(dir.path() / "pki" / "ca.crt", read_text(test_certs() / "ca.crt"));
  write(dir.path() / "kubeconfig.yaml", with_server(kKubeconfigWithToken, server.url()));

  const ClusterConfig c = ClusterConfig::from_kubeconfig(dir.path() / "kubeconfig.yaml");
  EXPECT_EQ(c.server, server.url());  // trailing slash dropped
  EXPECT_EQ(c.namespace_name, "shop");
  EXPECT_EQ(c.bearer_token(), "test-token");
  Client client(c);
  EXPECT_EQ(client.get("/api/v1/pods")["kind"], "PodList");
}

TEST(Kubeconfig, ClientCertificateAsDataInANamedContext) {
  FakeApiServer server;
  TempDir dir;
  const std::string text = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: test
  cluster:
    server: )" + server.url() +
                           R"(
    certificate-authority-data: )" +
                           base64(read_text(test_certs() / "ca.crt")) +
                           R"(
contexts:
- name: dev
  context: {cluster: missing, user: nobody}
- name: node
  context: {cluster: test, user: node-a}
users:
- name: node-a
  user:
    client-certificate-data: )" +
                           base64(read_text(test_certs() / "client.crt")) +
                           R"(
    client-key-data: )" + base64(read_text(test_certs() / "client.key")) +
                           "\n";
  write(dir.path() / "kubeconfig.yaml", text);

  const ClusterConfig c = ClusterConfig::from_kubeconfig(dir.path() / "kubeconfig.yaml", "node");
  EXPECT_EQ(c.bearer_token(), "");
  EXPECT_EQ(c.client_cert_pem, read_text(test_certs() / "client.crt"));
  Client client(c);
  EXPECT_EQ(client.get("/api/v1/pods")["kind"], "PodList");
  EXPECT_TRUE(server.requests().back()["client_cert"].get<bool>());
}

TEST(Kubeconfig, ClientCertificateFilesAndTokenFile) {
  FakeApiServer server;
  TempDir dir;
  fs::copy_file(test_certs() / "client.crt", dir.path() / "client.crt");
  fs::copy_file(test_certs() / "client.key", dir.path() / "client.key");
  write(dir.path() / "token", "from-a-file\n");
  write(dir.path() / "ca.crt", read_text(test_certs() / "ca.crt"));
  write(dir.path() / "config", "clusters:\n- name: c\n  cluster:\n    server: " + server.url() +
                                   "\n    certificate-authority: " +
                                   (dir.path() / "ca.crt").string() +  // absolute works too
                                   "\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                                   "current-context: x\nusers:\n- name: u\n  user:\n"
                                   "    client-certificate: client.crt\n"
                                   "    client-key: client.key\n"
                                   "    tokenFile: token\n");
  const ClusterConfig c = ClusterConfig::from_kubeconfig(dir.path() / "config");
  EXPECT_EQ(c.bearer_token(), "from-a-file");
  EXPECT_EQ(c.client_key_pem, read_text(test_certs() / "client.key"));
  Client client(c);
  EXPECT_EQ(client.get("/api/v1/pods")["kind"], "PodList");
}

TEST(Kubeconfig, ErrorsNameFileLineColumnAndField) {
  TempDir dir;
  const fs::path path = dir.path() / "kubeconfig.yaml";
  const std::string head =
      "apiVersion: v1\n"                          // 1
      "kind: Config\n"                            // 2
      "current-context: test\n"                   // 3
      "clusters:\n"                               // 4
      "- name: test\n"                            // 5
      "  cluster:\n"                              // 6
      "    server: https://127.0.0.1:6443\n"      // 7
      "contexts:\n"                               // 8
      "- name: test\n"                            // 9
      "  context: {cluster: test, user: test}\n"  // 10
      "users:\n"                                  // 11
      "- name: test\n"                            // 12
      "  user:\n";                                // 13
  write(path, head + "    client-certificate-data: " +
                  base64(read_text(test_certs() / "client.crt")) + "\n" +  // 14
                  "    client-key-data: \"not*base64\"\n");                // 15
  EXPECT_EQ(expect_config_error([&] { ClusterConfig::from_kubeconfig(path); }),
            path.string() + ":15:22: users[0].user.client-key-data: not valid base64");

  write(path, head + "    client-certificate: missing.crt\n    client-key: missing.key\n");
  auto msg = expect_config_error([&] { ClusterConfig::from_kubeconfig(path); });
  EXPECT_EQ(msg.rfind(path.string() + ":14:25: users[0].user.client-certificate: cannot read " +
                          (dir.path() / "missing.crt").string(),
                      0),
            0u)
      << msg;

  write(path, head + "    token: t\n");
  msg = expect_config_error([&] { ClusterConfig::from_kubeconfig(path, "prod"); });
  EXPECT_TRUE(std::regex_search(msg, std::regex(":\\d+:\\d+: contexts: no entry named \"prod\"$")))
      << msg;

  write(path, std::regex_replace(head, std::regex("    server: .*\n"),
                                 "    insecure-skip-tls-verify: maybe\n"));
  msg = expect_config_error([&] { ClusterConfig::from_kubeconfig(path); });
  EXPECT_EQ(msg, path.string() + ":7:5: clusters[0].cluster.server: required") << msg;

  write(path, "clusters: [\n");
  msg = expect_config_error([&] { ClusterConfig::from_kubeconfig(path); });
  EXPECT_TRUE(std::regex_search(msg, std::regex("^" + path.string() + ":\\d+:\\d+: "))) << msg;

  msg = expect_config_error([&] { ClusterConfig::from_kubeconfig(dir.path() / "absent"); });
  EXPECT_NE(msg.find("absent: cannot read"), std::string::npos) << msg;
}

}  // namespace
}  // namespace palisade::k8s
