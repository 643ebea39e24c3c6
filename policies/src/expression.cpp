#include "palisade/policies/expression.h"

#include <fnmatch.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace palisade::policies {
namespace {

enum class Tok { kLParen, kRParen, kComma, kOp, kWord, kString, kEnd };

struct Token {
  Tok type;
  std::string text;
  size_t column;
};

struct ParseFailure {
  size_t column;
  std::string message;
};

std::vector<Token> lex(std::string_view s, size_t base_column) {
  std::vector<Token> out;
  size_t i = 0;
  auto word_char = [](char c) {
    return !std::isspace(static_cast<unsigned char>(c)) && c != '(' && c != ')' && c != ',' &&
           c != '=' && c != '!' && c != '<' && c != '>' && c != '"' && c != '\'';
  };
  while (i < s.size()) {
    const char c = s[i];
    const size_t col = base_column + i;
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '(' || c == ')' || c == ',') {
      out.push_back({c == '(' ? Tok::kLParen : c == ')' ? Tok::kRParen : Tok::kComma, {}, col});
      ++i;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      std::string op(1, c);
      if (i + 1 < s.size() && s[i + 1] == '=') op += '=';
      if (op == "!") throw ParseFailure{col, "'!' must be followed by '='"};
      i += op.size();
      out.push_back({Tok::kOp, op, col});
    } else if (c == '"' || c == '\'') {
      std::string text;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) ++j;
        text += s[j];
      }
      if (j >= s.size()) throw ParseFailure{col, "unterminated string"};
      out.push_back({Tok::kString, text, col});
      i = j + 1;
    } else {
      size_t j = i;
      while (j < s.size() && word_char(s[j])) ++j;
      out.push_back({Tok::kWord, std::string(s.substr(i, j - i)), col});
      i = j;
    }
  }
  out.push_back({Tok::kEnd, {}, base_column + s.size()});
  return out;
}

bool parse_number(std::string_view s, int64_t& out) {
  int base = 10;
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  } else if (s.size() > 1 && s[0] == '0') {
    base = 8;  // file modes read naturally: 0755
    s.remove_prefix(1);
  }
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  if (ec != std::errc() || end != s.data() + s.size()) return false;
  if (negative) out = -out;
  return true;
}

constexpr size_t kMaxMacroDepth = 16;

}  // namespace

class Parser {
 public:
  Parser(const Definitions& defs, Expression& expr) : defs_(defs), expr_(expr) {}

  void parse_root(std::string_view text) { expr_.root_ = parse_text(text, 0, 0); }

  uint32_t parse_text(std::string_view text, size_t base_column, size_t depth) {
    if (depth > kMaxMacroDepth)
      throw ParseFailure{base_column, "macros nest too deeply (a cycle?)"};
    // A macro body is parsed with its own tokens; the caller's are restored however this ends,
    // so that tokens the caller still refers to stay alive while an error propagates.
    struct Restore {
      Parser& p;
      std::vector<Token> tokens;
      size_t pos;
      size_t depth;
      ~Restore() {
        p.tokens_ = std::move(tokens);
        p.pos_ = pos;
        p.depth_ = depth;
      }
    } restore{*this, std::move(tokens_), pos_, depth_};
    tokens_ = lex(text, base_column);
    pos_ = 0;
    depth_ = depth;
    uint32_t root = parse_or();
    if (peek().type != Tok::kEnd) fail(peek(), "unexpected '" + describe(peek()) + "'");
    return root;
  }

