#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "palisade/policies/field.h"

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
