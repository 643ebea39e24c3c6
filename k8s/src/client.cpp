#include "palisade/k8s/client.h"

#include <cpprest/http_client.h>
#include <cpprest/uri.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl.hpp>
#include <optional>
#include <vector>

#ifndef PALISADE_VERSION
#define PALISADE_VERSION "0.0.0"
#endif

namespace palisade::k8s {

namespace http = web::http;

ApiError::ApiError(int status, std::string reason, const std::string& message)
    : EnvironmentError("HTTP " + std::to_string(status) + (reason.empty() ? "" : " " + reason) +
                       (message.empty() ? "" : ": " + message)),
      status_(status),
      reason_(std::move(reason)) {}

namespace {

// Replaces the context's trust store (cpprestsdk preloads the system paths) with exactly the
// configured CAs, so a cluster CA bundle is the only thing trusted.
void trust_only(boost::asio::ssl::context& ctx, const std::string& ca_pem) {
  X509_STORE* store = X509_STORE_new();
  BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
  }
  ERR_clear_error();  // the loop ends on a "no start line" error: expected
  BIO_free(bio);
  SSL_CTX_set_cert_store(ctx.native_handle(), store);  // takes ownership
}

void configure_tls(boost::asio::ssl::context& ctx, const ClusterConfig& config) {
  ctx.set_options(boost::asio::ssl::context::no_sslv2 | boost::asio::ssl::context::no_sslv3 |
                  boost::asio::ssl::context::no_tlsv1 | boost::asio::ssl::context::no_tlsv1_1);
  if (!config.ca_pem.empty()) trust_only(ctx, config.ca_pem);
  if (!config.client_cert_pem.empty()) {
    ctx.use_certificate_chain(
        boost::asio::buffer(config.client_cert_pem.data(), config.client_cert_pem.size()));
    ctx.use_private_key(
        boost::asio::buffer(config.client_key_pem.data(), config.client_key_pem.size()),
        boost::asio::ssl::context::pem);
  }
}

// The reason and message of a Status body, or the raw text when it is not one.
ApiError error_from(int status, const std::string& body) {
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_object() && json.value("kind", "") == "Status") {
    return ApiError(status, json.value("reason", ""), json.value("message", ""));
  }
  return ApiError(status, "", body.substr(0, 256));
}

}  // namespace

struct Client::Impl {
  ClusterConfig config;
  ClientOptions options;
  web::uri base;
  std::optional<http::client::http_client> rest;

  http::client::http_client_config http_config(std::chrono::milliseconds timeout) const {
    http::client::http_client_config c;
    c.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    c.set_validate_certificates(!config.insecure_skip_tls_verify);
    c.set_max_redirects(0);  // never carry the bearer token to another host
    const ClusterConfig* cfg = &config;
    c.set_ssl_context_callback([cfg](boost::asio::ssl::context& ctx) { configure_tls(ctx, *cfg); });
    return c;
  }

  http::http_request make_request(const http::method& method, const std::string& target) const {
    http::http_request req(method);
    req.set_request_uri(target);
    auto& h = req.headers();
    h.add(http::header_names::accept, "application/json");
    h.add(http::header_names::user_agent, "palisade/" PALISADE_VERSION);
    if (const std::string token = config.bearer_token(); !token.empty()) {
      h.add(http::header_names::authorization, "Bearer " + token);
    }
    return req;
  }

  nlohmann::json call(const http::http_request& req) {
    const std::string what = req.method() + " " + req.request_uri().to_string();
    http::http_response resp;
    std::string body;
    try {
      resp = rest->request(req).get();
      body = resp.extract_utf8string(true).get();
    } catch (const std::exception& e) {
      throw TransportError(what + ": " + e.what());
    }
    const int status = resp.status_code();
    if (status < 200 || status >= 300) throw error_from(status, body);
    if (body.empty()) return nullptr;
    auto json = nlohmann::json::parse(body, nullptr, false);
    if (json.is_discarded()) throw TransportError(what + ": the answer is not JSON");
    return json;
  }
};

Client::Client(ClusterConfig config, ClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->options = options;
  try {
    impl_->base = web::uri(impl_->config.server);
  } catch (const std::exception& e) {
    throw ConfigurationError("server \"" + impl_->config.server + "\": " + e.what());
  }
  impl_->rest.emplace(impl_->base, impl_->http_config(options.request_timeout));
}

Client::~Client() = default;

const ClusterConfig& Client::config() const {
  return impl_->config;
}

nlohmann::json Client::get(const std::string& target) {
  return impl_->call(impl_->make_request(http::methods::GET, target));
}

nlohmann::json Client::post(const std::string& target, const nlohmann::json& body) {
  auto req = impl_->make_request(http::methods::POST, target);
  req.set_body(body.dump(), "application/json");
  return impl_->call(req);
}

nlohmann::json Client::patch(const std::string& target, const nlohmann::json& body,
                             const std::string& content_type) {
  auto req = impl_->make_request(http::methods::PATCH, target);
  req.set_body(body.dump(), content_type);
  return impl_->call(req);
}

StreamEnd Client::stream_lines(const std::string& target, std::chrono::milliseconds idle_timeout,
                               const std::stop_token& stop,
                               const std::function<bool(std::string_view line)>& on_line,
                               const std::function<void()>& on_open) {
  // Its own http_client: the idle timeout differs from the REST one, and a dropped watch
  // connection must not be handed back to the REST connection pool.
  http::client::http_client watch_client(impl_->base, impl_->http_config(idle_timeout));
  pplx::cancellation_token_source cancel;
  std::stop_callback on_stop(stop, [&cancel] { cancel.cancel(); });
  const std::string what = "GET " + target;
  try {
    auto resp =
        watch_client.request(impl_->make_request(http::methods::GET, target), cancel.get_token())
            .get();
    if (resp.status_code() != http::status_codes::OK) {
      throw error_from(resp.status_code(), resp.extract_utf8string(true).get());
    }
    if (on_open) on_open();
    auto body = resp.body().streambuf();
    std::string line;
    std::vector<char> chunk(size_t{16} * 1024);
    for (;;) {
      // Block for one byte, then take whatever else has already arrived: the buffer only
      // completes larger reads once that many bytes are there.
      const auto first = body.bumpc().get();
      if (first == std::char_traits<char>::eof()) return StreamEnd::kServerClosed;
      chunk[0] = static_cast<char>(first);
      const std::size_t more = std::min(body.in_avail(), chunk.size() - 1);
      const std::size_t n =
          1 + (more > 0 ? body.getn(reinterpret_cast<uint8_t*>(&chunk[1]), more).get() : 0);
      for (std::size_t i = 0; i < n; ++i) {
        if (chunk[i] != '\n') {
          line.push_back(chunk[i]);
          if (line.size() > impl_->options.max_line_bytes) {
            cancel.cancel();
            throw TransportError(what + ": a line longer than " +
                                 std::to_string(impl_->options.max_line_bytes) + " bytes");
          }
          continue;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty() && !on_line(line)) {
          cancel.cancel();
          return StreamEnd::kAbandoned;
        }
        line.clear();
      }
    }
  } catch (const ApiError&) {
    throw;
  } catch (const TransportError&) {
    throw;
  } catch (const std::exception& e) {
    if (stop.stop_requested()) return StreamEnd::kStopped;
    throw TransportError(what + ": " + e.what());
  }
}

std::string query_escape(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xF]);
    }
  }
  return out;
}

}  // namespace palisade::k8s
