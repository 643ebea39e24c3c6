// PodWatcher against the fake API server: list-then-watch of this node's pods, owner resolution,
// watch updates, bookmarks, 410 re-lists, authentication failures and reconnection.

#include <gtest/gtest.h>

#include <mutex>

#include "fake_apiserver.h"
#include "palisade/k8s/pods.h"

namespace palisade::k8s {
namespace {

using testing::eventually;
using testing::FakeApiServer;
using testing::fixture_item;
using namespace std::chrono_literals;

constexpr const char* kWebUid = "5f0b8a2e-6c1d-4e9a-9b7f-0a1c2d3e4f51";
constexpr const char* kWeb2Uid = "7c2e4d6f-8a0b-4c1d-9e2f-3a4b5c6d7e82";
constexpr const char* kReportUid = "9d1f3b5a-7c9e-4b2d-8f1a-2c3d4e5f6a73";
constexpr const char* kExporterUid = "2b4d6f8a-0c2e-4a6b-8d0f-1e3a5c7e9b04";
constexpr const char* kDebugUid = "4e6a8c0e-2f4a-4c8e-9a2c-5e7a9c1e3f05";
constexpr std::size_t kDebugIndex = 4;  // in fixtures/pods.json
constexpr std::size_t kDbIndex = 5;     // on node-b

PodWatcherOptions fast_options() {
  PodWatcherOptions o;
  o.node_name = "node-a";
  o.watch_timeout = 30s;
  o.backoff_min = 50ms;
  o.backoff_max = 400ms;
  return o;
}

std::size_t count_requests(FakeApiServer& server, const std::string& method,
                           const std::string& path, const std::string& query_part = "") {
  std::size_t n = 0;
  for (const auto& r : server.requests()) {
    if (r["method"] == method && r["path"] == path &&
        r["query"].get<std::string>().find(query_part) != std::string::npos) {
      ++n;
    }
  }
  return n;
}

class PodWatcherTest : public ::testing::Test {
 protected:
  void start(const std::string& token = FakeApiServer::kToken) {
    client_ = std::make_unique<Client>(server_.config(token));
    watcher_ = std::make_unique<PodWatcher>(*client_, cache_, fast_options());
    watcher_->start();
  }
  void start_synced() {
    start();
    ASSERT_TRUE(watcher_->wait_for_sync(10s));
    ASSERT_TRUE(eventually([&] { return watcher_->stats().connected; }));
  }
  void TearDown() override {
    if (watcher_) watcher_->stop();
  }

  FakeApiServer server_;
  PodCache cache_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<PodWatcher> watcher_;
};

TEST_F(PodWatcherTest, ListsThisNodesPodsAndResolvesTheirWorkloads) {
  start_synced();
  EXPECT_EQ(cache_.snapshot().size(), 5u);  // db-0 runs on node-b
  EXPECT_EQ(cache_.stats().pods, 5u);

  const auto web = cache_.by_uid(kWebUid);
  ASSERT_TRUE(web);
  EXPECT_EQ(web->name, "web-7d4b9c6f5-x2kqp");
  EXPECT_EQ(web->namespace_name, "shop");
  EXPECT_EQ(web->node_name, "node-a");
  EXPECT_EQ(web->service_account, "web");
  EXPECT_EQ(web->phase, "Running");
  EXPECT_EQ(web->labels.at("app"), "web");
  EXPECT_EQ(web->controller.kind, "ReplicaSet");
  EXPECT_EQ(web->controller.name, "web-7d4b9c6f5");
  EXPECT_EQ(web->workload.kind, "Deployment");
  EXPECT_EQ(web->workload.name, "web");
  EXPECT_EQ(web->pod_ips, (std::vector<std::string>{"10.244.1.12", "fd00:10:244:1::c"}));
  EXPECT_FALSE(web->host_network);
  ASSERT_EQ(web->containers.size(), 3u);  // init container first
  EXPECT_EQ(web->containers[0].name, "migrate");
  EXPECT_EQ(web->annotations.at("palisade.dev/note").size(), 512u);  // bounded
  bool found_nginx = false;
  for (const auto& c : web->containers) {
    if (c.name != "nginx") continue;
    found_nginx = true;
    EXPECT_EQ(c.id, "3f9e8d7c6b5a49382716f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0");
    EXPECT_EQ(c.image, "docker.io/library/nginx:1.25.4");
    EXPECT_EQ(c.image_id.rfind("docker.io/library/nginx@sha256:", 0), 0u);
  }
  EXPECT_TRUE(found_nginx);

  const auto report = cache_.by_uid(kReportUid);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->controller.kind, "Job");
  EXPECT_EQ(report->workload.kind, "CronJob");
  EXPECT_EQ(report->workload.name, "nightly-report");
  EXPECT_EQ(report->service_account, "reporter");

