#include "palisade/policies/expression.h"

#include <gtest/gtest.h>

namespace palisade::policies {
namespace {

Event exec_event(const std::string& exe) {
  Event e;
  e.kind = EventKind::kProcessExec;
  find_field("process.exe")->assign(e, exe);
  e.task.uid = 1000;
  return e;
}

bool eval(const std::string& condition, const Event& e, const Definitions& defs = {}) {
  auto compiled = compile_expression(condition, defs);
  if (auto* err = std::get_if<CompileError>(&compiled)) {
    ADD_FAILURE() << condition << ": " << err->message;
    return false;
  }
  return std::get<Expression>(compiled).matches(e);
}

CompileError error_of(const std::string& condition, const Definitions& defs = {}) {
  auto compiled = compile_expression(condition, defs);
  if (auto* err = std::get_if<CompileError>(&compiled)) return *err;
  ADD_FAILURE() << "compiled: " << condition;
  return {};
}

TEST(Expression, ComparesStringsAndNumbers) {
  Event e = exec_event("/tmp/x");
  EXPECT_TRUE(eval("event.kind = exec", e));
  EXPECT_TRUE(eval("process.exe != /bin/ls", e));
  EXPECT_TRUE(eval("process.uid >= 1000 and process.uid < 1001", e));
  EXPECT_FALSE(eval("process.uid > 1000", e));
  EXPECT_TRUE(eval("process.exe startswith /tmp/", e));
  EXPECT_TRUE(eval("process.exe endswith '/x'", e));
  EXPECT_TRUE(eval("process.exe contains mp", e));
  EXPECT_TRUE(eval("process.exe glob \"/tmp/*\"", e));
  EXPECT_TRUE(eval("process.name = x", e));
  EXPECT_TRUE(eval("file.mode = 0", exec_event("/x")) == false) << "absent fields match nothing";
}

TEST(Expression, PrecedenceIsNotThenAndThenOr) {
  Event e = exec_event("/bin/sh");
  // or binds looser than and: true or (false and false)
  EXPECT_TRUE(eval("process.name = sh or process.uid = 0 and process.uid = 5", e));
  // not binds tighter than and: (not false) and true
  EXPECT_TRUE(eval("not process.uid = 0 and process.name = sh", e));
  EXPECT_FALSE(eval("not (process.uid = 1000 or process.name = zsh)", e));
}

TEST(Expression, InWithLiteralsListsAndNumbers) {
  Definitions defs;
  defs.lists["shells"] = {"bash", "sh"};
  Event e = exec_event("/bin/sh");
  EXPECT_TRUE(eval("process.name in (zsh, shells)", e, defs));
  EXPECT_TRUE(eval("process.name in shells", e, defs));
  EXPECT_FALSE(eval("process.name in (zsh, fish)", e, defs));
  EXPECT_TRUE(eval("process.uid in (0, 1000)", e, defs));
}

TEST(Expression, MacrosExpandAndCyclesAreRejected) {
  Definitions defs;
  defs.macros["is_exec"] = "event.kind = exec";
  defs.macros["loop_a"] = "loop_b";
  defs.macros["loop_b"] = "loop_a";
  EXPECT_TRUE(eval("is_exec and process.name = sh", exec_event("/bin/sh"), defs));
  EXPECT_NE(error_of("loop_a", defs).message.find("nest too deeply"), std::string::npos);
}

TEST(Expression, AnyAncestorMatches) {
  Event e = exec_event("/usr/bin/python3");
  find_field("ancestor.exe")->assign(e, "/usr/bin/bash");
  find_field("ancestor.exe")->assign(e, "/usr/bin/sudo");
  EXPECT_TRUE(eval("ancestor.exe glob */sudo", e));
  EXPECT_FALSE(eval("ancestor.exe = /usr/sbin/sshd", e));
}

TEST(Expression, ErrorsSayWhatAndWhere) {
  CompileError e1 = error_of("process.exe startswith");
  EXPECT_NE(e1.message.find("expected a value"), std::string::npos) << e1.message;
  CompileError e2 = error_of("proces.exe = x");
  EXPECT_EQ(e2.column, 0U);
  EXPECT_NE(e2.message.find("unknown field or macro 'proces.exe'"), std::string::npos);
  CompileError e3 = error_of("process.uid = root");
  EXPECT_EQ(e3.column, 14U);
  EXPECT_NE(e3.message.find("is a number"), std::string::npos);
  CompileError e4 = error_of("process.exe > 3");
  EXPECT_NE(e4.message.find("compares numbers"), std::string::npos);
  CompileError e5 = error_of("(process.uid = 1");
  EXPECT_NE(e5.message.find("expected ')'"), std::string::npos);
  CompileError e6 = error_of("process.exe = 'unterminated");
  EXPECT_NE(e6.message.find("unterminated string"), std::string::npos);
  CompileError e7 = error_of("process.uid = 1 process.uid = 2");
  EXPECT_NE(e7.message.find("unexpected"), std::string::npos);
}

TEST(Expression, KindAnalysisNarrowsDispatch) {
  auto only = [](const std::string& condition) {
    return std::get<Expression>(compile_expression(condition, {})).kinds();
  };
  KindSet exec_only = only("event.kind = exec and process.uid = 0");
  EXPECT_EQ(exec_only.count(), 1U);
  EXPECT_TRUE(exec_only.test(static_cast<size_t>(EventKind::kProcessExec)));
  EXPECT_EQ(only("event.kind in (unlink, rmdir)").count(), 2U);
  EXPECT_EQ(only("event.class = network").count(), 4U);
  EXPECT_EQ(only("process.uid = 0").count(), kEventKindLimit);
  EXPECT_EQ(only("event.kind = exec or event.kind = open").count(), 2U);
}

}  // namespace
}  // namespace palisade::policies
