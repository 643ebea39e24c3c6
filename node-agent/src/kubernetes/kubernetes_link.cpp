#include "kubernetes/kubernetes_link.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stop_token>
#include <thread>

#include "kubernetes/resource_policies.h"
#include "palisade/k8s/client.h"
#include "palisade/k8s/config.h"
#include "palisade/k8s/events.h"
#include "palisade/k8s/peers.h"
#include "palisade/k8s/pods.h"
#include "palisade/k8s/policy_resources.h"
#include "palisade/k8s/reflector.h"

namespace palisade::agent {

using nlohmann::json;

namespace {

std::string resource_key(const k8s::PolicyResource& r) {
  if (r.namespace_name.empty()) return "ClusterPalisadePolicy/" + r.name;
  return "PalisadePolicy/" + r.namespace_name + "/" + r.name;
}

// A namespaced resource's WorkloadPolicy may name its own namespace or none (then it gets it).
std::string confine_workload(json& doc, const std::string& ns) {
  json& selector = doc["spec"]["selector"];
  if (!selector.is_object()) selector = json::object();
  if (selector.contains("namespace")) {
    const json& given = selector["namespace"];
    const bool own = (given.is_string() && given == ns) ||
                     (given.is_array() && given.size() == 1 && given[0] == ns);
    if (!own) {
      return "a PalisadePolicy in namespace " + ns +
             " may select only its own namespace (spec.selector.namespace)";
    }
  }
  selector["namespace"] = ns;
  return {};
}

json json_from_ocsf(std::string_view text) {
  try {
    return json::parse(text);
  } catch (const json::exception&) {
    return json::object();
  }
}

}  // namespace

// The link to a real API server.
class ClusterLink final : public KubernetesLink {
 public:
  ClusterLink(const KubernetesConfig& config, std::shared_ptr<ContainerRegistry> registry,
              std::unique_ptr<k8s::Client> client, std::string source);
  ~ClusterLink() override;
  ClusterLink(const ClusterLink&) = delete;
  ClusterLink& operator=(const ClusterLink&) = delete;

  void start() override;
  void stop() override;
  std::optional<std::vector<policies::PolicySource>> take_policy_update() override;
  void report_policy_result(bool accepted, const std::vector<policies::Diagnostic>& errors,
                            const std::string& digest) override;
  void consume(const Event&, std::string_view) override {}
  void consume_finding(std::string_view ocsf_finding, const Event& trigger) override;
  nlohmann::json status() const override;
  bool peer_matches(const policies::PeerSelector& selector, uint16_t family,
                    const std::array<uint8_t, 16>& addr) const override;
  std::vector<PeerAddress> peer_addresses(const policies::PeerSelector& selector) const override;
  uint64_t peers_generation() const override;

 private:
  std::shared_ptr<const k8s::PeerSnapshot> peers() const;
  void on_resources(const std::vector<k8s::PolicyResource>& resources);

  KubernetesConfig config_;
  std::shared_ptr<ContainerRegistry> registry_;
  std::string source_;  // "in-cluster" or the kubeconfig's path
  std::unique_ptr<k8s::Client> client_;
  std::unique_ptr<k8s::PodCache> pods_;
  std::unique_ptr<k8s::PodWatcher> pod_watcher_;
  std::unique_ptr<k8s::PolicyWatcher> policy_watcher_;
  std::unique_ptr<k8s::EventPublisher> publisher_;
  std::unique_ptr<k8s::PeerDirectory> peers_;
  std::unique_ptr<k8s::Reflector> peer_reflector_;

