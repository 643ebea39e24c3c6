// The NATS JetStream exporter against a real 3-node nats-server cluster (Debian's package) on
// loopback, with a stream of 3 replicas: a node killed during a storm, the whole cluster down
// for 30 s, and a spool too small for what waits, each checked message by message in the stream.
#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "agent_harness.h"

namespace palisade::testing {
namespace {

using namespace std::chrono_literals;

bool accepts(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(port);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof(at)) == 0;
  close(fd);
  return ok;
}

// Three nats-server processes with JetStream, routed to each other.
class NatsCluster {
 public:
  explicit NatsCluster(const fs::path& dir) : dir_(dir) {
    for (auto& n : nodes_) {
      n.client = free_port();
      n.route = free_port();
    }
    for (size_t i = 0; i < nodes_.size(); ++i) {
      std::ofstream conf(dir_ / ("n" + std::to_string(i) + ".conf"));
      conf << "server_name: n" << i << "\nlisten: 127.0.0.1:" << nodes_[i].client
           << "\njetstream { store_dir: \"" << (dir_ / ("js" + std::to_string(i))).string()
           << "\", max_mem: 64MB, max_file: 1GB }\ncluster {\n  name: palisade-test\n  listen: "
              "127.0.0.1:"
           << nodes_[i].route << "\n  routes: [";
      for (size_t j = 0; j < nodes_.size(); ++j) {
        if (j != i) conf << "\"nats-route://127.0.0.1:" << nodes_[j].route << "\", ";
      }
      conf << "]\n}\n";
    }
    for (size_t i = 0; i < nodes_.size(); ++i) start(i);
  }
  ~NatsCluster() { stop_all(); }
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  void start(size_t i) {
    nodes_[i].pid = spawn(
        {"/usr/sbin/nats-server", "-c", (dir_ / ("n" + std::to_string(i) + ".conf")).string()},
        dir_ / ("n" + std::to_string(i) + ".log"));
    wait_until([&] { return accepts(nodes_[i].client); }, 20s);
  }
  void stop_all() {
    for (size_t i = 0; i < nodes_.size(); ++i) kill_node(i, SIGTERM);
  }
  void kill_node(size_t i, int signal) {
    if (nodes_[i].pid <= 0) return;
    kill(nodes_[i].pid, signal);
    waitpid(nodes_[i].pid, nullptr, 0);
    nodes_[i].pid = -1;
  }
  std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (const auto& n : nodes_) out.push_back("nats://127.0.0.1:" + std::to_string(n.client));
    return out;
  }
  std::string log(size_t i) const { return slurp(dir_ / ("n" + std::to_string(i) + ".log")); }

 private:
  struct Node {
    uint16_t client = 0;
    uint16_t route = 0;
    pid_t pid = -1;
  };
  fs::path dir_;
  std::array<Node, 3> nodes_;
};

