#include "palisade/base/errno_text.h"

#include <system_error>

namespace palisade::base {

std::string errno_text(int error) {
  return std::system_category().message(error < 0 ? -error : error);
}

}  // namespace palisade::base