  mutable std::mutex mutex_;
  std::vector<k8s::PolicyResource> resources_;  // the set last delivered
  std::vector<std::string> resource_errors_;    // shape errors, parallel to resources_
  std::optional<std::vector<policies::PolicySource>> pending_;
  std::vector<k8s::PolicyResource> applied_;  // the set behind the last update taken
  std::vector<std::string> applied_errors_;
  struct Report {
    std::vector<k8s::PolicyResource> resources;
    std::vector<std::string> shape_errors;
    std::vector<policies::Diagnostic> errors;
    bool accepted = false;
    std::string digest;
  };
  void report_loop(const std::stop_token& stop);
  void send_report(const Report& report);
  std::mutex report_mutex_;
  std::condition_variable_any report_wake_;
  std::optional<Report> next_report_;  // the latest result not written yet
  std::jthread reporter_;              // writes policy status; declared last, stopped first
};

ResourcePolicies policies_from_resources(const std::vector<k8s::PolicyResource>& resources,
                                         std::vector<std::string>& errors_by_resource) {
  ResourcePolicies out;
  errors_by_resource.assign(resources.size(), std::string());
  for (size_t r = 0; r < resources.size(); ++r) {
    const k8s::PolicyResource& resource = resources[r];
    std::string& errors = errors_by_resource[r];
    for (const auto& e : resource.errors) errors += (errors.empty() ? "" : "\n") + e;
    const bool namespaced = !resource.namespace_name.empty();
    for (size_t i = 0; i < resource.documents.size(); ++i) {
      json doc = resource.documents[i].to_document();
      if (namespaced && doc.value("kind", "") == "WorkloadPolicy") {
        const std::string problem = confine_workload(doc, resource.namespace_name);
        if (!problem.empty()) {
          errors +=
              (errors.empty() ? "" : "\n") + ("documents[" + std::to_string(i) + "]: " + problem);
          continue;
        }
      } else if (namespaced && doc.value("kind", "") == "DetectionRule") {
        // A scope of its own rather than text added to the condition: no condition can widen it.
        json& scope = doc["spec"]["namespaces"];
        if (!scope.is_null() && scope != json::array({resource.namespace_name})) {
          errors += (errors.empty() ? "" : "\n") +
                    ("documents[" + std::to_string(i) + "]: a PalisadePolicy in namespace " +
                     resource.namespace_name + " may scope rules only to its own namespace " +
                     "(spec.namespaces)");
          continue;
        }
        scope = json::array({resource.namespace_name});
      }
      // JSON is YAML: the engine parses it like a file, with the same errors.
      out.sources.push_back(policies::PolicySource{
          resource_key(resource) + "#documents[" + std::to_string(i) + "]", doc.dump(2)});
    }
  }
  return out;
}

std::unique_ptr<KubernetesLink> KubernetesLink::create(
    const KubernetesConfig& config, std::shared_ptr<ContainerRegistry> registry) {
  const bool in_cluster = std::getenv("KUBERNETES_SERVICE_HOST") != nullptr;
  if (config.enabled == "false") return nullptr;
  if (config.enabled == "auto" && config.kubeconfig.empty() && !in_cluster) return nullptr;
  // Configuration errors (a broken kubeconfig, a missing service-account token) stop the agent
  // at start with the file, line and field: running half-configured would hide them.
  k8s::ClusterConfig cluster = config.kubeconfig.empty() ? k8s::ClusterConfig::in_cluster()
                                                         : k8s::ClusterConfig::from_kubeconfig(
                                                               config.kubeconfig, config.context);
  auto client = std::make_unique<k8s::Client>(cluster);
  return std::unique_ptr<KubernetesLink>(
      new ClusterLink(config, std::move(registry), std::move(client),
                      config.kubeconfig.empty() ? "in-cluster" : config.kubeconfig));
}

ClusterLink::ClusterLink(const KubernetesConfig& config,
                         std::shared_ptr<ContainerRegistry> registry,
                         std::unique_ptr<k8s::Client> client, std::string source)
    : config_(config),
      registry_(std::move(registry)),
      source_(std::move(source)),
      client_(std::move(client)) {}

ClusterLink::~ClusterLink() {
  stop();
}

void ClusterLink::start() {
  pods_ = std::make_unique<k8s::PodCache>();
  pods_->set_listener([registry = registry_](k8s::PodChange change, const k8s::PodInfo& pod) {
    if (change == k8s::PodChange::kEvicted) {
      registry->forget_pod(pod.uid);
      return;
    }
    // A deleted pod keeps its identity a while: its last events are still in flight.
    registry->set_pod_identity(pod.uid, PodIdentity{pod.labels, pod.service_account,
                                                    pod.workload.kind, pod.workload.name});
  });
  k8s::PodWatcherOptions pod_options;
  pod_options.node_name = config_.node_name;
  pod_watcher_ = std::make_unique<k8s::PodWatcher>(*client_, *pods_, pod_options);
  pod_watcher_->start();
  spdlog::info("kubernetes: watching the pods of node {} ({})", pod_watcher_->node_name(), source_);
  if (config_.policies) {
    policy_watcher_ = std::make_unique<k8s::PolicyWatcher>(
        *client_, [this](const std::vector<k8s::PolicyResource>& r) { on_resources(r); });
    policy_watcher_->start();
    reporter_ = std::jthread([this](const std::stop_token& stop) { report_loop(stop); });
  }
  if (config_.peers) {
    // All pods of the cluster, for peers named by workload; bounded like every cache.
    peers_ = std::make_unique<k8s::PeerDirectory>();
    k8s::ReflectorOptions options;
    options.path = "/api/v1/pods";
    options.max_objects = 65536;
    peer_reflector_ = std::make_unique<k8s::Reflector>(*client_, options, *peers_);
    peer_reflector_->start();
  }
  if (config_.events) {
    k8s::EventPublisherOptions options;
    options.node_name = pod_watcher_->node_name();
    publisher_ = std::make_unique<k8s::EventPublisher>(*client_, options);
  }
}

void ClusterLink::stop() {
  if (reporter_.joinable()) {
    reporter_.request_stop();
    reporter_.join();
  }
  if (publisher_) publisher_->flush(std::chrono::seconds(2));
  publisher_.reset();
  if (policy_watcher_) policy_watcher_->stop();
  if (pod_watcher_) pod_watcher_->stop();
  if (peer_reflector_) peer_reflector_->stop();
}

std::shared_ptr<const k8s::PeerSnapshot> ClusterLink::peers() const {
  return peers_ ? peers_->snapshot() : nullptr;
}

bool ClusterLink::peer_matches(const policies::PeerSelector& selector, uint16_t family,
                               const std::array<uint8_t, 16>& addr) const {
  const auto snapshot = peers();
  if (!snapshot) return false;
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr.data(), text, sizeof(text)) ==
      nullptr) {
    return false;
  }
  auto it = snapshot->by_ip.find(text);
  return it != snapshot->by_ip.end() &&
         selector.matches(it->second->namespace_name, it->second->labels);
}

