#include "internal.h"

#include <array>
#include <cstdio>
#include <ctime>

namespace palisade::k8s::internal {

namespace {

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::tm utc(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}

std::string date_time(const std::tm& tm) {
  std::array<char, 32> buf{};
  const auto n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(buf.data(), n);
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  unsigned int acc = 0;
  int bits = 0;
  int padding = 0;
  for (const char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int v = base64_value(c);
    if (v < 0 || padding > 0) return std::nullopt;  // bad character, or data after padding
    acc = (acc << 6) | static_cast<unsigned int>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFFu));
    }
  }
  // Leftover bits must be the zero fill of the last quantum: 2 or 4 bits, never 6.
  if (bits >= 6 || padding > 2 || (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  return date_time(utc(t)) + "Z";
}

std::string rfc3339_micro(std::chrono::system_clock::time_point t) {
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch() %
                                                                            std::chrono::seconds(1))
                          .count();
  std::array<char, 16> frac{};
  std::snprintf(frac.data(), frac.size(), ".%06lldZ", static_cast<long long>(micros));
  return date_time(utc(t)) + frac.data();
}

std::string truncate_utf8(std::string text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t cut = max;
  // Step back over continuation bytes (10xxxxxx) so a multi-byte character is not split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0u) == 0x80u) --cut;
  text.resize(cut);
  return text;
}

}  // namespace palisade::k8s::internal
