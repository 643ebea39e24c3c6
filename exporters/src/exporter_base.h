// What every exporter shares: the filter, the hand-off queue from the pipeline, the spool, the
// exporter's own thread, its counters (status and metrics). A destination implements how to
// connect and send what the spool holds; it acknowledges entries back to the spool.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "palisade/base/bounded_queue.h"
#include "palisade/base/token_bucket.h"
#include "palisade/exporters/exporter.h"

namespace palisade::exporters {

// What a spool record holds: where it goes, its deduplication id, the OCSF JSON.
// `payload` (OCSF JSON) without the fields at `paths`; nullopt when it is not JSON (then it
// must not leave the node unredacted).
std::optional<std::string> redacted(const std::string& payload,
                                    const std::vector<std::string>& paths);

struct Message {
  std::string subject;
  std::string uid;
  std::string payload;
  std::string encode() const;
  static Message decode(const std::string& record);
};

class QueuedExporter : public runtime::Output {
 public:
  QueuedExporter(const ExporterSettings& settings, std::shared_ptr<ocsf::Formatter> formatter);
  ~QueuedExporter() override;
  QueuedExporter(const QueuedExporter&) = delete;
  QueuedExporter& operator=(const QueuedExporter&) = delete;

  void consume(const Event& event, std::string_view ocsf) override;
  void consume_finding(std::string_view ocsf_finding, const Event& trigger) override;
  void write_record(const runtime::OutOfBandRecord& record) override;
  nlohmann::json status() const override;
  void add_metrics(metrics::Snapshot& snapshot, const std::string& name) const override;
  // Waits (a few seconds at most) until everything accepted is acknowledged; what is not stays
  // in the spool for the next start.
  void drain() override;

 protected:
  // The derived class's constructor calls start(), its destructor stop(): the thread uses its
  // members.
  void start();
  void stop();

  // On the exporter thread.
  virtual void connect() = 0;
  virtual void disconnect() = 0;
  virtual bool connected() const = 0;
  virtual void send_pending() = 0;  // send from the spool; apply acknowledgements
  virtual bool all_acknowledged() const = 0;

  const ExporterSettings& settings() const { return settings_; }
  Spool& spool() { return spool_; }
  void count_published() { published_++; }
  void count_acknowledged();
  void count_failed(size_t entries, const std::string& why);
  void set_error(std::string error);

 private:
  void run();
  void offer(std::string_view event_class, std::string uid, std::string_view payload);
  bool wants_class(std::string_view event_class) const;
  double burst() const;
  void publish_spool_stats();

  ExporterSettings settings_;
  std::shared_ptr<ocsf::Formatter> formatter_;
  std::string node_;  // the host name as one subject token
  base::BoundedQueue<std::string> queue_;
  Spool spool_;  // the exporter thread's
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> filtered_{0};
  std::mutex limit_mutex_;  // offer() may be called from the pipeline and a response thread
  base::TokenBucket bucket_;
  std::atomic<uint64_t> rate_limited_{0};
  std::atomic<uint64_t> unredactable_{0};  // payloads that were not JSON: not sent
  std::atomic<uint64_t> audit_seq_{0};
  std::atomic<uint64_t> published_{0};
  std::atomic<uint64_t> acknowledged_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<int64_t> last_acknowledged_ms_{0};
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> pending_{0};  // queued + spooled, not acknowledged
  mutable std::mutex status_mutex_;
  SpoolStats spool_stats_;
  std::string last_error_;
};

std::unique_ptr<runtime::Output> open_nats_exporter(const ExporterSettings& settings,
                                                    std::shared_ptr<ocsf::Formatter> formatter);

}  // namespace palisade::exporters
