#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "palisade/policies/field.h"
#include "palisade/policies/policy_set.h"

namespace palisade::policies {
namespace {

TEST(FieldsDoc, CheckedInFieldReferenceIsCurrent) {
  std::ifstream in(std::string(PALISADE_SOURCE_DIR) + "/docs/policy-fields.md");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), render_fields_markdown())
      << "regenerate with `palisade policy fields --markdown > docs/policy-fields.md`";
}

}  // namespace
}  // namespace palisade::policies

namespace palisade::policies {
namespace {

// Every complete policy document shown in docs/policies.md compiles, next to the default rules
// whose lists and macros the examples use.
TEST(PolicyDocs, ExamplesInThePolicyGuideCompile) {
  std::ifstream in(std::string(PALISADE_SOURCE_DIR) + "/docs/policies.md");
  std::stringstream text;
  text << in.rdbuf();
  const std::string doc = text.str();
  size_t examples = 0;
  for (size_t at = doc.find("```yaml\n"); at != std::string::npos;
       at = doc.find("```yaml\n", at + 1)) {
    const size_t begin = at + 8;
    const std::string block = doc.substr(begin, doc.find("```", begin) - begin);
    if (block.rfind("apiVersion:", 0) != 0 || block.find("\n  ...") != std::string::npos) continue;
    ++examples;
    auto sources = default_rule_sources();
    sources.push_back(PolicySource{"docs/policies.md example " + std::to_string(examples), block});
    std::vector<Diagnostic> errors;
    EXPECT_TRUE(PolicySet::compile(sources, errors)) << block;
    for (const auto& e : errors) ADD_FAILURE() << e.to_string();
  }
  EXPECT_GE(examples, 2U);
}

}  // namespace
}  // namespace palisade::policies
