// PodCache bounds and PodInfo extraction, without a server.

#include <gtest/gtest.h>

#include "fake_apiserver.h"
#include "palisade/k8s/pods.h"

namespace palisade::k8s {
namespace {

PodInfo pod(const std::string& uid, const std::string& ip) {
  PodInfo p;
  p.uid = uid;
  p.name = "pod-" + uid;
  p.pod_ips = {ip};
  p.containers = {{"c", "cid-" + uid, "img", ""}};
  return p;
}

TEST(PodCache, EvictsDeletedPodsBeforeLiveOnes) {
  PodCache cache(4);
  std::vector<std::pair<PodChange, std::string>> seen;
  cache.set_listener([&](PodChange c, const PodInfo& p) { seen.emplace_back(c, p.uid); });
  for (const char* uid : {"a", "b", "c", "d"}) cache.upsert(pod(uid, std::string("10.0.0.") + uid));
  cache.mark_deleted("b");
  cache.upsert(pod("e", "10.0.0.e"));  // full: the deleted pod goes
  EXPECT_EQ(cache.by_uid("b"), nullptr);
  EXPECT_EQ(cache.stats().evicted_deleted, 1u);
  EXPECT_EQ(cache.stats().evicted_live, 0u);

  cache.upsert(pod("f", "10.0.0.f"));  // full of live pods: the oldest goes, counted
  EXPECT_EQ(cache.by_uid("a"), nullptr);
  EXPECT_EQ(cache.by_ip("10.0.0.a"), nullptr);
  EXPECT_EQ(cache.by_container_id("cid-a"), nullptr);
  EXPECT_EQ(cache.stats().evicted_live, 1u);
  EXPECT_EQ(cache.stats().pods, 4u);
  EXPECT_EQ(seen.back(), (std::pair<PodChange, std::string>{PodChange::kAdded, "f"}));
  EXPECT_EQ(seen[seen.size() - 2], (std::pair<PodChange, std::string>{PodChange::kEvicted, "a"}));
}

TEST(PodCache, KeepsOnlyAQuarterAsDeletedPods) {
  PodCache cache(8);
  for (const char* uid : {"a", "b", "c", "d"}) cache.upsert(pod(uid, std::string("10.0.0.") + uid));
  for (const char* uid : {"a", "b", "c"}) cache.mark_deleted(uid);
  EXPECT_EQ(cache.stats().deleted, 2u);
  EXPECT_EQ(cache.by_uid("a"), nullptr);
  EXPECT_TRUE(cache.by_uid("c")->deleted);
}

TEST(PodCache, UpdateReindexesAddresses) {
  PodCache cache;
  cache.upsert(pod("a", "10.0.0.1"));
  cache.upsert(pod("a", "10.0.0.2"));
  EXPECT_EQ(cache.by_ip("10.0.0.1"), nullptr);
  EXPECT_EQ(cache.by_ip("10.0.0.2")->uid, "a");
  EXPECT_EQ(cache.stats().pods, 1u);
}

TEST(PodInfoFromJson, StripsRuntimePrefixesAndBoundsAnnotations) {
  const auto p = pod_info_from_json(
      testing::fixture_item("pods.json", 0),
      PodLimits{.max_labels = 2, .max_annotations = 8, .max_annotation_bytes = 16});
  EXPECT_EQ(p.labels.size(), 2u);
  EXPECT_EQ(p.annotations.at("palisade.dev/note"), std::string(16, 'x'));
  for (const auto& c : p.containers) EXPECT_EQ(c.id.find("://"), std::string::npos) << c.id;
}

}  // namespace
}  // namespace palisade::k8s
