// PolicyWatcher: PalisadePolicy / ClusterPalisadePolicy through list and watch, and status
// reports PATCHed to the status subresource.

#include <gtest/gtest.h>

#include <mutex>

#include "fake_apiserver.h"
#include "palisade/k8s/policy_resources.h"

namespace palisade::k8s {
namespace {

using testing::eventually;
using testing::FakeApiServer;
using testing::fixture_item;
using namespace std::chrono_literals;

class PolicyWatcherTest : public ::testing::Test {
 protected:
  PolicyWatcherTest() : client_(server_.config()) {
    PolicyWatcherOptions o;
    o.watch_timeout = 30s;
    o.backoff_min = 50ms;
    o.backoff_max = 400ms;
    watcher_ = std::make_unique<PolicyWatcher>(
        client_,
        [this](const std::vector<PolicyResource>& set) {
          std::lock_guard lock(mu_);
          sets_.push_back(set);
        },
        o);
  }

  std::size_t calls() {
    std::lock_guard lock(mu_);
    return sets_.size();
  }
  std::vector<PolicyResource> last() {
    std::lock_guard lock(mu_);
    return sets_.empty() ? std::vector<PolicyResource>{} : sets_.back();
  }
  static std::optional<PolicyResource> find(const std::vector<PolicyResource>& set,
                                            const std::string& name) {
    for (const auto& r : set) {
      if (r.name == name) return r;
    }
    return std::nullopt;
  }

  FakeApiServer server_;
  Client client_;
  std::mutex mu_;
  std::vector<std::vector<PolicyResource>> sets_;
  std::unique_ptr<PolicyWatcher> watcher_;
};

TEST_F(PolicyWatcherTest, SeesPoliciesAddedModifiedDeletedAndReportsStatus) {
  watcher_->start();
  ASSERT_TRUE(watcher_->wait_for_sync(10s));
  ASSERT_TRUE(eventually([&] { return last().size() == 2; }));
  {
    std::lock_guard lock(mu_);
    EXPECT_EQ(sets_.front().size(), 2u);  // never a partial first set
  }

  auto set = last();
  const auto shop = find(set, "shop-web");
  ASSERT_TRUE(shop);
  EXPECT_EQ(shop->kind, "PalisadePolicy");
  EXPECT_EQ(shop->namespace_name, "shop");
  EXPECT_EQ(shop->generation, 1);
  ASSERT_EQ(shop->documents.size(), 2u);
  EXPECT_TRUE(shop->errors.empty());
  const auto doc = shop->documents[0].to_document();
  EXPECT_EQ(doc["apiVersion"], "palisade.dev/v1");
  EXPECT_EQ(doc["kind"], "WorkloadPolicy");
  EXPECT_EQ(doc["metadata"]["name"], "web");
  EXPECT_EQ(doc["spec"]["mode"], "audit");
  const auto baseline = find(set, "baseline");
  ASSERT_TRUE(baseline);
  EXPECT_EQ(baseline->kind, "ClusterPalisadePolicy");
  EXPECT_EQ(baseline->namespace_name, "");
  EXPECT_EQ(baseline->documents.at(0).kind, "List");

  // Added.
  auto extra = fixture_item("palisadepolicies.json", 0);
  extra["metadata"]["name"] = "extra";
  extra["metadata"].erase("uid");
  extra["spec"]["documents"] = {{{"kind", "Macro"},
                                 {"metadata", {{"name", "is-shell"}}},
                                 {"spec", {{"condition", "process.exe in shells"}}}},
                                {{"kind", "Bogus"}, {"metadata", {{"name", "x"}}}}};
  server_.push("ADDED", extra);
  ASSERT_TRUE(eventually([&] { return last().size() == 3; }));
  const auto added = find(last(), "extra");
  ASSERT_TRUE(added);
  EXPECT_EQ(added->documents.size(), 1u);
  ASSERT_EQ(added->errors.size(), 1u);
  EXPECT_NE(added->errors[0].find("spec.documents[1].kind"), std::string::npos);

  // Modified: the spec changes, so the server bumps the generation.
  auto changed = fixture_item("palisadepolicies.json", 0);
  changed["spec"]["documents"].erase(1);
  server_.push("MODIFIED", changed);
  ASSERT_TRUE(eventually([&] {
    const auto r = find(last(), "shop-web");
    return r && r->generation == 2;
  }));
  const PolicyResource modified = *find(last(), "shop-web");
  EXPECT_EQ(modified.documents.size(), 1u);

  // Status: PATCH to the status subresource; the server's MODIFIED for it is not a change.
  const std::size_t before = calls();
  watcher_->report_status(modified,
                          {.accepted = false,
                           .errors = {"spec.documents[0].spec.mode: must be audit or enforce"},
                           .policy_digest = "sha256:0123abcd",
                           .node_name = "node-a"});
  const auto stored = server_.query("/object?kind=PalisadePolicy&namespace=shop&name=shop-web");
  const auto& status = stored["status"];
  EXPECT_EQ(status["observedGeneration"], 2);
  ASSERT_EQ(status["conditions"].size(), 1u);
  EXPECT_EQ(status["conditions"][0]["type"], "Accepted");
  EXPECT_EQ(status["conditions"][0]["status"], "False");
  EXPECT_EQ(status["conditions"][0]["reason"], "InvalidPolicy");
  EXPECT_NE(status["conditions"][0]["message"].get<std::string>().find("must be audit or enforce"),
            std::string::npos);
  EXPECT_FALSE(status["conditions"][0]["lastTransitionTime"].get<std::string>().empty());
  EXPECT_EQ(status["nodes"]["node-a"]["policyDigest"], "sha256:0123abcd");
  EXPECT_EQ(status["nodes"]["node-a"]["accepted"], false);
  const auto req = server_.requests().back();
  EXPECT_EQ(req["method"], "PATCH");
  EXPECT_EQ(req["path"], "/apis/palisade.dev/v1/namespaces/shop/palisadepolicies/shop-web/status");
  EXPECT_EQ(req["content_type"], "application/merge-patch+json");
  ASSERT_TRUE(eventually([&] {
    return watcher_->stats(false).resource_version ==
           server_.query("/state")["resourceVersion"].get<std::string>();
  }));
  EXPECT_EQ(calls(), before);

  // A second node's report merges beside the first one's.
  watcher_->report_status(
      modified,
      {.accepted = true, .errors = {}, .policy_digest = "sha256:0123abcd", .node_name = "node-b"});
  const auto both = server_.query("/object?kind=PalisadePolicy&namespace=shop&name=shop-web");
  EXPECT_EQ(both["status"]["nodes"].size(), 2u);
  EXPECT_EQ(both["status"]["conditions"][0]["status"], "True");

  // Cluster-scoped status path.
  watcher_->report_status(
      *find(last(), "baseline"),
      {.accepted = true, .errors = {}, .policy_digest = "", .node_name = "node-a"});
  EXPECT_EQ(server_.requests().back()["path"],
            "/apis/palisade.dev/v1/clusterpalisadepolicies/baseline/status");
  EXPECT_EQ(server_.query(
                "/object?kind=ClusterPalisadePolicy&name=baseline")["status"]["observedGeneration"],
            3);

  // Deleted.
  server_.push("DELETED", server_.query("/object?kind=PalisadePolicy&namespace=shop&name=extra"));
  ASSERT_TRUE(eventually([&] { return last().size() == 2; }));
  EXPECT_FALSE(find(last(), "extra"));
  EXPECT_EQ(watcher_->current().size(), 2u);
}

}  // namespace
}  // namespace palisade::k8s
