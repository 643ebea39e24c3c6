#include <spdlog/spdlog.h>

#include "internal.h"
#include "palisade/k8s/policy_resources.h"

namespace palisade::k8s {

namespace {

using nlohmann::json;

constexpr const char* kNamespacedPath = "/apis/palisade.dev/v1/palisadepolicies";
constexpr const char* kClusterPath = "/apis/palisade.dev/v1/clusterpalisadepolicies";
constexpr std::size_t kMaxErrors = 20;
constexpr std::size_t kMaxErrorBytes = 512;

std::string key_of(const std::string& kind, const std::string& ns, const std::string& name) {
  return kind + "/" + ns + "/" + name;
}

ReflectorOptions options_for(const PolicyWatcherOptions& o, const char* path) {
  ReflectorOptions r;
  r.path = path;
  r.watch_timeout = o.watch_timeout;
  r.backoff_min = o.backoff_min;
  r.backoff_max = o.backoff_max;
  r.max_objects = o.max_resources;
  return r;
}

std::string status_path(const PolicyResource& r) {
  if (r.namespace_name.empty()) return std::string(kClusterPath) + "/" + r.name + "/status";
  return "/apis/palisade.dev/v1/namespaces/" + r.namespace_name + "/palisadepolicies/" + r.name +
         "/status";
}

}  // namespace

// Adapts one reflector to the watcher's shared map.
class PolicyWatcher::Sink : public ReflectorSink {
 public:
  explicit Sink(PolicyWatcher& owner) : owner_(owner) {}
  void upsert(const json& object) override {
    PolicyResource r = policy_resource_from_json(object);
    std::lock_guard lock(owner_.mu_);
    owner_.resources_[key_of(r.kind, r.namespace_name, r.name)] = std::move(r);
  }
  void remove(const ObjectRef& ref) override {
    std::lock_guard lock(owner_.mu_);
    for (auto it = owner_.resources_.begin(); it != owner_.resources_.end(); ++it) {
      if (it->second.uid == ref.uid) {
        owner_.resources_.erase(it);
        return;
      }
    }
  }
  void committed() override { owner_.publish_if_changed(); }

 private:
  PolicyWatcher& owner_;
};

PolicyWatcher::PolicyWatcher(Client& client, Callback callback, PolicyWatcherOptions options)
    : client_(client),
      callback_(std::move(callback)),
      namespaced_sink_(std::make_unique<Sink>(*this)),
      cluster_sink_(std::make_unique<Sink>(*this)),
      namespaced_(std::make_unique<Reflector>(client, options_for(options, kNamespacedPath),
                                              *namespaced_sink_)),
      cluster_(std::make_unique<Reflector>(client, options_for(options, kClusterPath),
                                           *cluster_sink_)) {}

PolicyWatcher::~PolicyWatcher() {
  stop();
}

void PolicyWatcher::start() {
  namespaced_->start();
  cluster_->start();
}

void PolicyWatcher::stop() {
  namespaced_->stop();
  cluster_->stop();
}

bool PolicyWatcher::wait_for_sync(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!namespaced_->wait_for_sync(timeout)) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return cluster_->wait_for_sync(std::max(left, std::chrono::milliseconds(0)));
}

ReflectorStats PolicyWatcher::stats(bool cluster_scoped) const {
  return cluster_scoped ? cluster_->stats() : namespaced_->stats();
}

std::vector<PolicyResource> PolicyWatcher::current() const {
  std::lock_guard lock(mu_);
  std::vector<PolicyResource> out;
  for (const auto& [key, r] : resources_) out.push_back(r);
  return out;
}

// Publishes when the set of (uid, generation) differs from the last published one: additions,
// deletions and spec changes; status and metadata-only updates are not policy changes.
void PolicyWatcher::publish_if_changed() {
  // Nothing until both kinds are listed: a set without the cluster-wide policies would briefly
  // weaken the node's policy.
  if (!namespaced_->wait_for_sync(std::chrono::milliseconds(0)) ||
      !cluster_->wait_for_sync(std::chrono::milliseconds(0))) {
    return;
  }
  std::lock_guard serial(callback_mu_);
  std::vector<PolicyResource> set;
  {
    std::lock_guard lock(mu_);
    std::map<std::string, std::int64_t> now;
    for (const auto& [key, r] : resources_) now[r.uid] = r.generation;
    if (published_once_ && now == published_) return;
    published_ = std::move(now);
    published_once_ = true;
    for (const auto& [key, r] : resources_) set.push_back(r);
  }
  if (callback_) callback_(set);
}

void PolicyWatcher::report_status(const PolicyResource& resource,
                                  const PolicyStatusReport& report) {
  std::vector<std::string> errors;
  for (std::size_t i = 0; i < report.errors.size() && i < kMaxErrors; ++i) {
    errors.push_back(internal::truncate_utf8(report.errors[i], kMaxErrorBytes));
  }
  std::string message = report.accepted ? "policy documents loaded" : "";
  for (const auto& e : errors) message += (message.empty() ? "" : "; ") + e;
  if (report.errors.size() > kMaxErrors) {
    message += "; and " + std::to_string(report.errors.size() - kMaxErrors) + " more";
  }
  const std::string now = internal::rfc3339(std::chrono::system_clock::now());
  std::string transition = now;
  {
    // lastTransitionTime moves only when Accepted flips (as far as this node knows).
    std::lock_guard lock(mu_);
    if (transitions_.size() > 4 * resources_.size() + 64) transitions_.clear();  // bounded
    auto& [accepted, at] = transitions_[resource.uid];
    if (!at.empty() && accepted == report.accepted) transition = at;
    transitions_[resource.uid] = {report.accepted, transition};
  }
  json node = {{"accepted", report.accepted},
               {"observedGeneration", resource.generation},
               {"policyDigest", report.policy_digest},
               {"errors", errors},
               {"lastUpdateTime", now}};
  json status = {
      {"observedGeneration", resource.generation},
      {"conditions", json::array({{{"type", "Accepted"},
                                   {"status", report.accepted ? "True" : "False"},
                                   {"reason", report.accepted ? "Accepted" : "InvalidPolicy"},
                                   {"message", internal::truncate_utf8(message, 4096)},
                                   {"lastTransitionTime", transition},
                                   {"observedGeneration", resource.generation}}})}};
  if (!report.node_name.empty()) status["nodes"] = {{report.node_name, node}};
  client_.patch(status_path(resource), {{"status", status}}, kMergePatch);
}

}  // namespace palisade::k8s
