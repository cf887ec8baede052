#include "common/errno_text.h"

#include <system_error>

namespace noloco {

std::string errno_text(int error_number) { return std::system_category().message(error_number); }

}  // namespace noloco
