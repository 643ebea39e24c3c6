#pragma once
// How to reach the Kubernetes API server: from a pod's service account (in-cluster) or from a
// kubeconfig file.

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "palisade/base/error.h"

namespace palisade::k8s {

// A kubeconfig or service-account mount that is wrong is a palisade::ConfigurationError naming
// the file, line, column and field ("kubeconfig.yaml:7:5: users[0].user.client-key-data: not
// valid base64").

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct ClusterConfig {
  std::string server;  // "https://10.96.0.1:443", no trailing slash
  std::string namespace_name = "default";
  std::string ca_pem;           // trust only these CAs; empty: the system store
  std::string client_cert_pem;  // client certificate authentication (with the key)
  std::string client_key_pem;
  bool insecure_skip_tls_verify = false;

  // Reads the service-account token, CA and namespace from `dir`, the server from
  // KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT.
  static ClusterConfig in_cluster(const std::filesystem::path& dir = kServiceAccountDir);
  // The current context, or `context` when given.
  static ClusterConfig from_kubeconfig(const std::filesystem::path& path,
                                       const std::string& context = "");

  // The token to send as "Authorization: Bearer"; empty for none. A token file is re-read when
  // it changes on disk: kubelet rotates projected (bound) service-account tokens.
  std::string bearer_token() const;
  void set_token(const std::string& token);
  void set_token_file(std::filesystem::path path);

 private:
  struct TokenSource;
  std::shared_ptr<TokenSource> token_;  // shared by copies: one cache per configured source
};

}  // namespace palisade::k8s