// The test's own client: makes the stream and reads it back.
class StreamReader {
 public:
  explicit StreamReader(const std::vector<std::string>& urls) {
    natsOptions* options = nullptr;
    natsOptions_Create(&options);
    std::vector<const char*> servers;
    servers.reserve(urls.size());
    for (const auto& u : urls) servers.push_back(u.c_str());
    natsOptions_SetServers(options, servers.data(), static_cast<int>(servers.size()));
    natsOptions_SetMaxReconnect(options, -1);
    ok_ = natsConnection_Connect(&nc_, options) == NATS_OK &&
          natsConnection_JetStream(&js_, nc_, nullptr) == NATS_OK;
    natsOptions_Destroy(options);
  }
  ~StreamReader() {
    if (js_ != nullptr) jsCtx_Destroy(js_);
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
  }
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  // PALISADE, on palisade.>, three replicas (retried while the cluster elects its leader).
  bool create_stream() {
    if (!ok_) return false;
    return wait_until(
        [&] {
          jsStreamConfig config;
          jsStreamConfig_Init(&config);
          const char* subjects[] = {"palisade.>"};
          config.Name = "PALISADE";
          config.Subjects = subjects;
          config.SubjectsLen = 1;
          config.Replicas = 3;
          config.Storage = js_FileStorage;
          jsStreamInfo* info = nullptr;
          jsErrCode error = static_cast<jsErrCode>(0);
          natsStatus s = js_AddStream(&info, js_, &config, nullptr, &error);
          if (info != nullptr) jsStreamInfo_Destroy(info);
          info = nullptr;
          // An attempt that timed out while the cluster elected its leader may have made it.
          if (s != NATS_OK) s = js_GetStreamInfo(&info, js_, "PALISADE", nullptr, &error);
          if (info != nullptr) jsStreamInfo_Destroy(info);
          return s == NATS_OK;
        },
        60s);
  }
  // Every message's payload, in stream order.
  std::vector<json> messages() {
    std::vector<json> out;
    jsStreamInfo* info = nullptr;
    jsErrCode error = static_cast<jsErrCode>(0);
    if (js_GetStreamInfo(&info, js_, "PALISADE", nullptr, &error) != NATS_OK) return out;
    const uint64_t last = info->State.LastSeq;
    jsStreamInfo_Destroy(info);
    for (uint64_t seq = 1; seq <= last; ++seq) {
      natsMsg* msg = nullptr;
      // Right after a node was killed a read can time out while the stream elects a leader:
      // retried, so that a message the reader missed is not taken for one the agent lost.
      natsStatus s = NATS_ERR;
      for (int attempt = 0; attempt < 50 && s != NATS_OK; ++attempt) {
        s = js_GetMsg(&msg, js_, "PALISADE", seq, nullptr, &error);
        if (s != NATS_OK && error == JSNoMessageFoundErr) break;  // a hole: nothing to read
        if (s != NATS_OK) std::this_thread::sleep_for(100ms);
      }
      if (s != NATS_OK) continue;
      try {
        out.push_back(json::parse(std::string(natsMsg_GetData(msg), natsMsg_GetDataLength(msg))));
      } catch (const json::exception&) {
      }
      natsMsg_Destroy(msg);
    }
    return out;
  }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  bool ok_ = false;
};

class ExporterTest : public AgentTest {
 protected:
  // The stream made on the cluster, then the agent with an exporter to it, connected.
  void start_with_exporter(const NatsCluster& cluster, const std::string& spool_extra = "") {
    ASSERT_TRUE(StreamReader(cluster.urls()).create_stream()) << cluster.log(0);
    std::ofstream config(dir / "agent.yaml");
    config << "exporters:\n  - name: fleet\n    type: nats\n    classes: [file]\n    spool: "
              "{directory: "
           << (dir / "spool").string() << spool_extra << "}\n    nats:\n      servers: [";
    for (const auto& u : cluster.urls()) config << "\"" << u << "\", ";
    config << "]\n      ack_timeout_ms: 2000\nsensor:\n  file_include_prefixes: ["
           << (dir / "storm").string() << "/]\n";
    config.close();
    start_agent({"--config", (dir / "agent.yaml").string(), "--status-interval", "1"});
    ASSERT_TRUE(wait_until([&] { return exporter().value("connected", false); }))
        << slurp(dir / "agent.log");
  }
  json exporter() {
    try {
      return json::parse(slurp(dir / "status.json"))["outputs"]["fleet"];
    } catch (const json::exception&) {
      return json::object();
    }
  }
  void storm(const std::string& tag, int from, int to) {
    fs::create_directories(dir / "storm");
    for (int i = from; i < to; ++i) {
      std::ofstream(dir / "storm" / (tag + "-" + std::to_string(i))) << i;
    }
  }
  // How often each storm file's event appears in the stream, and in which order.
  std::map<int, int> seen(const std::vector<json>& messages, const std::string& tag,
                          std::vector<int>* order = nullptr) {
    std::map<int, int> count;
    const std::string prefix = (dir / "storm" / (tag + "-")).string();
    for (const auto& m : messages) {
      // Each storm file is opened for writing once: one event, which must be stored once.
      const std::string path = m.value("/file/path"_json_pointer, "");
      if (path.rfind(prefix, 0) != 0) continue;
      const int i = std::stoi(path.substr(prefix.size()));
      count[i]++;
      if (order != nullptr) order->push_back(i);
    }
    return count;
  }
};