  const auto exporter = cache_.by_uid(kExporterUid);
  ASSERT_TRUE(exporter);
  EXPECT_EQ(exporter->workload.kind, "DaemonSet");
  EXPECT_TRUE(exporter->host_network);
  EXPECT_EQ(cache_.by_ip("192.168.10.21"), nullptr);  // the node's address names no pod

  const auto debug = cache_.by_uid(kDebugUid);
  ASSERT_TRUE(debug);
  EXPECT_EQ(debug->workload.kind, "Pod");
  EXPECT_EQ(debug->workload.name, "debug-shell");

  // Lookups the agent attributes events with.
  EXPECT_EQ(cache_
                .by_container_id(
                    "containerd://3f9e8d7c6b5a49382716f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0")
                ->uid,
            kWebUid);
  EXPECT_EQ(cache_.by_ip("10.244.1.13")->uid, kWeb2Uid);
  EXPECT_EQ(cache_.by_ip("fd00:10:244:1::c")->uid, kWebUid);

  // One GET per ReplicaSet / Job, however many pods they own.
  EXPECT_EQ(
      count_requests(server_, "GET", "/apis/apps/v1/namespaces/shop/replicasets/web-7d4b9c6f5"),
      1u);
  EXPECT_EQ(
      count_requests(server_, "GET", "/apis/batch/v1/namespaces/shop/jobs/nightly-report-28571040"),
      1u);
  EXPECT_EQ(watcher_->owner_stats().lookups, 2u);
  EXPECT_EQ(watcher_->owner_stats().hits, 1u);