 private:
  using Op = Expression::Op;

  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() { return tokens_[pos_++]; }
  [[noreturn]] static void fail(const Token& t, const std::string& message) {
    throw ParseFailure{t.column, message};
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::kLParen:
        return "(";
      case Tok::kRParen:
        return ")";
      case Tok::kComma:
        return ",";
      case Tok::kEnd:
        return "end of condition";
      default:
        return t.text;
    }
  }
  bool keyword(const char* word) const { return peek().type == Tok::kWord && peek().text == word; }

  uint32_t add(Expression::Node node) {
    expr_.nodes_.push_back(std::move(node));
    return static_cast<uint32_t>(expr_.nodes_.size() - 1);
  }

  uint32_t join(Op op, uint32_t left, uint32_t right) {
    // Flatten chains: a and b and c is one node with three children.
    if (expr_.nodes_[left].op == op) {
      expr_.nodes_[left].children.push_back(right);
      return left;
    }
    Expression::Node node;
    node.op = op;
    node.children = {left, right};
    return add(std::move(node));
  }

  uint32_t parse_or() {
    uint32_t left = parse_and();
    while (keyword("or")) {
      next();
      left = join(Op::kOr, left, parse_and());
    }
    return left;
  }

  uint32_t parse_and() {
    uint32_t left = parse_unary();
    while (keyword("and")) {
      next();
      left = join(Op::kAnd, left, parse_unary());
    }
    return left;
  }

  uint32_t parse_unary() {
    if (keyword("not")) {
      next();
      Expression::Node node;
      node.op = Op::kNot;
      node.children = {parse_unary()};
      return add(std::move(node));
    }
    return parse_primary();
  }

  uint32_t parse_primary() {
    const Token& t = peek();
    if (t.type == Tok::kLParen) {
      next();
      uint32_t inner = parse_or();
      if (peek().type != Tok::kRParen)
        fail(peek(), "expected ')' before '" + describe(peek()) + "'");
      next();
      return inner;
    }
    if (t.type != Tok::kWord)
      fail(t, "expected a field, a macro or '(' but found '" + describe(t) + "'");
    if (const FieldDef* field = find_field(t.text)) {
      next();
      return parse_comparison(field);
    }
    auto macro = defs_.macros.find(t.text);
    if (macro != defs_.macros.end()) {
      const Token use = next();  // a copy: the token vector is swapped while the macro parses
      // Errors inside a macro point at its use; the message names the macro.
      try {
        return parse_text(macro->second, 0, depth_ + 1);
      } catch (const ParseFailure& inner) {
        throw ParseFailure{use.column, "in macro '" + use.text + "': " + inner.message};
      }
    }
    fail(t, "unknown field or macro '" + t.text + "'");
  }

  Op comparison_op(const Token& t) {
    if (t.type == Tok::kOp) {
      if (t.text == "=") return Op::kEq;
      if (t.text == "!=") return Op::kNe;
      if (t.text == "<") return Op::kLt;
      if (t.text == ">") return Op::kGt;
      if (t.text == "<=") return Op::kLe;
      if (t.text == ">=") return Op::kGe;
    }
    if (t.type == Tok::kWord) {
      if (t.text == "in") return Op::kIn;
      if (t.text == "startswith") return Op::kStartsWith;
      if (t.text == "endswith") return Op::kEndsWith;
      if (t.text == "contains") return Op::kContains;
      if (t.text == "glob") return Op::kGlob;
    }
    fail(t,
         "expected an operator (=, !=, <, >, <=, >=, in, startswith, endswith, contains, glob) "
         "but found '" +
             describe(t) + "'");
  }

  void set_value(Expression::Node& node, const Token& t) {
    if (t.type != Tok::kWord && t.type != Tok::kString) {
      fail(t, "expected a value but found '" + describe(t) + "'");
    }
    if (node.field->type == FieldType::kInt) {
      if (!parse_number(t.text, node.number)) {
        fail(t, std::string(node.field->name) + " is a number; '" + t.text + "' is not");
      }
    } else {
      node.text = t.text;
    }
  }

  void add_set_member(Expression::Node& node, const Token& t) {
    auto list = t.type == Tok::kWord ? defs_.lists.find(t.text) : defs_.lists.end();
    std::vector<std::string> values =
        list != defs_.lists.end() ? list->second : std::vector<std::string>{t.text};
    for (const auto& v : values) {
      if (node.field->type == FieldType::kInt) {
        int64_t n = 0;
        if (!parse_number(v, n))
          fail(t, std::string(node.field->name) + " is a number; '" + v + "' is not");
        node.number_set.push_back(n);
      } else {
        node.text_set.push_back(v);
      }
    }
  }

  uint32_t parse_comparison(const FieldDef* field) {
    const Token& op_token = next();
    Expression::Node node;
    node.op = comparison_op(op_token);
    node.field = field;
    const bool ordering =
        node.op == Op::kLt || node.op == Op::kGt || node.op == Op::kLe || node.op == Op::kGe;
    const bool textual = node.op == Op::kStartsWith || node.op == Op::kEndsWith ||
                         node.op == Op::kContains || node.op == Op::kGlob;
    if (ordering && field->type != FieldType::kInt) {
      fail(op_token, "'" + op_token.text + "' compares numbers; " + std::string(field->name) +
                         " is a string");
    }
    if (textual && field->type != FieldType::kString) {
      fail(op_token, "'" + op_token.text + "' needs a string field; " + std::string(field->name) +
                         " is a number");
    }
    if (node.op == Op::kIn) {
      if (peek().type == Tok::kWord && defs_.lists.count(peek().text) != 0) {
        add_set_member(node, next());  // in list_name
      } else {
        if (peek().type != Tok::kLParen) fail(peek(), "expected '(' or a list name after 'in'");
        next();
        for (;;) {
          const Token& v = next();
          if (v.type != Tok::kWord && v.type != Tok::kString)
            fail(v, "expected a value in the list");
          add_set_member(node, v);
          if (peek().type == Tok::kComma) {
            next();
            continue;
          }
          if (peek().type != Tok::kRParen) fail(peek(), "expected ',' or ')' in the list");
          next();
          break;
        }
      }
      std::sort(node.text_set.begin(), node.text_set.end());
      std::sort(node.number_set.begin(), node.number_set.end());
    } else {
      set_value(node, next());
    }
    return add(std::move(node));
  }

  const Definitions& defs_;
  Expression& expr_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  size_t depth_ = 0;
};

