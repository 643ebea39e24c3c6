#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "exporter_base.h"
#include "palisade/base/token_bucket.h"

namespace palisade::exporters {
namespace {

TEST(Redaction, RemovesTheNamedFieldsAndKeepsTheRest) {
  const std::string event = R"({"class_uid":1007,"process":{"cmd_line":"mysql -psecret","pid":7},
    "actor":{"process":{"cmd_line":"bash","name":"bash"}},"device":{"hostname":"n1"}})";
  const auto clean =
      redacted(event, {"process.cmd_line", "actor.process.cmd_line", "no.such.field"});
  ASSERT_TRUE(clean.has_value());
  const nlohmann::json j = nlohmann::json::parse(*clean);
  EXPECT_FALSE(j["process"].contains("cmd_line"));
  EXPECT_EQ(j["process"]["pid"], 7);
  EXPECT_FALSE(j["actor"]["process"].contains("cmd_line"));
  EXPECT_EQ(j["actor"]["process"]["name"], "bash");
  EXPECT_EQ(j["device"]["hostname"], "n1");
  EXPECT_EQ(clean->find("secret"), std::string::npos);
  EXPECT_FALSE(redacted("not json", {"process.cmd_line"}).has_value()) << "never sent unredacted";
}

TEST(TokenBucket, LetsABurstThroughThenTheRate) {
  const auto start = std::chrono::steady_clock::now();
  base::TokenBucket bucket = base::TokenBucket::full(5, start);
  int passed = 0;
  for (int i = 0; i < 20; ++i) passed += bucket.take(10, 5, start) ? 1 : 0;
  EXPECT_EQ(passed, 5) << "the burst";
  EXPECT_FALSE(bucket.take(10, 5, start + std::chrono::milliseconds(50)));
  EXPECT_TRUE(bucket.take(10, 5, start + std::chrono::milliseconds(150))) << "10 a second";
  for (int i = 0; i < 10; ++i) bucket.take(10, 5, start + std::chrono::seconds(60));
  EXPECT_LE(bucket.tokens, 5.0) << "never more than the burst saved up";
}

}  // namespace
}  // namespace palisade::exporters
