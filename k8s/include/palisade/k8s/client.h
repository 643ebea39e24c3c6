#pragma once
// A small REST client for the Kubernetes API: JSON GET/POST/PATCH and a line-by-line streaming
// read for watches. Every request carries the bearer token, "Accept: application/json" and
// "User-Agent: palisade/<version>".

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>

#include "palisade/base/error.h"
#include "palisade/k8s/config.h"

namespace palisade::k8s {

// The server answered with an error status; reason and message come from its Status object.
class ApiError : public EnvironmentError {
 public:
  ApiError(int status, std::string reason, const std::string& message);
  int status() const { return status_; }
  const std::string& reason() const { return reason_; }

 private:
  int status_;
  std::string reason_;
};

// No answer: connection refused or dropped, TLS failure, timeout.
class TransportError : public EnvironmentError {
 public:
  using EnvironmentError::EnvironmentError;
};

inline constexpr const char* kMergePatch = "application/merge-patch+json";

struct ClientOptions {
  std::chrono::milliseconds request_timeout{30'000};
  std::size_t max_line_bytes = 16u << 20;  // one watch event; longer is a protocol error
};

enum class StreamEnd {
  kServerClosed,  // the server ended the response (e.g. the watch's timeoutSeconds passed)
  kStopped,       // the stop token was triggered
  kAbandoned,     // the line callback returned false
};

class Client {
 public:
  explicit Client(ClusterConfig config, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // `target` is a path with its query ("/api/v1/pods?limit=500"). Non-2xx throws ApiError.
  nlohmann::json get(const std::string& target);
  nlohmann::json post(const std::string& target, const nlohmann::json& body);
  nlohmann::json patch(const std::string& target, const nlohmann::json& body,
                       const std::string& content_type = kMergePatch);

  // GETs `target` and calls `on_line` with each newline-terminated line as it arrives;
  // `on_open` once the server has accepted the request (200). The connection is dropped when
  // nothing arrives for `idle_timeout`. Throws ApiError for a non-200 answer, TransportError when
  // the connection fails (unless stopped).
  StreamEnd stream_lines(const std::string& target, std::chrono::milliseconds idle_timeout,
                         const std::stop_token& stop,
                         const std::function<bool(std::string_view line)>& on_line,
                         const std::function<void()>& on_open = {});

  const ClusterConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a query parameter value ("spec.nodeName=n1" -> "spec.nodeName%3Dn1").
std::string query_escape(std::string_view value);

}  // namespace palisade::k8s
