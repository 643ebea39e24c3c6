#include "inspect/ssh_keys.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>

#include "inspect/config_parsers.h"

namespace palisade::hypervisor::inspect {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

bool is_key_type(std::string_view word) {
  for (const std::string_view prefix : {"ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"}) {
    if (word.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

bool is_base64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return false;
  const size_t data = text.find_first_of('=');
  const std::string_view body = text.substr(0, data);
  if (data != std::string_view::npos) {
    const std::string_view padding = text.substr(data);
    if (padding.size() > 2 || padding.find_first_not_of('=') != std::string_view::npos) {
      return false;
    }
  }
  return std::all_of(body.begin(), body.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
  });
}

// The options field ends at the first blank outside double quotes.
size_t options_end(std::string_view line) {
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && quoted && i + 1 < line.size()) {
      ++i;
    } else if (line[i] == '"') {
      quoted = !quoted;
    } else if (is_space(line[i]) && !quoted) {
      return i;
    }
  }
  return line.size();
}

std::string_view next_word(std::string_view& rest) {
  rest = trim(rest);
  size_t end = 0;
  while (end < rest.size() && !is_space(rest[end])) ++end;
  const std::string_view word = rest.substr(0, end);
  rest = trim(rest.substr(end));
  return word;
}

}  // namespace

std::string ssh_fingerprint(std::string_view base64_blob) {
  if (!is_base64(base64_blob)) return {};
  std::string blob(base64_blob.size() / 4 * 3, '\0');
  const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(blob.data()),
                                      reinterpret_cast<const unsigned char*>(base64_blob.data()),
                                      static_cast<int>(base64_blob.size()));
  if (decoded < 0) return {};
  // EVP_DecodeBlock counts the padding as zero bytes.
  const size_t padding = base64_blob.size() - std::min(base64_blob.find('='), base64_blob.size());
  blob.resize(static_cast<size_t>(decoded) - padding);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(blob.data()), blob.size(), digest);
  std::string text(4 * ((SHA256_DIGEST_LENGTH + 2) / 3) + 1, '\0');
  const int length =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()), digest, SHA256_DIGEST_LENGTH);
  text.resize(static_cast<size_t>(length));
  while (!text.empty() && text.back() == '=') text.pop_back();
  return "SHA256:" + text;
}

std::vector<SshKey> parse_authorized_keys(std::string_view text, const std::string& user,
                                          const std::string& file, size_t& malformed) {
  std::vector<SshKey> out;
  for (const std::string_view raw : split_lines(text)) {
    std::string_view rest = trim(raw);
    if (rest.empty() || rest[0] == '#') continue;
    SshKey key;
    key.user = user;
    key.file = file;
    const size_t first_end = std::min(rest.find_first_of(" \t"), rest.size());
    if (!is_key_type(rest.substr(0, first_end))) {
      const size_t end = options_end(rest);
      key.options = std::string(rest.substr(0, end));
      rest = rest.substr(end);
    }
    key.type = std::string(next_word(rest));
    const std::string_view blob = next_word(rest);
    key.comment = std::string(rest);
    key.fingerprint = is_key_type(key.type) ? ssh_fingerprint(blob) : std::string();
    if (key.fingerprint.empty()) {
      ++malformed;
      continue;
    }
    out.push_back(std::move(key));
  }
  return out;
}

}  // namespace palisade::hypervisor::inspect