  // The LIST and WATCH requests, as the API concepts page describes them.
  EXPECT_EQ(count_requests(server_, "GET", "/api/v1/pods", "fieldSelector=spec.nodeName%3Dnode-a"),
            2u);
  bool saw_watch = false;
  for (const auto& r : server_.requests()) {
    const std::string q = r["query"];
    if (q.find("watch=1") == std::string::npos) continue;
    saw_watch = true;
    EXPECT_NE(q.find("resourceVersion=10245"), std::string::npos) << q;
    EXPECT_NE(q.find("allowWatchBookmarks=true"), std::string::npos) << q;
    EXPECT_NE(q.find("timeoutSeconds=30"), std::string::npos) << q;
  }
  EXPECT_TRUE(saw_watch);
  const auto s = watcher_->stats();
  EXPECT_EQ(s.lists, 1u);
  EXPECT_EQ(s.watches, 1u);
  EXPECT_EQ(s.resource_version, "10245");
}

TEST_F(PodWatcherTest, AppliesWatchUpdatesAddsAndDeletes) {
  std::mutex mu;
  std::vector<std::pair<PodChange, std::string>> changes;
  cache_.set_listener([&](PodChange c, const PodInfo& p) {
    std::lock_guard lock(mu);
    changes.emplace_back(c, p.name);
  });
  start_synced();

  auto web2 = fixture_item("pods.json", 1);
  web2["metadata"]["labels"]["canary"] = "true";
  server_.push("MODIFIED", web2);
  ASSERT_TRUE(eventually([&] { return cache_.by_uid(kWeb2Uid)->labels.count("canary") == 1; }));

  auto fresh = fixture_item("pods.json", kDebugIndex);
  fresh["metadata"]["name"] = "debug-shell-2";
  fresh["metadata"]["uid"] = "0f1e2d3c-9999-4a5b-8c7d-6e5f4a3b2c1d";
  fresh["status"]["podIPs"] = {{{"ip", "10.244.1.31"}}};
  fresh["status"]["containerStatuses"][0]["containerID"] = "containerd://feedface";
  server_.push("ADDED", fresh);
  ASSERT_TRUE(eventually([&] { return cache_.by_ip("10.244.1.31") != nullptr; }));
  EXPECT_EQ(cache_.by_container_id("feedface")->name, "debug-shell-2");

  server_.push("DELETED", fixture_item("pods.json", kDebugIndex));
  ASSERT_TRUE(eventually([&] { return cache_.by_uid(kDebugUid)->deleted; }));
  EXPECT_EQ(cache_.by_ip("10.244.1.30"), nullptr);
  // Late events from the deleted pod's processes still find it by container id.
  EXPECT_EQ(
      cache_.by_container_id("e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff00")
          ->uid,
      kDebugUid);

  server_.push("MODIFIED", fixture_item("pods.json", kDbIndex));  // another node: not ours
  server_.push("MODIFIED", fixture_item("pods.json", 3));
  ASSERT_TRUE(eventually([&] { return watcher_->stats().events == 4; }));
  EXPECT_EQ(cache_.by_uid("8f0a2c4e-6b8d-4f0a-9c2e-4b6d8f0a2c06"), nullptr);
  EXPECT_EQ(cache_.stats().pods, 5u);
  EXPECT_EQ(cache_.stats().deleted, 1u);
  EXPECT_EQ(watcher_->stats().lists, 1u);

  std::lock_guard lock(mu);
  EXPECT_EQ(std::count_if(changes.begin(), changes.end(),
                          [](const auto& c) { return c.first == PodChange::kAdded; }),
            6);
  EXPECT_EQ(std::count_if(changes.begin(), changes.end(),
                          [](const auto& c) { return c.first == PodChange::kUpdated; }),
            2);
  EXPECT_EQ(std::count_if(changes.begin(), changes.end(),
                          [](const auto& c) { return c.first == PodChange::kDeleted; }),
            1);
}

TEST_F(PodWatcherTest, BookmarkAdvancesTheResourceVersionWithoutRelisting) {
  start_synced();
  server_.push("MODIFIED", fixture_item("pods.json", kDbIndex));  // filtered out for node-a
  const std::string rv = server_.control("bookmark")["resourceVersion"];
  ASSERT_NE(rv, "10245");
  ASSERT_TRUE(eventually([&] { return watcher_->stats().resource_version == rv; }));
  const auto s = watcher_->stats();
  EXPECT_EQ(s.bookmarks, 1u);
  EXPECT_EQ(s.events, 0u);
  EXPECT_EQ(s.lists, 1u);

  // The next watch starts from the bookmark.
  server_.control("expire");
  ASSERT_TRUE(eventually([&] { return watcher_->stats().watches == 2; }));
  EXPECT_EQ(count_requests(server_, "GET", "/api/v1/pods", "resourceVersion=" + rv), 1u);
  EXPECT_EQ(watcher_->stats().lists, 1u);
}

TEST_F(PodWatcherTest, NormalWatchEndRewatchesWithoutRelisting) {
  start_synced();
  server_.control("expire");
  ASSERT_TRUE(eventually([&] {
    const auto s = watcher_->stats();
    return s.watches == 2 && s.connected;
  }));
  server_.push("DELETED", fixture_item("pods.json", kDebugIndex));
  ASSERT_TRUE(eventually([&] { return cache_.by_uid(kDebugUid)->deleted; }));
  const auto s = watcher_->stats();
  EXPECT_EQ(s.lists, 1u);
  EXPECT_EQ(s.relists_410, 0u);
  EXPECT_EQ(s.errors, 0u);
}

TEST_F(PodWatcherTest, ExpiredWatchEventRelistsAndDropsPodsDeletedWhileAway) {
  start_synced();
  // Deleted with no watch event and the history compacted: the open watch gets an ERROR event
  // with a 410 Status, and only a LIST can tell what changed.
  server_.control("quiet_delete",
                  {{"kind", "Pod"}, {"namespace", "default"}, {"name", "debug-shell"}});
  ASSERT_TRUE(eventually([&] {
    const auto pod = cache_.by_uid(kDebugUid);
    return pod && pod->deleted;
  }));
  const auto s = watcher_->stats();
  EXPECT_EQ(s.relists_410, 1u);
  EXPECT_EQ(s.lists, 2u);
  EXPECT_EQ(s.errors, 0u);
  EXPECT_EQ(cache_.stats().pods, 4u);
  EXPECT_TRUE(eventually([&] { return watcher_->stats().connected; }));
}

TEST_F(PodWatcherTest, Http410OnWatchRelists) {
  start_synced();
  server_.control("gone", {{"mode", "http"}});
  server_.control("expire");
  ASSERT_TRUE(eventually([&] { return watcher_->stats().lists == 2; }));
  EXPECT_EQ(watcher_->stats().relists_410, 1u);
  EXPECT_TRUE(eventually([&] { return watcher_->stats().connected; }));
  EXPECT_EQ(cache_.stats().pods, 5u);
}

TEST_F(PodWatcherTest, BadTokenIsReportedAndRetriedWithBackoff) {
  start("not-the-token");
  EXPECT_FALSE(watcher_->wait_for_sync(1500ms));
  // Stopped before counting: a retry in flight would otherwise reach the server between the
  // two reads (seen under the load of the parallel suites).
  watcher_->stop();
  const auto s = watcher_->stats();
  EXPECT_GE(s.errors, 2u);
  EXPECT_EQ(s.last_http_status, 401);
  EXPECT_NE(s.last_error.find("Unauthorized"), std::string::npos) << s.last_error;
  EXPECT_EQ(s.lists, 0u);
  EXPECT_FALSE(s.connected);
  // 50 ms doubling to 400 ms: a handful of attempts in 1.5 s, not a hot loop.
  EXPECT_LE(server_.requests().size(), 9u);
  // Each attempt is counted; one aborted by the stop may have reached the server uncounted.
  EXPECT_GE(server_.requests().size(), s.errors);
  EXPECT_LE(server_.requests().size(), s.errors + 1);
}

TEST_F(PodWatcherTest, ReconnectsWithBackoffWhenTheServerComesBack) {
  start_synced();
  server_.control("down");
  ASSERT_TRUE(eventually([&] {
    const auto s = watcher_->stats();
    return !s.connected && s.errors >= 2;
  }));
  EXPECT_EQ(watcher_->stats().last_http_status, 0);  // transport, not HTTP

  // A pod starts while the agent cannot see the server.
  auto fresh = fixture_item("pods.json", kDebugIndex);
  fresh["metadata"]["name"] = "late-pod";
  fresh["metadata"]["uid"] = "11111111-2222-4333-8444-555555555555";
  server_.push("ADDED", fresh);
  server_.control("up");
  ASSERT_TRUE(
      eventually([&] { return cache_.by_uid("11111111-2222-4333-8444-555555555555") != nullptr; }));
  EXPECT_TRUE(eventually([&] { return watcher_->stats().connected; }));
  EXPECT_EQ(watcher_->stats().lists, 1u);  // the history still had it: no re-list needed
}

TEST_F(PodWatcherTest, StopIsPromptWhileAWatchIsOpen) {
  start_synced();
  const auto t0 = std::chrono::steady_clock::now();
  watcher_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_FALSE(watcher_->stats().connected);
}

}  // namespace
}  // namespace palisade::k8s
