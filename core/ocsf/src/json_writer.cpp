#include "palisade/ocsf/json_writer.h"

#include <array>
#include <charconv>
#include <cstring>

namespace palisade::ocsf {
namespace {

constexpr size_t kInitialRoom = 4096;

// Bytes JSON requires escaped (controls, quote, backslash), plus DEL for terminal safety.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[static_cast<size_t>(c)] = true;
  table['"'] = table['\\'] = table[0x7f] = true;
  return table;
}();

char* write_escaped(char* out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out++ = '\\';
  switch (c) {
    case '"':
      *out++ = '"';
      break;
    case '\\':
      *out++ = '\\';
      break;
    case '\n':
      *out++ = 'n';
      break;
    case '\r':
      *out++ = 'r';
      break;
    case '\t':
      *out++ = 't';
      break;
    default:
      std::memcpy(out, "u00", 3);  // NOLINT(bugprone-not-null-terminated-result): not a C string
      out += 3;
      *out++ = kHex[c >> 4];
      *out++ = kHex[c & 0xf];
  }
  return out;
}

}  // namespace

JsonWriter::JsonWriter(std::string& out) : out_(out) {
  const size_t used = out_.size();
  out_.resize(used + kInitialRoom);
  cur_ = out_.data() + used;
  end_ = out_.data() + out_.size();
}

JsonWriter::~JsonWriter() {
  out_.resize(static_cast<size_t>(cur_ - out_.data()));
}

void JsonWriter::grow(size_t bytes) {
  const size_t used = static_cast<size_t>(cur_ - out_.data());
  out_.resize(std::max(out_.size() * 2, used + bytes + kInitialRoom));
  cur_ = out_.data() + used;
  end_ = out_.data() + out_.size();
}

namespace {

// True when any byte of the 8-byte word needs escaping (SWAR: a byte below 0x20, or equal to
// '"', '\\' or DEL). Lets clean text be copied a word at a time.
bool word_needs_escape(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto has_byte = [](uint64_t x, uint8_t b) {
    const uint64_t y = x ^ (kOnes * b);
    return ((y - kOnes) & ~y & kHigh) != 0;
  };
  const bool below_space = ((w - kOnes * 0x20) & ~w & kHigh) != 0;
  return below_space || has_byte(w, '"') || has_byte(w, '\\') || has_byte(w, 0x7f);
}

}  // namespace

void JsonWriter::put_string(std::string_view text) {
  ensure(text.size() * 6 + 3);  // worst case: every byte becomes \u00XX
  char* out = cur_;
  *out++ = '"';
  // An empty view may carry a null pointer (a default string_view), which memcpy must not see.
  const char* in = text.empty() ? "" : text.data();
  const size_t size = text.size();
  size_t done = 0;
  // Clean text (the common case) moves a word at a time; the last partial word is checked by
  // re-reading the final eight bytes (or a padded copy of a short string).
  while (size - done >= 8) {
    uint64_t word;
    std::memcpy(&word, in + done, sizeof(word));
    if (word_needs_escape(word)) break;
    done += 8;
  }
  bool clean_tail = false;
  if (done == size) {
    clean_tail = true;
  } else if (size - done < 8) {
    uint64_t word = 0x6161616161616161ULL;  // 'a' padding never needs escaping
    if (size >= 8) {
      std::memcpy(&word, in + size - 8, sizeof(word));
    } else {
      std::memcpy(&word, in, size);
    }
    clean_tail = !word_needs_escape(word);
  }
  if (clean_tail) {
    std::memcpy(out, in, size);
    out += size;
  } else {
    std::memcpy(out, in, done);
    out += done;
    for (size_t i = done; i < size; ++i) {
      const auto c = static_cast<unsigned char>(in[i]);
      if (kNeedsEscape[c]) {
        out = write_escaped(out, c);
      } else {
        *out++ = in[i];  // UTF-8 passes through
      }
    }
  }
  *out++ = '"';
  cur_ = out;
}

JsonWriter& JsonWriter::value(std::string_view text) {
  ensure(1);
  separate();
  put_string(text);
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  ensure(json.size() + 1);
  separate();
  std::memcpy(cur_, json.data(), json.size());
  cur_ += json.size();
  return *this;
}

JsonWriter& JsonWriter::signed_value(int64_t number) {
  ensure(24);
  separate();
  cur_ = std::to_chars(cur_, end_, number).ptr;
  return *this;
}

JsonWriter& JsonWriter::unsigned_value(uint64_t number) {
  ensure(24);
  separate();
  cur_ = std::to_chars(cur_, end_, number).ptr;
  return *this;
}

JsonWriter& JsonWriter::value(bool flag) {
  ensure(6);
  separate();
  const std::string_view text = flag ? "true" : "false";
  std::memcpy(cur_, text.data(), text.size());
  cur_ += text.size();
  return *this;
}

void append_json_string(std::string& out, std::string_view text) {
  JsonWriter(out).value(text);
}

}  // namespace palisade::ocsf
