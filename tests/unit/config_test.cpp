#include "palisade/agent/config.h"

#include <gtest/gtest.h>

namespace palisade::agent {
namespace {

TEST(Config, BuiltInDefaultsParse) {
  AgentConfig c = default_config();
  EXPECT_TRUE(c.outputs.stdout_enabled);
  EXPECT_EQ(c.sensor.ring_buffer_bytes, 16U << 20);
  EXPECT_EQ(c.sensor.argv_max_bytes, 4096U);
  EXPECT_EQ(c.outputs.store.path, "/var/lib/palisade/events.db");
  EXPECT_EQ(c.outputs.store.max_age_seconds, 168U * 3600);
  EXPECT_FALSE(c.sensor.file_rules.exclude.empty());
  EXPECT_EQ(c.status_interval_seconds, 30U);
}

TEST(Config, FileOverridesKeyByKey) {
  AgentConfig c = apply_config(default_config(), "sensor:\n  argv_max_bytes: 1024\n", "x.yaml");
  EXPECT_EQ(c.sensor.argv_max_bytes, 1024U);
  EXPECT_EQ(c.sensor.ring_buffer_bytes, 16U << 20) << "untouched keys keep their defaults";
}

void expect_error(const std::string& yaml, const std::string& expected) {
  try {
    apply_config(default_config(), yaml, "/etc/palisade/agent.yaml");
    FAIL() << "accepted: " << yaml;
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(Config, ErrorsNameFileLineColumnAndField) {
  expect_error("store:\n  max_age_hourz: 3\n",
               "/etc/palisade/agent.yaml:2:3: store.max_age_hourz: unknown key");
  expect_error("sensor:\n  argv_max_bytes: lots\n",
               "agent.yaml:2:19: sensor.argv_max_bytes: expected a number");
  expect_error("sensor:\n  ring_buffer_mib: 3\n", "sensor.ring_buffer_mib: must be a power of two");
  expect_error("sensor:\n  file_exclude_prefixes: [proc]\n", "path prefix must be absolute");
  expect_error("output: [\n", "YAML syntax error");
  expect_error("log_level: loud\n", "log_level: unknown level");
}

// The hypervisor section is part of the same file (palisade hv reads it).
TEST(Config, OversizedOrMultiDocumentConfigurationIsRefusedBeforeParsing) {
  const std::string big = "log_level: info\n# " + std::string(kMaxConfigBytes, 'x') + "\n";
  try {
    apply_config(default_config(), big, "big.yaml");
    FAIL() << "a configuration over the limit was read";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("big.yaml:1:1:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("more than the 1048576"), std::string::npos) << e.what();
  }
  try {
    apply_config(default_config(), "---\nlog_level: info\n---\nlog_level: debug\n", "two.yaml");
    FAIL() << "a second document was accepted";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("two.yaml:3:1:"), std::string::npos) << e.what();
  }
  EXPECT_EQ(apply_config(default_config(), "---\nlog_level: debug\n", "one.yaml").log_level,
            "debug");
}

// Found by tests/fuzz/config_fuzzer: a mapping as a key escaped as yaml-cpp's BadConversion,
// with no file name.
TEST(Config, AKeyThatIsNotAPlainNameIsAnErrorAtItsLine) {
  try {
    apply_config(default_config(), "log_level: info\n? {a: 1}\n: x\n", "keys.yaml");
    FAIL() << "a mapping was accepted as a key";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("keys.yaml:2:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("plain name"), std::string::npos) << e.what();
  }
}

TEST(Config, HypervisorSectionIsReadAndChecked) {
  auto c = apply_config(default_config(), R"(hypervisor:
  connect: [test:///default, "qemu+ssh://h2/system"]
  stats_interval_seconds: 5
  inspection: {parallelism: 2, backend_settings: [force_tcg]}
)",
                        "hv.yaml");
  EXPECT_EQ(c.hypervisor.connect.size(), 2U);
  EXPECT_EQ(c.hypervisor.stats_interval_seconds, 5U);
  EXPECT_EQ(c.hypervisor.inspection_parallelism, 2U);
  EXPECT_EQ(c.hypervisor.inspection_backend_settings, std::vector<std::string>{"force_tcg"});
  try {
    apply_config(default_config(), "hypervisor:\n  stats_interval: 5\n", "hv.yaml");
    FAIL() << "unknown key accepted";
  } catch (const ConfigurationError& e) {
    EXPECT_NE(std::string(e.what()).find("hv.yaml:2:3: hypervisor.stats_interval"),
              std::string::npos)
        << e.what();
  }
}

TEST(Config, MetricsSectionIsReadAndChecked) {
  const AgentConfig defaults = default_config();
  EXPECT_TRUE(defaults.metrics_enabled);
  EXPECT_EQ(defaults.metrics.address, "127.0.0.1") << "localhost unless configured otherwise";
  EXPECT_EQ(defaults.metrics.port, 9477);
  auto c = apply_config(defaults, R"(metrics:
  address: 0.0.0.0
  port: 9100
  tls_certificate: /etc/palisade/tls/metrics.crt
  tls_key: /etc/palisade/tls/metrics.key
  bearer_token_file: /etc/palisade/metrics-token
)",
                        "m.yaml");
  EXPECT_EQ(c.metrics.address, "0.0.0.0");
  EXPECT_EQ(c.metrics.port, 9100);
  EXPECT_EQ(c.metrics.tls_key, "/etc/palisade/tls/metrics.key");
  EXPECT_EQ(c.metrics.bearer_token_file, "/etc/palisade/metrics-token");
  EXPECT_FALSE(apply_config(defaults, "metrics: {enabled: false}\n", "m.yaml").metrics_enabled);
  expect_error("metrics:\n  port: 70000\n", "agent.yaml:2:9: metrics.port");
  expect_error("metrics:\n  port: 0\n", "metrics.port");
  expect_error("metrics:\n  tls_certificate: /x.crt\n", "tls_certificate and tls_key go together");
  expect_error("metrics:\n  bearer_token: x\n", "metrics.bearer_token: unknown key");
}

TEST(Config, ExportersAreReadByNameAndChecked) {
  auto c = apply_config(default_config(), R"(exporters:
  - name: fleet
    type: nats
    classes: [process, finding]
    min_severity: high
    spool: {directory: /var/spool/fleet, max_mib: 8, when_full: drop_oldest}
    nats: {servers: ["nats://a:4222", "nats://b:4222"], subject_prefix: acme.palisade}
  - name: audit-only
    type: nats
    classes: [audit]
)",
                        "x.yaml");
  ASSERT_EQ(c.exporters.size(), 2U);
  EXPECT_EQ(c.exporters[0].name, "fleet");
  EXPECT_EQ(c.exporters[0].min_severity_id, 4);
  EXPECT_EQ(c.exporters[0].spool.max_bytes, 8U << 20);
  EXPECT_EQ(c.exporters[0].spool.when_full, exporters::WhenFull::kDropOldest);
  EXPECT_EQ(c.exporters[0].nats.servers.size(), 2U);
  EXPECT_EQ(c.exporters[0].nats.subject_prefix, "acme.palisade");
  EXPECT_EQ(c.exporters[1].spool.directory, "/var/lib/palisade/spool/audit-only");
  EXPECT_TRUE(default_config().exporters.empty());
  expect_error("exporters:\n  - name: x\n    type: kafka\n", "agent.yaml:3:11: exporters[0].type");
  expect_error("exporters:\n  - name: Bad Name\n    type: nats\n", "exporters[0].name");
  expect_error("exporters:\n  - {name: a, type: nats, classes: [files]}\n",
               "unknown class 'files'");
  expect_error("exporters:\n  - {name: a, type: nats}\n  - {name: a, type: nats}\n",
               "two exporters named a");
  expect_error("exporters:\n  - {name: a, type: nats, nats: {servers: []}}\n",
               "exporters[0].nats.servers");
  expect_error("exporters:\n  - {name: a, type: nats, min_severity: loud}\n",
               "exporters[0].min_severity");
  const auto limited = apply_config(default_config(), R"(exporters:
  - name: a
    type: nats
    rate_limit: {events_per_second: 100, burst: 500}
    redact: [process.cmd_line, actor.process.cmd_line]
)",
                                    "x.yaml");
  EXPECT_EQ(limited.exporters[0].rate_per_second, 100);
  EXPECT_EQ(limited.exporters[0].burst, 500);
  EXPECT_EQ(limited.exporters[0].redact.size(), 2U);
  expect_error("exporters:\n  - {name: a, type: nats, redact: [process..cmd_line]}\n",
               "is not a dotted field path");
  expect_error("exporters:\n  - {name: a, type: nats, rate_limit: {per_second: 1}}\n",
               "exporters[0].rate_limit.per_second: unknown key");
}

}  // namespace
}  // namespace palisade::agent
