#include <spdlog/spdlog.h>

#include <cstdio>

#include "internal.h"
#include "palisade/k8s/events.h"

namespace palisade::k8s {

namespace {

using nlohmann::json;
using Steady = std::chrono::steady_clock;

// Limits the API server enforces on core/v1 Events that carry an eventTime.
constexpr std::size_t kReasonLimit = 128;
constexpr std::size_t kNoteLimit = 1024;

}  // namespace

EventPublisher::EventPublisher(Client& client, EventPublisherOptions options)
    : client_(client),
      options_(std::move(options)),
      queue_(options_.queue_capacity, base::OnFull::kReject),
      overall_{options_.burst, Steady::now()} {
  thread_ = std::thread([this] { run(); });
}

EventPublisher::~EventPublisher() {
  queue_.cancel();  // what is still queued is counted as dropped (stats)
  thread_.join();
}

EventPublisher::Bucket& EventPublisher::pod_bucket(const std::string& key, Steady::time_point now) {
  auto it = pods_.find(key);
  if (it != pods_.end()) return it->second;
  // Forgetting the oldest pod's bucket at worst lets that pod burst again: bounded memory wins.
  if (pods_.size() >= options_.max_tracked_pods && !pods_order_.empty()) {
    pods_.erase(pods_order_.front());
    pods_order_.pop_front();
  }
  pods_order_.push_back(key);
  return pods_.emplace(key, Bucket{options_.pod_burst, now}).first->second;
}

bool EventPublisher::publish(const PodRef& pod, const std::string& reason,
                             const std::string& message) {
  const auto now = Steady::now();
  std::lock_guard lock(mu_);
  // Per pod first: one noisy pod must not use up the overall budget of the others.
  const std::string key = pod.uid.empty() ? pod.namespace_name + "/" + pod.name : pod.uid;
  if (!pod_bucket(key, now).take(options_.pod_rate_per_second, options_.pod_burst, now) ||
      !overall_.take(options_.rate_per_second, options_.burst, now)) {
    ++stats_.rate_limited;
    return false;
  }
  return queue_.push({pod, reason, message, std::chrono::system_clock::now()}) ==
         base::PushResult::kQueued;
}

EventStats EventPublisher::stats() const {
  EventStats out;
  {
    std::lock_guard lock(mu_);
    out = stats_;
  }
  const base::QueueStats queue = queue_.stats();
  out.dropped = queue.rejected_full + queue.rejected_closed + queue.abandoned;
  return out;
}

bool EventPublisher::flush(std::chrono::milliseconds timeout) {
  return queue_.wait_idle(Steady::now() + timeout);
}

void EventPublisher::run() {
  while (std::optional<Pending> next = queue_.pop()) {
    send(*next);
    queue_.done();
  }
}

void EventPublisher::send(const Pending& event) {
  std::uint64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    seq = ++sequence_;
  }
  // Unique per event, in the style of client-go's recorder: <pod>.<hex nanoseconds><seq>.
  const auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(event.at.time_since_epoch()).count();
  char suffix[48];
  std::snprintf(suffix, sizeof(suffix), ".%llx%llx", static_cast<unsigned long long>(nanos),
                static_cast<unsigned long long>(seq));
  const std::string stamp = internal::rfc3339(event.at);
  const json body = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"name", event.pod.name + suffix}, {"namespace", event.pod.namespace_name}}},
      {"involvedObject",
       {{"apiVersion", "v1"},
        {"kind", "Pod"},
        {"name", event.pod.name},
        {"namespace", event.pod.namespace_name},
        {"uid", event.pod.uid}}},
      {"reason", internal::truncate_utf8(event.reason, kReasonLimit)},
      {"message", internal::truncate_utf8(event.message, kNoteLimit)},
      {"type", "Warning"},
      {"action", "Detected"},
      {"source", {{"component", "palisade"}, {"host", options_.node_name}}},
      {"reportingComponent", "palisade.dev/node-agent"},
      {"reportingInstance", internal::truncate_utf8(options_.node_name, 128)},
      {"firstTimestamp", stamp},
      {"lastTimestamp", stamp},
      {"eventTime", internal::rfc3339_micro(event.at)},
      {"count", 1}};
  try {
    client_.post("/api/v1/namespaces/" + event.pod.namespace_name + "/events", body);
    std::lock_guard lock(mu_);
    ++stats_.published;
  } catch (const std::exception& e) {
    spdlog::warn("k8s: event on pod {}/{}: {}", event.pod.namespace_name, event.pod.name, e.what());
    std::lock_guard lock(mu_);
    ++stats_.errors;
  }
}

}  // namespace palisade::k8s
