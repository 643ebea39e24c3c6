// Splitting absolute paths as text, shared by the OCSF output and the policy fields.
#pragma once

#include <string_view>

namespace palisade::base {

// "/usr/bin/ls" -> "ls"; a name without a slash is returned as is.
constexpr std::string_view path_basename(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// "/usr/bin/ls" -> "/usr/bin"; "/ls" -> "/"; empty when there is no slash.
constexpr std::string_view path_dirname(std::string_view path) {
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return {};
  return slash == 0 ? std::string_view("/") : path.substr(0, slash);
}

}  // namespace palisade::base
