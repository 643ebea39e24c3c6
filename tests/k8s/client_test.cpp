// Client: headers on every request, authentication failures, TLS trust, streaming and stopping.

#include "palisade/k8s/client.h"

#include <gtest/gtest.h>

#include <thread>

#include "fake_apiserver.h"

namespace palisade::k8s {
namespace {

using testing::FakeApiServer;
using testing::read_text;
using testing::test_certs;

TEST(Client, SendsBearerTokenAcceptAndUserAgent) {
  FakeApiServer server;
  Client client(server.config());
  const auto list = client.get("/api/v1/pods?limit=500");
  EXPECT_EQ(list["kind"], "PodList");
  EXPECT_EQ(list["metadata"]["resourceVersion"], "10245");
  const auto r = server.requests().back();
  EXPECT_EQ(r["authorization"], "Bearer test-token");
  EXPECT_EQ(r["accept"], "application/json");
  EXPECT_EQ(r["user_agent"].get<std::string>().rfind("palisade/", 0), 0u) << r;
}

TEST(Client, ReportsUnauthorizedWithTheStatusReason) {
  FakeApiServer server;
  Client client(server.config("wrong-token"));
  try {
    client.get("/api/v1/pods");
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 401);
    EXPECT_EQ(e.reason(), "Unauthorized");
  }
}

TEST(Client, NotFoundCarriesTheServersMessage) {
  FakeApiServer server;
  Client client(server.config());
  try {
    client.get("/apis/apps/v1/namespaces/shop/replicasets/absent");
    FAIL() << "no error";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_NE(std::string(e.what()).find("\"absent\" not found"), std::string::npos) << e.what();
  }
}

TEST(Client, TrustsOnlyTheConfiguredCa) {
  FakeApiServer server;
  ClusterConfig config = server.config();
  config.ca_pem = read_text(test_certs() / "other-ca.crt");
  Client client(config);
  EXPECT_THROW(client.get("/api/v1/pods"), TransportError);
  EXPECT_TRUE(server.requests().empty());  // refused before any request was sent
}

TEST(Client, StreamsWatchLinesAsTheyArriveAndStopsPromptly) {
  FakeApiServer server;
  Client client(server.config());
  std::stop_source stop;
  std::vector<std::string> lines;
  std::mutex mu;
  StreamEnd end{};
  std::thread reader([&] {
    end = client.stream_lines(
        "/api/v1/pods?watch=1&resourceVersion=10245&allowWatchBookmarks=true&timeoutSeconds=60",
        std::chrono::seconds(90), stop.get_token(), [&](std::string_view line) {
          std::lock_guard lock(mu);
          lines.emplace_back(line);
          return true;
        });
  });
  // The event is read while the response is still open: one JSON object per line.
  ASSERT_TRUE(testing::eventually([&] { return server.requests().size() == 1; }));
  server.push("MODIFIED", testing::fixture_item("pods.json", 1));
  ASSERT_TRUE(testing::eventually([&] {
    std::lock_guard lock(mu);
    return lines.size() == 1;
  }));
  EXPECT_EQ(nlohmann::json::parse(lines[0])["type"], "MODIFIED");
  const auto t0 = std::chrono::steady_clock::now();
  stop.request_stop();
  reader.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  EXPECT_EQ(end, StreamEnd::kStopped);
}

TEST(Client, PatchSendsTheContentType) {
  FakeApiServer server;
  Client client(server.config());
  const auto out = client.patch("/apis/palisade.dev/v1/clusterpalisadepolicies/baseline/status",
                                {{"status", {{"observedGeneration", 3}}}});
  EXPECT_EQ(out["status"]["observedGeneration"], 3);
  EXPECT_EQ(server.requests().back()["content_type"], "application/merge-patch+json");
}

TEST(QueryEscape, EncodesSelectorSyntax) {
  EXPECT_EQ(query_escape("spec.nodeName=node-a"), "spec.nodeName%3Dnode-a");
  EXPECT_EQ(query_escape("app in (a,b)"), "app%20in%20%28a%2Cb%29");
}

}  // namespace
}  // namespace palisade::k8s
