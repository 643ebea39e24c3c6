#include "palisade/ocsf/schema_doc.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace palisade::agent {
namespace {

TEST(SchemaDoc, CheckedInEventsReferenceIsCurrent) {
  std::ifstream in(std::string(PALISADE_SOURCE_DIR) + "/docs/events.md");
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), ocsf::render_events_markdown())
      << "docs/events.md is stale: regenerate it with `palisade events --schema > docs/events.md`";
}

}  // namespace
}  // namespace palisade::agent
