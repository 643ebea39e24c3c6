#include "palisade/base/error.h"

namespace palisade {

std::string_view category_name(ErrorCategory category) {
  switch (category) {
    case ErrorCategory::kEnvironment:
      return "environment";
    case ErrorCategory::kConfiguration:
      return "configuration";
    case ErrorCategory::kInvariant:
      return "invariant";
  }
  return "unknown";
}

}  // namespace palisade
