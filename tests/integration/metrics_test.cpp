// The agent's Prometheus metrics, scraped by a real Prometheus server (Debian's `prometheus`,
// started here on loopback) over HTTPS with a bearer token, and read back through Prometheus's
// own query API: what a platform team's Prometheus would see.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "agent_harness.h"

namespace palisade::testing {
namespace {

using namespace std::chrono_literals;

// A plain HTTP/1.0 GET on loopback; the body, or "" when the server does not answer 200.
std::string http_get(uint16_t port, const std::string& target) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_port = htons(port);
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&at), sizeof(at)) == 0) {
    const std::string request = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[8192];
      for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) response.append(buffer, n);
    }
  }
  close(fd);
  if (response.rfind("HTTP/1.", 0) != 0 || response.find(" 200 ") != 8) return {};
  const auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : response.substr(body + 4);
}

std::string url_encoded(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (isalnum(c) || c == '_' || c == '.' || c == '-') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      snprintf(hex, sizeof(hex), "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

class MetricsTest : public AgentTest {
 protected:
  void TearDown() override {
    if (prometheus_ > 0) {
      kill(prometheus_, SIGTERM);
      waitpid(prometheus_, nullptr, 0);
    }
    AgentTest::TearDown();
  }

  void start_prometheus(const std::string& scrape_configs) {
    prometheus_port_ = free_port();
    std::ofstream(dir / "prometheus.yml")
        << "global: {scrape_interval: 1s, scrape_timeout: 900ms}\nscrape_configs:\n"
        << scrape_configs;
    prometheus_ =
        spawn({"/usr/bin/prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
               "--storage.tsdb.path=" + (dir / "tsdb").string(),
               "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_)},
              dir / "prometheus.log");
  }

  // The instant vector of a PromQL query: [{metric: {...}, value: [time, "text"]}, ...].
  json query(const std::string& promql) {
    const std::string body =
        http_get(prometheus_port_, "/api/v1/query?query=" + url_encoded(promql));
    if (body.empty()) return json::array();
    try {
      return json::parse(body)["data"]["result"];
    } catch (const json::exception&) {
      return json::array();
    }
  }
  double value_of(const std::string& promql) {
    const json result = query(promql);
    if (result.size() != 1) return -1;
    return std::stod(result[0]["value"][1].get<std::string>());
  }

  pid_t prometheus_ = -1;
  uint16_t prometheus_port_ = 0;
};

TEST_F(MetricsTest, APrometheusServerScrapesTheAgentOverTlsWithItsBearerToken) {
  const std::string cert = (dir / "metrics.crt").string();
  const std::string key = (dir / "metrics.key").string();
  std::string out;
  ASSERT_EQ(
      run_capture({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                   "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert},
                  out),
      0)
      << out;
  const std::string token = (dir / "token").string();
  std::ofstream(token) << "scrape-secret-" << getpid() << "\n";
  // The port comes from the configuration file; the command line only says metrics are wanted
  // (the flag repeats the same port, as the harness serves metrics only when it is given).
  const std::string port = std::to_string(free_port());
  std::ofstream(dir / "agent.yaml")
      << "metrics:\n  port: " << port << "\n  tls_certificate: " << cert << "\n  tls_key: " << key
      << "\n  bearer_token_file: " << token << "\nsensor:\n  kernel_time_stats: true\n";
  start_agent({"--config", (dir / "agent.yaml").string(), "--status-interval", "1",
               "--metrics-port", port});
  std::string url;
  ASSERT_TRUE(wait_until([&] {
    try {
      url = json::parse(slurp(dir / "status.json"))["metrics"].value("url", "");
    } catch (const json::exception&) {
    }
    return !url.empty();
  })) << slurp(dir / "agent.log");
  ASSERT_EQ(url.rfind("https://127.0.0.1:", 0), 0U) << url;
  const std::string target = url.substr(8, url.find("/metrics") - 8);
  for (int i = 0; i < 50; ++i) std::ofstream(dir / ("file-" + std::to_string(i))) << i;

  const std::string tls = "    scheme: https\n    tls_config: {ca_file: " + cert + "}\n";
  start_prometheus(
      "  - job_name: palisade\n" + tls + "    authorization: {credentials_file: " + token +
      "}\n    static_configs: [{targets: ['" + target + "']}]\n" + "  - job_name: no-token\n" +
      tls + "    static_configs: [{targets: ['" + target + "']}]\n");
  ASSERT_TRUE(wait_until([&] { return value_of("up{job=\"palisade\"}") == 1; }, 90s))
      << slurp(dir / "prometheus.log");
  // Without the token the endpoint answers 401: Prometheus marks that target down (once it has
  // scraped it: the two jobs do not scrape at the same moment).
  EXPECT_TRUE(wait_until([&] { return value_of("up{job=\"no-token\"}") == 0; }))
      << slurp(dir / "prometheus.log");
  const json targets = json::parse(http_get(prometheus_port_, "/api/v1/targets"));
  bool refused = false;
  for (const auto& t : targets["data"]["activeTargets"]) {
    if (t["labels"]["job"] == "no-token")
      refused = t.value("lastError", "").find("401") != std::string::npos;
  }
  EXPECT_TRUE(refused) << targets.dump();

  // The agent's own series, as Prometheus stored them.
  EXPECT_TRUE(wait_until([&] {
    return value_of("palisade_events_received_total{job=\"palisade\",class=\"file\"}") > 0;
  }));
  EXPECT_TRUE(wait_until(
      [&] { return value_of("palisade_store_rows_written_total{job=\"palisade\"}") > 0; }));
  EXPECT_EQ(value_of("palisade_build_info{job=\"palisade\",component=\"agent\"}"), 1);
  // Every series is there from the start, at 0 until something happens.
  EXPECT_EQ(query("palisade_events_received_total{job=\"palisade\"}").size(), 6U);
  EXPECT_EQ(query("palisade_events_lost_total{job=\"palisade\"}").size(), 12U);
  EXPECT_EQ(value_of("sum(palisade_events_lost_total{job=\"palisade\"})"), 0);
  EXPECT_EQ(value_of("palisade_findings_total{job=\"palisade\",rule=\"reverse-shell\"}"), 0);
  EXPECT_EQ(
      value_of("palisade_store_rows_not_written_total{job=\"palisade\",reason=\"low_disk_space\"}"),
      0);
  EXPECT_EQ(value_of("palisade_containerd_connected{job=\"palisade\"}") >= 0, true);
  EXPECT_GT(value_of("palisade_store_commit_seconds_count{job=\"palisade\"}"), 0);
  // The agent turned the kernel's BPF run-time accounting on: its programs' time is counted.
  EXPECT_EQ(value_of("palisade_bpf_stats_enabled{job=\"palisade\"}"), 1);
  EXPECT_GT(value_of("sum(palisade_bpf_program_runs_total{job=\"palisade\"})"), 0);
  EXPECT_GT(value_of("sum(palisade_bpf_program_run_seconds_total{job=\"palisade\"})"), 0);
  EXPECT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");
}

TEST_F(MetricsTest, AnEndpointThatCannotListenLeavesTheAgentRunningAndSaysWhy) {
  // A port already taken: the agent protects the host without metrics and says so.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(at);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  getsockname(fd, reinterpret_cast<sockaddr*>(&at), &size);
  start_agent({"--status-interval", "1", "--metrics-port", std::to_string(ntohs(at.sin_port))});
  json metrics;
  EXPECT_TRUE(wait_until([&] {
    try {
      metrics = json::parse(slurp(dir / "status.json"))["metrics"];
    } catch (const json::exception&) {
    }
    return metrics.is_object() && metrics.contains("error");
  })) << slurp(dir / "agent.log");
  EXPECT_NE(metrics.value("error", "").find(std::to_string(ntohs(at.sin_port))), std::string::npos)
      << metrics.dump();
  close(fd);
  EXPECT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");
}

// `palisade hv` serves the same kind of metrics on its own port: here following libvirt's
// in-process test driver (one running VM, "test"), scraped over plain HTTP.
TEST_F(MetricsTest, PalisadeHvIsScrapedToo) {
  const std::string port = std::to_string(free_port());
  const pid_t hv = spawn(
      {kCli, "hv", "--connect", "test:///default", "--no-stdout", "--no-store",
       "--no-default-rules", "--policy-dir", (dir / "none").string(), "--status-file",
       (dir / "hv-status.json").string(), "--inspection-store", (dir / "inspections.db").string(),
       "--evidence-dir", (dir / "evidence").string(), "--metrics-port", port},
      dir / "hv.log");
  start_prometheus("  - job_name: hv\n    static_configs: [{targets: ['127.0.0.1:" + port +
                   "']}]\n");
  const bool up = wait_until([&] { return value_of("up{job=\"hv\"}") == 1; }, 90s);
  EXPECT_TRUE(up) << slurp(dir / "hv.log") << slurp(dir / "prometheus.log");
  EXPECT_TRUE(wait_until([&] {
    return value_of("palisade_hv_host_connected{job=\"hv\",host=\"test:///default\"}") == 1;
  })) << slurp(dir / "hv.log");
  EXPECT_TRUE(wait_until([&] { return value_of("palisade_hv_domains{job=\"hv\"}") >= 1; }));
  EXPECT_EQ(value_of("palisade_build_info{job=\"hv\",component=\"hv\"}"), 1);
  EXPECT_EQ(value_of("palisade_hv_notices_lost_total{job=\"hv\",reason=\"queue_full\"}"), 0);
  EXPECT_EQ(query("palisade_hv_responses_total{job=\"hv\"}").size(), 3U);
  kill(hv, SIGTERM);
  int status = 0;
  waitpid(hv, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(dir / "hv.log");
}

}  // namespace
}  // namespace palisade::testing
