#include "palisade/k8s/config.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

#include "internal.h"

namespace palisade::k8s {

namespace fs = std::filesystem;

// The token is either fixed or read from a file; a file is re-read when its identity (inode,
// size, modification time) changes, which covers kubelet's atomic symlink swap on rotation.
struct ClusterConfig::TokenSource {
  std::mutex mu;
  std::string token;
  fs::path file;
  struct stat seen {};
  bool loaded = false;
};

namespace {

std::optional<std::string> read_file(const fs::path& path, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error != nullptr) *error = std::strerror(errno);
    return std::nullopt;
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(first, last - first + 1));
}

bool same_identity(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

// PEM checks with OpenSSL so a bad certificate is reported with its kubeconfig field, not later
// as an obscure TLS failure.
bool is_pem_certificate(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  const bool ok = cert != nullptr;
  X509_free(cert);
  BIO_free(bio);
  return ok;
}

bool is_pem_private_key(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  const bool ok = key != nullptr;
  EVP_PKEY_free(key);
  BIO_free(bio);
  return ok;
}

// Reads a kubeconfig and reports errors as "file:line:column: field.path: what".
class KubeconfigReader {
 public:
  explicit KubeconfigReader(fs::path path) : path_(std::move(path)) {}

  ClusterConfig read(const std::string& wanted_context) {
    const YAML::Node root = load();
    std::string context_name = wanted_context;
    if (context_name.empty()) {
      const YAML::Node current = root["current-context"];
      if (!current || current.as<std::string>("").empty()) {
        fail(root, "current-context", "not set and no context was given");
      }
      context_name = current.as<std::string>();
    }
    const auto [context, context_path] = named(root, "contexts", context_name);
    const YAML::Node ctx = require_map(context, "context", context_path + ".context");
    const std::string cluster_name = scalar(ctx, "cluster", context_path + ".context.cluster");
    const std::string user_name = optional_scalar(ctx, "user", context_path + ".context.user");

    ClusterConfig config;
    const std::string ns = optional_scalar(ctx, "namespace", context_path + ".context.namespace");
    if (!ns.empty()) config.namespace_name = ns;
    read_cluster(root, cluster_name, config);
    if (!user_name.empty()) read_user(root, user_name, config);
    return config;
  }

 private:
  YAML::Node load() {
    std::string error;
    const auto text = read_file(path_, &error);
    if (!text) throw ConfigurationError(path_.string() + ": cannot read: " + error);
    try {
      YAML::Node root = YAML::Load(*text);
      if (!root.IsMap()) fail(root, "(document)", "not a kubeconfig (expected a mapping)");
      return root;
    } catch (const YAML::Exception& e) {
      throw ConfigurationError(where(e.mark) + ": " + e.msg);
    }
  }

  void read_cluster(const YAML::Node& root, const std::string& name, ClusterConfig& config) {
    const auto [entry, entry_path] = named(root, "clusters", name);
    const std::string path = entry_path + ".cluster";
    const YAML::Node cluster = require_map(entry, "cluster", path);
    config.server = scalar(cluster, "server", path + ".server");
    while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
    if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
      fail(cluster["server"], path + ".server", "must start with https:// or http://");
    }
    config.insecure_skip_tls_verify =
        boolean(cluster, "insecure-skip-tls-verify", path + ".insecure-skip-tls-verify");
    config.ca_pem = data_or_file(cluster, "certificate-authority", path);
    if (!config.ca_pem.empty() && !is_pem_certificate(config.ca_pem)) {
      fail(field_node(cluster, "certificate-authority"),
           path + "." + field_name(cluster, "certificate-authority"), "not a PEM certificate");
    }
  }

  void read_user(const YAML::Node& root, const std::string& name, ClusterConfig& config) {
    const auto [entry, entry_path] = named(root, "users", name);
    const std::string path = entry_path + ".user";
    const YAML::Node user = require_map(entry, "user", path);
    for (const char* unsupported : {"exec", "auth-provider", "username"}) {
      if (user[unsupported]) {
        fail(user[unsupported], path + "." + unsupported, "not supported by palisade");
      }
    }
    const std::string token = optional_scalar(user, "token", path + ".token");
    const std::string token_file = optional_scalar(user, "tokenFile", path + ".tokenFile");
    if (!token.empty()) {
      config.set_token(token);
    } else if (!token_file.empty()) {
      const fs::path resolved = resolve(token_file);
      std::string error;
      if (!read_file(resolved, &error)) {
        fail(user["tokenFile"], path + ".tokenFile",
             "cannot read " + resolved.string() + ": " + error);
      }
      config.set_token_file(resolved);
    }
    config.client_cert_pem = data_or_file(user, "client-certificate", path);
    config.client_key_pem = data_or_file(user, "client-key", path);
    if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
      fail(user, path, "client-certificate and client-key must be given together");
    }
    if (!config.client_cert_pem.empty() && !is_pem_certificate(config.client_cert_pem)) {
      fail(field_node(user, "client-certificate"),
           path + "." + field_name(user, "client-certificate"), "not a PEM certificate");
    }
    if (!config.client_key_pem.empty() && !is_pem_private_key(config.client_key_pem)) {
      fail(field_node(user, "client-key"), path + "." + field_name(user, "client-key"),
           "not a PEM private key");
    }
  }

  // `<field>-data` (base64) wins over `<field>` (a path relative to the kubeconfig).
  std::string data_or_file(const YAML::Node& parent, const std::string& field,
                           const std::string& path) {
    const std::string data_field = field + "-data";
    const std::string data = optional_scalar(parent, data_field, path + "." + data_field);
    if (!data.empty()) {
      auto decoded = internal::base64_decode(data);
      if (!decoded) fail(parent[data_field], path + "." + data_field, "not valid base64");
      return *decoded;
    }
    const std::string file = optional_scalar(parent, field, path + "." + field);
    if (file.empty()) return {};
    const fs::path resolved = resolve(file);
    std::string error;
    auto text = read_file(resolved, &error);
    if (!text)
      fail(parent[field], path + "." + field, "cannot read " + resolved.string() + ": " + error);
    return *text;
  }

  // The node that reported a PEM problem: the -data field if present, else the file field.
  static YAML::Node field_node(const YAML::Node& parent, const std::string& field) {
    const YAML::Node data = parent[field + "-data"];
    return data ? data : parent[field];
  }
  static std::string field_name(const YAML::Node& parent, const std::string& field) {
    return parent[field + "-data"] ? field + "-data" : field;
  }

  std::pair<YAML::Node, std::string> named(const YAML::Node& root, const std::string& list,
                                           const std::string& name) {
    const YAML::Node items = root[list];
    if (!items || !items.IsSequence()) fail(items ? items : root, list, "missing or not a list");
    for (std::size_t i = 0; i < items.size(); ++i) {
      const YAML::Node item = items[i];
      if (item.IsMap() && item["name"] && item["name"].as<std::string>("") == name) {
        return {item, list + "[" + std::to_string(i) + "]"};
      }
    }
    fail(items, list, "no entry named \"" + name + "\"");
  }

  YAML::Node require_map(const YAML::Node& parent, const std::string& key,
                         const std::string& path) {
    const YAML::Node node = parent[key];
    if (!node) fail(parent, path, "required");
    if (!node.IsMap()) fail(node, path, "must be a mapping");
    return node;
  }

  std::string scalar(const YAML::Node& parent, const std::string& key, const std::string& path) {
    std::string value = optional_scalar(parent, key, path);
    if (value.empty()) fail(parent[key] ? parent[key] : parent, path, "required");
    return value;
  }

  std::string optional_scalar(const YAML::Node& parent, const std::string& key,
                              const std::string& path) {
    const YAML::Node node = parent[key];
    if (!node || node.IsNull()) return {};
    if (!node.IsScalar()) fail(node, path, "must be a string");
    return node.as<std::string>();
  }

  bool boolean(const YAML::Node& parent, const std::string& key, const std::string& path) {
    const YAML::Node node = parent[key];
    if (!node || node.IsNull()) return false;
    try {
      return node.as<bool>();
    } catch (const YAML::Exception&) {
      fail(node, path, "must be true or false");
    }
  }

  fs::path resolve(const std::string& file) const {
    const fs::path p(file);
    return p.is_absolute() ? p : path_.parent_path() / p;
  }

  std::string where(const YAML::Mark& mark) const {
    if (mark.is_null()) return path_.string();
    return path_.string() + ":" + std::to_string(mark.line + 1) + ":" +
           std::to_string(mark.column + 1);
  }

  [[noreturn]] void fail(const YAML::Node& node, const std::string& field,
                         const std::string& what) const {
    throw ConfigurationError(where(node.Mark()) + ": " + field + ": " + what);
  }

  fs::path path_;
};

