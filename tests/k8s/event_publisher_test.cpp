// EventPublisher: core/v1 Events on pods, rate limits and drops, all counted.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_apiserver.h"
#include "palisade/k8s/events.h"

namespace palisade::k8s {
namespace {

using testing::FakeApiServer;
using namespace std::chrono_literals;

const PodRef kWeb{"shop", "web-7d4b9c6f5-x2kqp", "5f0b8a2e-6c1d-4e9a-9b7f-0a1c2d3e4f51"};

EventPublisherOptions options(double rate, double burst, double pod_rate, double pod_burst,
                              std::size_t queue = 256) {
  EventPublisherOptions o;
  o.node_name = "node-a";
  o.rate_per_second = rate;
  o.burst = burst;
  o.pod_rate_per_second = pod_rate;
  o.pod_burst = pod_burst;
  o.queue_capacity = queue;
  return o;
}

TEST(EventPublisher, PostsAnEventAboutThePod) {
  FakeApiServer server;
  Client client(server.config());
  EventPublisher publisher(client, options(5, 20, 0.2, 5));
  ASSERT_TRUE(publisher.publish(kWeb, "ShellInWorkload", "Shell in web: /bin/sh (pid 4242)"));
  ASSERT_TRUE(publisher.flush(5s));

  const auto events = server.query("/events");
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0];
  EXPECT_EQ(e["involvedObject"]["kind"], "Pod");
  EXPECT_EQ(e["involvedObject"]["name"], kWeb.name);
  EXPECT_EQ(e["involvedObject"]["namespace"], "shop");
  EXPECT_EQ(e["involvedObject"]["uid"], kWeb.uid);
  EXPECT_EQ(e["metadata"]["namespace"], "shop");
  EXPECT_EQ(e["reason"], "ShellInWorkload");
  EXPECT_EQ(e["message"], "Shell in web: /bin/sh (pid 4242)");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["source"]["component"], "palisade");
  EXPECT_EQ(e["reportingComponent"], "palisade.dev/node-agent");
  EXPECT_EQ(e["reportingInstance"], "node-a");
  EXPECT_EQ(e["count"], 1);
  EXPECT_EQ(e["firstTimestamp"], e["lastTimestamp"]);
  EXPECT_EQ(e["eventTime"].get<std::string>().size(), 27u);  // 2024-05-02T08:15:31.123456Z
  EXPECT_EQ(server.requests().back()["path"], "/api/v1/namespaces/shop/events");
  EXPECT_EQ(publisher.stats().published, 1u);
  EXPECT_EQ(publisher.stats().errors, 0u);
}

TEST(EventPublisher, LongMessagesAreCutToTheServersLimit) {
  FakeApiServer server;
  Client client(server.config());
  EventPublisher publisher(client, options(5, 20, 0.2, 5));
  publisher.publish(kWeb, "Big", std::string(5000, 'm'));
  ASSERT_TRUE(publisher.flush(5s));
  EXPECT_EQ(publisher.stats().published, 1u);  // the server would refuse over 1024 bytes
  EXPECT_EQ(server.query("/events")[0]["message"].get<std::string>().size(), 1024u);
}

TEST(EventPublisher, RateLimitsPerPodAndOverallAndCountsIt) {
  FakeApiServer server;
  Client client(server.config());
  EventPublisher publisher(client, options(0.001, 5, 0.001, 3));
  int accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += publisher.publish(kWeb, "Noisy", "again") ? 1 : 0;
  EXPECT_EQ(accepted, 3);  // the pod's burst
  const PodRef other{"shop", "web-7d4b9c6f5-9hf2m", "7c2e4d6f-8a0b-4c1d-9e2f-3a4b5c6d7e82"};
  for (int i = 0; i < 10; ++i) accepted += publisher.publish(other, "Noisy", "again") ? 1 : 0;
  EXPECT_EQ(accepted, 5);  // the overall burst
  ASSERT_TRUE(publisher.flush(5s));
  const auto s = publisher.stats();
  EXPECT_EQ(s.published, 5u);
  EXPECT_EQ(s.rate_limited, 15u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(server.query("/events").size(), 5u);
}

TEST(EventPublisher, DropsBeyondTheQueueAndCountsErrors) {
  // A server that accepts connections and never answers: the sender is stuck on its first event.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  ClusterConfig config;
  config.server = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  config.set_token("t");
  ClientOptions client_options;
  client_options.request_timeout = 500ms;
  Client client(config, client_options);
  EventStats s;
  {
    EventPublisher publisher(client, options(1000, 1000, 1000, 1000, 2));
    int accepted = 0;
    for (int i = 0; i < 10; ++i) accepted += publisher.publish(kWeb, "R", "m") ? 1 : 0;
    EXPECT_GE(accepted, 2);
    EXPECT_LE(accepted, 3);  // two queued, at most one already taken by the sender
    EXPECT_EQ(publisher.stats().dropped, static_cast<std::uint64_t>(10 - accepted));
    EXPECT_TRUE(publisher.flush(5s));
    s = publisher.stats();
    EXPECT_EQ(s.errors, static_cast<std::uint64_t>(accepted));
  }
  EXPECT_EQ(s.published, 0u);
  ::close(listener);
}

}  // namespace
}  // namespace palisade::k8s
