#pragma once
// Helpers shared by the k8s sources; not part of the public API.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace palisade::k8s::internal {

// Strict base64 (RFC 4648 alphabet, padding optional, whitespace ignored); nullopt if invalid.
std::optional<std::string> base64_decode(std::string_view text);

// "2024-05-01T12:00:00Z" (metav1.Time) and "2024-05-01T12:00:00.123456Z" (metav1.MicroTime).
std::string rfc3339(std::chrono::system_clock::time_point t);
std::string rfc3339_micro(std::chrono::system_clock::time_point t);

// Cuts `text` to at most `max` bytes without splitting a UTF-8 sequence.
std::string truncate_utf8(std::string text, std::size_t max);

}  // namespace palisade::k8s::internal