std::string service_host() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    throw ConfigurationError(
        "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not running in a pod");
  }
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // an IPv6 literal
  return "https://" + h + ":" + port;
}

}  // namespace

ClusterConfig ClusterConfig::in_cluster(const fs::path& dir) {
  ClusterConfig config;
  config.server = service_host();
  const fs::path token = dir / "token";
  std::string error;
  if (!read_file(token, &error)) {
    throw ConfigurationError(token.string() + ": cannot read the service-account token: " + error);
  }
  config.set_token_file(token);
  if (auto ca = read_file(dir / "ca.crt", nullptr)) {
    if (!is_pem_certificate(*ca)) {
      throw ConfigurationError((dir / "ca.crt").string() + ": not a PEM certificate");
    }
    config.ca_pem = std::move(*ca);
  }
  if (auto ns = read_file(dir / "namespace", nullptr); ns && !trim(*ns).empty()) {
    config.namespace_name = trim(*ns);
  }
  return config;
}

ClusterConfig ClusterConfig::from_kubeconfig(const fs::path& path, const std::string& context) {
  return KubeconfigReader(path).read(context);
}

void ClusterConfig::set_token(const std::string& token) {
  token_ = std::make_shared<TokenSource>();
  token_->token = trim(token);
  token_->loaded = true;
}

void ClusterConfig::set_token_file(fs::path path) {
  token_ = std::make_shared<TokenSource>();
  token_->file = std::move(path);
}

std::string ClusterConfig::bearer_token() const {
  if (!token_) return {};
  std::lock_guard lock(token_->mu);
  if (token_->file.empty()) return token_->token;
  struct stat now {};
  if (::stat(token_->file.c_str(), &now) != 0) return token_->token;  // keep the last one
  if (!token_->loaded || !same_identity(now, token_->seen)) {
    if (auto text = read_file(token_->file, nullptr)) {
      token_->token = trim(*text);
      token_->seen = now;
      token_->loaded = true;
    }
  }
  return token_->token;
}

}  // namespace palisade::k8s