std::vector<PeerAddress> ClusterLink::peer_addresses(const policies::PeerSelector& selector) const {
  std::vector<PeerAddress> out;
  const auto snapshot = peers();
  if (!snapshot) return out;
  for (const auto& pod : snapshot->pods) {
    if (!selector.matches(pod->namespace_name, pod->labels)) continue;
    for (const auto& ip : pod->ips) {
      PeerAddress a;
      a.family = ip.find(':') != std::string::npos ? AF_INET6 : AF_INET;
      if (inet_pton(a.family, ip.c_str(), a.addr.data()) == 1) out.push_back(a);
    }
  }
  return out;
}

uint64_t ClusterLink::peers_generation() const {
  const auto snapshot = peers();
  return snapshot ? snapshot->generation : 0;
}

void ClusterLink::on_resources(const std::vector<k8s::PolicyResource>& resources) {
  std::vector<std::string> errors;
  ResourcePolicies converted;
  try {
    converted = policies_from_resources(resources, errors);
  } catch (const std::exception& e) {
    // Only reachable without the CRD's schema (a non-object spec): keep the last set.
    spdlog::error("kubernetes: policy resources not usable: {}", e.what());
    return;
  }
  std::lock_guard lock(mutex_);
  resources_ = resources;
  resource_errors_ = std::move(errors);
  pending_ = std::move(converted.sources);
  spdlog::info("kubernetes: {} policy resources", resources.size());
}

std::optional<std::vector<policies::PolicySource>> ClusterLink::take_policy_update() {
  std::lock_guard lock(mutex_);
  if (!pending_) return std::nullopt;
  applied_ = resources_;
  applied_errors_ = resource_errors_;
  auto out = std::move(pending_);
  pending_.reset();
  return out;
}

