#include "tests/support/errors.h"

namespace kith::test {

const char* kindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::USAGE:
      return "USAGE";
    case ErrorKind::INPUT:
      return "INPUT";
    case ErrorKind::NOT_FOUND:
      return "NOT_FOUND";
    case ErrorKind::AUTH:
      return "AUTH";
    case ErrorKind::CORRUPT:
      return "CORRUPT";
    case ErrorKind::CONFLICT:
      return "CONFLICT";
    case ErrorKind::IO:
      return "IO";
  }
  return "?";
}

}  // namespace kith::test