bool Expression::test(const Node& node, const FieldValue& v) const {
  if (!v.present) return false;  // an event without the field matches no comparison on it
  if (node.field->type == FieldType::kInt) {
    switch (node.op) {
      case Op::kEq:
        return v.number == node.number;
      case Op::kNe:
        return v.number != node.number;
      case Op::kLt:
        return v.number < node.number;
      case Op::kGt:
        return v.number > node.number;
      case Op::kLe:
        return v.number <= node.number;
      case Op::kGe:
        return v.number >= node.number;
      case Op::kIn:
        return std::binary_search(node.number_set.begin(), node.number_set.end(), v.number);
      default:
        return false;
    }
  }
  const std::string_view s = v.text;
  switch (node.op) {
    case Op::kEq:
      return s == node.text;
    case Op::kNe:
      return s != node.text;
    case Op::kIn:
      return std::binary_search(node.text_set.begin(), node.text_set.end(), s, std::less<>());
    case Op::kStartsWith:
      return s.substr(0, node.text.size()) == node.text;
    case Op::kEndsWith:
      return s.size() >= node.text.size() && s.substr(s.size() - node.text.size()) == node.text;
    case Op::kContains:
      return s.find(node.text) != std::string_view::npos;
    case Op::kGlob: {
      // fnmatch needs a terminated string; paths beyond the buffer simply do not match.
      char buffer[4097];
      if (s.size() >= sizeof(buffer)) return false;
      std::copy(s.begin(), s.end(), buffer);
      buffer[s.size()] = '\0';
      return fnmatch(node.text.c_str(), buffer, 0) == 0;
    }
    default:
      return false;
  }
}

bool Expression::eval(uint32_t index, const Event& event) const {
  const Node& node = nodes_[index];
  switch (node.op) {
    case Op::kTrue:
      return true;
    case Op::kAnd:
      for (uint32_t child : node.children) {
        if (!eval(child, event)) return false;
      }
      return true;
    case Op::kOr:
      for (uint32_t child : node.children) {
        if (eval(child, event)) return true;
      }
      return false;
    case Op::kNot:
      return !eval(node.children[0], event);
    default:
      if (node.field->any_of != nullptr) {
        return node.field->any_of(event, [&](const FieldValue& v) { return test(node, v); });
      }
      return test(node, node.field->read(event));
  }
}

bool Expression::matches(const Event& event) const {
  return eval(root_, event);
}

KindSet Expression::kinds_of(uint32_t index) const {
  const Node& node = nodes_[index];
  KindSet all;
  all.set();
  switch (node.op) {
    case Op::kAnd: {
      KindSet k = all;
      for (uint32_t c : node.children) k &= kinds_of(c);
      return k;
    }
    case Op::kOr: {
      KindSet k;
      for (uint32_t c : node.children) k |= kinds_of(c);
      return k;
    }
    case Op::kEq:
    case Op::kIn: {
      const bool by_kind = node.field->name == "event.kind";
      const bool by_class = node.field->name == "event.class";
      if (!by_kind && !by_class) return all;
      std::vector<std::string> values =
          node.op == Op::kEq ? std::vector<std::string>{node.text} : node.text_set;
      KindSet k;
      for (const auto& info : event_kinds()) {
        const std::string_view key = by_kind ? info.name : class_name(class_of(info.kind));
        if (std::find(values.begin(), values.end(), key) != values.end()) {
          k.set(static_cast<size_t>(info.kind));
        }
      }
      return k;
    }
    default:
      return all;
  }
}

KindSet Expression::kinds() const {
  return kinds_of(root_);
}

std::optional<Expression::EqualityKey> Expression::equality_key() const {
  auto usable = [](const Node& n) {
    return (n.op == Op::kEq || n.op == Op::kIn) && n.field->type == FieldType::kString &&
           n.field->any_of == nullptr && n.field->name != "event.kind" &&
           n.field->name != "event.class";
  };
  std::vector<uint32_t> candidates;
  const Node& root = nodes_[root_];
  if (root.op == Op::kAnd) {
    candidates = root.children;
  } else {
    candidates = {root_};
  }
  for (uint32_t index : candidates) {
    const Node& n = nodes_[index];
    if (!usable(n)) continue;
    EqualityKey key;
    key.field = n.field;
    key.values = n.op == Op::kEq ? std::vector<std::string>{n.text} : n.text_set;
    return key;
  }
  return std::nullopt;
}

std::variant<Expression, CompileError> compile_expression(std::string_view text,
                                                          const Definitions& definitions) {
  Expression expr;
  try {
    Parser parser(definitions, expr);
    parser.parse_root(text);
  } catch (const ParseFailure& f) {
    return CompileError{f.column, f.message};
  }
  return expr;
}

}  // namespace palisade::policies