void ClusterLink::report_policy_result(bool accepted,
                                       const std::vector<policies::Diagnostic>& errors,
                                       const std::string& digest) {
  if (!policy_watcher_) return;
  std::vector<k8s::PolicyResource> resources;
  std::vector<std::string> shape_errors;
  {
    std::lock_guard lock(mutex_);
    resources = applied_;
    shape_errors = applied_errors_;
  }
  // PATCHes go out on the reporter thread: the pipeline never waits for the API server, and a
  // newer result replaces one not sent yet.
  {
    std::lock_guard lock(report_mutex_);
    next_report_ = Report{std::move(resources), std::move(shape_errors), errors, accepted, digest};
  }
  report_wake_.notify_one();
}

void ClusterLink::report_loop(const std::stop_token& stop) {
  for (;;) {
    Report report;
    {
      std::unique_lock lock(report_mutex_);
      report_wake_.wait(lock, stop, [&] { return next_report_.has_value(); });
      if (!next_report_) return;  // stopping
      report = std::move(*next_report_);
      next_report_.reset();
    }
    send_report(report);
  }
}

void ClusterLink::send_report(const Report& r) {
  for (size_t i = 0; i < r.resources.size(); ++i) {
    const std::string prefix = resource_key(r.resources[i]) + "#";
    k8s::PolicyStatusReport report;
    report.policy_digest = r.digest;
    report.node_name = pod_watcher_->node_name();
    if (!r.shape_errors[i].empty()) report.errors.push_back(r.shape_errors[i]);
    for (const auto& d : r.errors) {
      if (d.source.rfind(prefix, 0) == 0) report.errors.push_back(d.to_string());
    }
    if (report.errors.empty() && !r.accepted) {
      report.errors.push_back("not applied: the node's own policy documents have errors");
    }
    report.accepted = report.errors.empty();
    try {
      policy_watcher_->report_status(r.resources[i], report);
    } catch (const std::exception& e) {
      spdlog::warn("kubernetes: cannot write the status of {}: {}", resource_key(r.resources[i]),
                   e.what());
    }
  }
}

void ClusterLink::consume_finding(std::string_view ocsf_finding, const Event& trigger) {
  if (!publisher_ || !trigger.container || trigger.container->pod_name.empty()) return;
  const json finding = json_from_ocsf(ocsf_finding);
  const std::string rule =
      finding.value("unmapped", json::object()).value("palisade", json::object()).value("rule", "");
  const std::string message = finding.value("message", std::string());
  const ContainerView& c = *trigger.container;
  publisher_->publish(k8s::PodRef{c.pod_namespace, c.pod_name, c.pod_uid}, "PalisadeAlert",
                      rule + ": " + message + " (container " + c.name + ")");
}

json ClusterLink::status() const {
  auto reflector = [](const k8s::ReflectorStats& s) {
    return json{{"connected", s.connected},  {"lists", s.lists},
                {"watches", s.watches},      {"events", s.events},
                {"bookmarks", s.bookmarks},  {"relists_410", s.relists_410},
                {"errors", s.errors},        {"resource_version", s.resource_version},
                {"last_error", s.last_error}};
  };
  json out = {{"source", source_}};
  if (pod_watcher_) {
    const k8s::PodCacheStats cache = pods_->stats();
    out["node"] = pod_watcher_->node_name();
    out["pods"] = reflector(pod_watcher_->stats());
    out["pods"]["cached"] = cache.pods;
    out["pods"]["deleted_kept"] = cache.deleted;
    out["pods"]["evicted"] = cache.evicted_live + cache.evicted_deleted;
  }
  if (policy_watcher_) {
    std::lock_guard lock(mutex_);
    out["policies"] = {{"resources", resources_.size()},
                       {"namespaced", reflector(policy_watcher_->stats(false))},
                       {"cluster", reflector(policy_watcher_->stats(true))}};
  }
  if (publisher_) {
    const k8s::EventStats s = publisher_->stats();
    out["events"] = {{"published", s.published},
                     {"rate_limited", s.rate_limited},
                     {"dropped", s.dropped},
                     {"errors", s.errors}};
  }
  return out;
}

}  // namespace palisade::agent
