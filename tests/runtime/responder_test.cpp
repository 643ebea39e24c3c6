#include "palisade/runtime/responder.h"

#include <gtest/gtest.h>

#include "palisade/ocsf/remediation.h"

namespace palisade::runtime {
namespace {

using std::chrono::seconds;

TEST(Responder, RefusesBeyondTheBudgetOfAMinuteAndStartsAfreshAfterIt) {
  Responder responder("palisade test", 2);
  const auto start = Responder::Clock::now();
  EXPECT_FALSE(responder.admit(start).has_value());
  EXPECT_FALSE(responder.admit(start + seconds(1)).has_value());
  const std::optional<ResponseOutcome> refused = responder.admit(start + seconds(2));
  ASSERT_TRUE(refused.has_value());
  EXPECT_FALSE(refused->ok);
  EXPECT_TRUE(refused->refused);
  EXPECT_EQ(refused->detail, "refused: more than 2 responses in a minute");
  EXPECT_FALSE(responder.admit(start + seconds(61)).has_value()) << "a new minute";
}

TEST(Responder, CompletesTheAuditRecordAndCountsEveryOutcome) {
  Responder responder("palisade test", 10);
  const nlohmann::json who = responder.requester("kill-miner", "a miner ran");
  EXPECT_EQ(who.dump().find("palisade test: rule kill-miner") != std::string::npos, true);
  nlohmann::json record = ocsf::remediation_event(
      ocsf::RemediationClass::kProcess, ocsf::RemediationActivity::kEvict, false, "", who);
  const nlohmann::json done =
      responder.audit(record, ResponseOutcome{true, "killed 42", false}, "kill-miner", "kill");
  EXPECT_EQ(done["status_id"], 1);
  EXPECT_EQ(done["status"], "Success");
  EXPECT_EQ(done["status_detail"], "killed 42");
  EXPECT_EQ(done["unmapped"]["palisade"]["rule"], "kill-miner");
  EXPECT_EQ(done["unmapped"]["palisade"]["response"], "kill");
  EXPECT_EQ(done["class_uid"], 7003);

  const nlohmann::json failed =
      responder.audit(record, ResponseOutcome{false, "no such process", false}, "r", "kill");
  EXPECT_EQ(failed["status_id"], 2);
  EXPECT_EQ(failed["status"], "Failure");
  responder.audit(record, ResponseOutcome{false, "refused", true}, "r", "kill");
  EXPECT_EQ(responder.status(),
            (nlohmann::json{{"carried_out", 1}, {"failed", 2}, {"refused", 1}}));
}

}  // namespace
}  // namespace palisade::runtime