TEST_F(ExporterTest, ANodeKilledDuringAStormLosesNothingAndDuplicatesNothing) {
  NatsCluster cluster(dir);
  ASSERT_NO_FATAL_FAILURE(start_with_exporter(cluster));
  storm("a", 0, 1500);
  cluster.kill_node(1, SIGKILL);
  storm("a", 1500, 3000);
  ASSERT_TRUE(wait_until(
      [&] {
        const json e = exporter();
        return e.value("pending", 1) == 0 && e.value("acknowledged", 0) >= 3000;
      },
      90s))
      << exporter().dump() << slurp(dir / "agent.log");
  const json e = exporter();
  EXPECT_EQ(e["lost"]["queue_full"], 0);
  EXPECT_EQ(e["lost"]["spool_full"], 0);
  StreamReader reader(cluster.urls());
  const std::map<int, int> count = seen(reader.messages(), "a");
  // What the agent accepted is what it also wrote to its JSON output (a sensor loss, counted in
  // its status, never reaches either).
  const std::map<int, int> accepted = seen(json_lines(dir / "events.jsonl"), "a");
  EXPECT_GE(accepted.size(), 2990U) << slurp(dir / "status.json");
  EXPECT_EQ(count.size(), accepted.size()) << "every event the agent accepted is in the stream";
  for (const auto& [i, n] : count)
    EXPECT_EQ(n, 1) << "storm file " << i << " stored " << n << " times";
  // Subjects name the node and the class; the id JetStream deduplicates by is the event's uid.
  EXPECT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");
}

TEST_F(ExporterTest, TheWholeClusterDownForThirtySecondsIsSpooledThenDrainedInOrder) {
  NatsCluster cluster(dir);
  ASSERT_NO_FATAL_FAILURE(start_with_exporter(cluster));
  cluster.stop_all();
  storm("b", 0, 1000);
  EXPECT_TRUE(wait_until([&] { return exporter()["spool"].value("entries", 0) >= 1000; }))
      << exporter().dump();
  std::this_thread::sleep_for(30s);
  EXPECT_FALSE(exporter().value("connected", true));
  EXPECT_GE(exporter()["spool"].value("bytes", 0), 1000 * 500) << "the spool holds them";
  for (size_t i = 0; i < 3; ++i) cluster.start(i);
  ASSERT_TRUE(wait_until([&] { return exporter().value("pending", 1) == 0; }, 120s))
      << exporter().dump() << slurp(dir / "agent.log");
  StreamReader reader(cluster.urls());
  std::vector<int> order;
  const std::map<int, int> count = seen(reader.messages(), "b", &order);
  EXPECT_EQ(count.size(), seen(json_lines(dir / "events.jsonl"), "b").size());
  EXPECT_GE(count.size(), 990U);
  for (const auto& [i, n] : count) EXPECT_EQ(n, 1) << i;
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end())) << "drained in the order accepted";
  EXPECT_EQ(exporter()["lost"]["spool_full"], 0);
  EXPECT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");
}

TEST_F(ExporterTest, AFullSpoolRefusesTheNewestAndCountsThem) {
  NatsCluster cluster(dir);
  ASSERT_NO_FATAL_FAILURE(start_with_exporter(cluster, ", max_mib: 1, when_full: drop_newest"));
  cluster.stop_all();
  storm("c", 0, 2000);  // ~2 KB each: twice what the spool may hold
  EXPECT_TRUE(wait_until([&] { return exporter()["lost"].value("spool_full", 0) > 0; }))
      << exporter().dump();
  const json e = exporter();
  EXPECT_LE(e["spool"].value("bytes", 0), 1 << 20);
  EXPECT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");
}

}  // namespace
}  // namespace palisade::testing
