// The condition language of detection rules (docs/policies.md):
//   field = value, !=, <, >, <=, >=, in (a, b, list_name), startswith, endswith, contains, glob,
//   and, or, not, parentheses, named lists and macros.
// A condition compiles once into a flat node array with resolved field accessors; evaluating it
// allocates nothing.
#pragma once

#include <bitset>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "palisade/policies/field.h"

namespace palisade::policies {

// Named lists and macros visible to conditions.
struct Definitions {
  std::map<std::string, std::vector<std::string>, std::less<>> lists;
  std::map<std::string, std::string, std::less<>> macros;
};

struct CompileError {
  size_t column = 0;  // 0-based offset into the condition text
  std::string message;
};

using KindSet = std::bitset<kEventKindLimit>;  // indexed by EventKind

class Expression {
 public:
  bool matches(const Event& event) const;
  // The event kinds this condition can possibly match (all when it does not constrain the kind).
  KindSet kinds() const;
  size_t node_count() const { return nodes_.size(); }

  // A conjunct every match must satisfy of the form `field = value` or `field in (...)` on a
  // single-valued string field (other than event.kind/class): the engine indexes rules by it, so
  // a thousand rules on different executables cost one hash lookup, not a thousand comparisons.
  struct EqualityKey {
    const FieldDef* field = nullptr;
    std::vector<std::string> values;
  };
  std::optional<EqualityKey> equality_key() const;

 private:
  friend class Parser;
  enum class Op : uint8_t {
    kTrue,
    kAnd,
    kOr,
    kNot,
    kEq,
    kNe,
    kLt,
    kGt,
    kLe,
    kGe,
    kIn,
    kStartsWith,
    kEndsWith,
    kContains,
    kGlob
  };
  struct Node {
    Op op = Op::kTrue;
    const FieldDef* field = nullptr;
    std::string text;
    int64_t number = 0;
    std::vector<std::string> text_set;  // sorted, for kIn on strings
    std::vector<int64_t> number_set;    // sorted, for kIn on integers
    std::vector<uint32_t> children;     // for kAnd, kOr, kNot
  };
  bool eval(uint32_t index, const Event& event) const;
  bool test(const Node& node, const FieldValue& value) const;
  KindSet kinds_of(uint32_t index) const;

  std::vector<Node> nodes_;
  uint32_t root_ = 0;
};

std::variant<Expression, CompileError> compile_expression(std::string_view text,
                                                          const Definitions& definitions);

}  // namespace palisade::policies
