// Prometheus metrics. A producer describes its counters in a Snapshot (from the same counters its
// status reports, on its own thread, about once a second) and publishes it to the Endpoint, which
// serves the last snapshot to scrapers from its own threads: a scrape never reads a counter
// while the pipeline writes it, and never slows the pipeline down.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace palisade::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Durations of an operation (a store commit, an export), in fixed buckets: plain counts, cheap
// to update on a hot path and copied into a snapshot as a Prometheus histogram.
struct LatencyHistogram {
  static constexpr std::array<double, 10> kBoundsSeconds = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                            0.025,  0.05,  0.1,    0.5,   2.5};
  std::array<uint64_t, kBoundsSeconds.size()> buckets{};  // not cumulative: one per bound
  uint64_t count = 0;
  double sum_seconds = 0;
  void observe(double seconds);
};

// One refresh's metrics. Series of one name form one family (same type and help); a label set
// given twice for a name is summed, not duplicated.
class Snapshot {
 public:
  Snapshot();
  ~Snapshot();
  Snapshot(Snapshot&&) noexcept;
  Snapshot& operator=(Snapshot&&) noexcept;

  void counter(std::string_view name, std::string_view help, double value,
               const Labels& labels = {});
  void gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  void histogram(std::string_view name, std::string_view help, const LatencyHistogram& h,
                 const Labels& labels = {});
  // The Prometheus text exposition format (what a scrape returns).
  std::string text() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

struct EndpointOptions {
  std::string address = "127.0.0.1";  // where to listen; 0.0.0.0 only when configured
  uint16_t port = 9477;
  std::string tls_certificate;  // PEM; with tls_key, the endpoint speaks HTTPS only
  std::string tls_key;
  std::string bearer_token_file;  // when set, a scrape without this token gets 401
};

// The HTTP endpoint scrapers read (/metrics). One per process.
class Endpoint {
 public:
  // Throws std::runtime_error naming the address or file when it cannot listen, or when the TLS
  // files or the token file cannot be read.
  static std::unique_ptr<Endpoint> start(const EndpointOptions& options);
  virtual ~Endpoint() = default;
  virtual void publish(Snapshot snapshot) = 0;
  virtual uint16_t port() const = 0;
  // "http://127.0.0.1:9477/metrics", for the status.
  virtual std::string url() const = 0;
};

}  // namespace palisade::metrics
