#include "base/digest.h"

#include <xxhash.h>

namespace deltatap {

std::uint64_t digest_of(std::string_view text) {
  return XXH3_64bits(text.data(), text.size());
}

}  // namespace deltatap
