// libFuzzer target: arbitrary bytes as a condition; compiled conditions are also evaluated on
// events of every kind, with and without process details.
#include <cstddef>
#include <cstdint>
#include <string>

#include "palisade/policies/expression.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::policies;
  static const Definitions defs = [] {
    Definitions d;
    d.lists["shells"] = {"sh", "bash"};
    d.lists["ports"] = {"22", "443"};
    d.macros["is_exec"] = "event.kind = exec";
    d.macros["nested"] = "is_exec and process.name in (shells)";
    return d;
  }();
  auto compiled =
      compile_expression(std::string_view(reinterpret_cast<const char*>(data), size), defs);
  if (auto* expr = std::get_if<Expression>(&compiled)) {
    for (const auto& info : palisade::event_kinds()) {
      palisade::Event event;
      event.kind = info.kind;
      (void)expr->matches(event);
      find_field("process.exe")->assign(event, "/bin/sh");
      find_field("ancestor.exe")->assign(event, "/usr/sbin/sshd");
      find_field("file.path")->assign(event, "/etc/passwd");
      (void)expr->matches(event);
    }
    (void)expr->kinds();
    (void)expr->equality_key();
  }
  return 0;
}
