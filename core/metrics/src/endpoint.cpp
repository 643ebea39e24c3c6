// The metrics endpoint on cpprestsdk's HTTP listener (Boost.Asio; HTTPS through its OpenSSL
// context). Not civetweb, which prometheus-cpp's own exposer uses: Debian 12's civetweb loads
// OpenSSL 1.1 names from OpenSSL 3 at run time and crashes on the first TLS request.
#include <cpprest/http_listener.h>
#include <openssl/crypto.h>
#include <prometheus/text_serializer.h>

#include <boost/asio/ssl.hpp>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "palisade/metrics/metrics.h"
#include "snapshot_impl.h"

namespace palisade::metrics {
namespace {

namespace http = web::http;
namespace listener = web::http::experimental::listener;

std::string read_token(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("metrics: cannot read the bearer token file " + path);
  std::string token;
  std::getline(in, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty())
    throw std::runtime_error("metrics: the bearer token file " + path + " is empty");
  return token;
}

// Compared in constant time: the token is a secret, its prefix must not leak through timing.
bool token_matches(const http::http_headers& headers, const std::string& token) {
  constexpr std::string_view kScheme = "Bearer ";
  const auto header = headers.find(http::header_names::authorization);
  if (header == headers.end()) return false;
  const std::string& given = header->second;
  if (given.size() != kScheme.size() + token.size() ||
      given.compare(0, kScheme.size(), kScheme) != 0)
    return false;
  return CRYPTO_memcmp(given.data() + kScheme.size(), token.data(), token.size()) == 0;
}

class ListenerEndpoint : public Endpoint {
 public:
  explicit ListenerEndpoint(const EndpointOptions& options)
      : tls_(!options.tls_certificate.empty()),
        address_(options.address),
        port_(options.port),
        token_(options.bearer_token_file.empty() ? "" : read_token(options.bearer_token_file)) {
    listener::http_listener_config config;
    config.set_timeout(std::chrono::seconds(10));
    if (tls_) {
      config.set_ssl_context_callback([certificate = options.tls_certificate,
                                       key = options.tls_key](boost::asio::ssl::context& context) {
        namespace ssl = boost::asio::ssl;
        context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                            ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                            ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
        context.use_certificate_chain_file(certificate);
        context.use_private_key_file(key, ssl::context::pem);
      });
    }
    listener_ = std::make_unique<listener::http_listener>(url(), config);
    listener_->support([this](const http::http_request& request) { answer(request); });
    try {
      listener_->open().wait();
    } catch (const std::exception& e) {
      throw std::runtime_error("metrics: cannot listen on " + address_ + ":" +
                               std::to_string(port_) + ": " + e.what());
    }
  }
  ~ListenerEndpoint() override {
    try {
      listener_->close().wait();
    } catch (const std::exception&) {
    }
  }
  ListenerEndpoint(const ListenerEndpoint&) = delete;
  ListenerEndpoint& operator=(const ListenerEndpoint&) = delete;

  void publish(Snapshot snapshot) override {
    std::ostringstream text;
    prometheus::TextSerializer().Serialize(text, snapshot.impl().families);
    std::lock_guard lock(mutex_);
    text_ = text.str();
  }
  uint16_t port() const override { return port_; }
  std::string url() const override {
    const std::string host =
        address_.find(':') != std::string::npos ? "[" + address_ + "]" : address_;
    return std::string(tls_ ? "https" : "http") + "://" + host + ":" + std::to_string(port_) +
           "/metrics";
  }

 private:
  void answer(const http::http_request& request) const {
    if (!token_.empty() && !token_matches(request.headers(), token_)) {
      http::http_response refused(http::status_codes::Unauthorized);
      refused.headers().add(http::header_names::www_authenticate, "Bearer realm=\"palisade\"");
      request.reply(refused).wait();
      return;
    }
    if (request.method() != http::methods::GET) {
      request.reply(http::status_codes::MethodNotAllowed).wait();
      return;
    }
    std::string body;
    {
      std::lock_guard lock(mutex_);
      body = text_;
    }
    request.reply(http::status_codes::OK, body, "text/plain; version=0.0.4; charset=utf-8").wait();
  }

  bool tls_;
  std::string address_;
  uint16_t port_;
  std::string token_;  // "" = no authentication
  mutable std::mutex mutex_;
  std::string text_;  // the last snapshot, serialized once per refresh rather than per scrape
  std::unique_ptr<listener::http_listener> listener_;
};

}  // namespace

std::unique_ptr<Endpoint> Endpoint::start(const EndpointOptions& options) {
  if (options.port == 0) throw std::runtime_error("metrics: port must be between 1 and 65535");
  if (options.tls_certificate.empty() != options.tls_key.empty()) {
    throw std::runtime_error("metrics: TLS needs both tls_certificate and tls_key");
  }
  for (const std::string* file : {&options.tls_certificate, &options.tls_key}) {
    if (!file->empty() && !std::ifstream(*file)) {
      throw std::runtime_error("metrics: cannot read " + *file);
    }
  }
  return std::make_unique<ListenerEndpoint>(options);
}

}  // namespace palisade::metrics
