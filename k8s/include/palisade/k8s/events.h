#pragma once
// Publishes alerts as core/v1 Events on the pod they concern, so `kubectl describe pod` shows
// them. Rate-limited overall and per pod; queued and sent by a background thread; every event
// that is not sent is counted.

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "palisade/base/bounded_queue.h"
#include "palisade/base/token_bucket.h"
#include "palisade/k8s/client.h"

namespace palisade::k8s {

struct PodRef {
  std::string namespace_name;
  std::string name;
  std::string uid;
};

struct EventPublisherOptions {
  std::string node_name;       // reportingInstance and source.host
  double rate_per_second = 5;  // overall token bucket
  double burst = 20;
  double pod_rate_per_second = 0.2;  // per pod: one event per 5 s on average
  double pod_burst = 5;
  std::size_t queue_capacity = 256;
  std::size_t max_tracked_pods = 4096;  // per-pod buckets; the oldest is forgotten beyond this
};

struct EventStats {
  std::uint64_t published = 0;
  std::uint64_t rate_limited = 0;  // refused by a token bucket
  std::uint64_t dropped = 0;       // refused because the queue was full, or left at stop
  std::uint64_t errors = 0;        // the API server refused or could not be reached
};

class EventPublisher {
 public:
  EventPublisher(Client& client, EventPublisherOptions options);
  ~EventPublisher();  // stops; events still queued are counted as dropped
  EventPublisher(const EventPublisher&) = delete;
  EventPublisher& operator=(const EventPublisher&) = delete;

  // Never blocks. False when rate-limited or the queue is full (both counted).
  bool publish(const PodRef& pod, const std::string& reason, const std::string& message);
  EventStats stats() const;
  // Waits until the queue is empty and the last event has been sent (false on timeout).
  bool flush(std::chrono::milliseconds timeout);

 private:
  using Bucket = base::TokenBucket;
  struct Pending {
    PodRef pod;
    std::string reason;
    std::string message;
    std::chrono::system_clock::time_point at;
  };
  Bucket& pod_bucket(const std::string& key, std::chrono::steady_clock::time_point now);
  void run();
  void send(const Pending& event);

  Client& client_;
  const EventPublisherOptions options_;
  base::BoundedQueue<Pending> queue_;  // refuses when full: publish() never blocks
  mutable std::mutex mu_;              // the buckets and the counters
  Bucket overall_;
  std::unordered_map<std::string, Bucket> pods_;
  std::deque<std::string> pods_order_;
  EventStats stats_;
  std::uint64_t sequence_ = 0;
  std::thread thread_;
};

}  // namespace palisade::k8s
