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

}  // namespace
}  // namespace palisade::agent
