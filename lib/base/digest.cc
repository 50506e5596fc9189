#include "base/digest.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <vector>

#include "base/files.h"

namespace deltatap {

namespace {

std::string digest_text(XXH128_hash_t hash, std::uint64_t size) {
  char text[80];
  std::snprintf(text, sizeof text, "xxh3-128 %016llx%016llx %llu",
                static_cast<unsigned long long>(hash.high64),
                static_cast<unsigned long long>(hash.low64),
                static_cast<unsigned long long>(size));
  return text;
}

struct StateFree {
  void operator()(XXH3_state_t* state) const { XXH3_freeState(state); }
};

}  // namespace

std::uint64_t digest_of(std::string_view text) {
  return XXH3_64bits(text.data(), text.size());
}

std::string file_digest(std::string_view bytes) {
  return digest_text(XXH3_128bits(bytes.data(), bytes.size()), bytes.size());
}

Result<std::string> file_digest(int fd, std::string_view path) {
  std::unique_ptr<XXH3_state_t, StateFree> state(XXH3_createState());
  if (!state || XXH3_128bits_reset(state.get()) != XXH_OK) {
    return Error{"cannot start the digest of " + std::string(path)};
  }
  std::vector<char> piece(4 << 20);
  std::uint64_t offset = 0;
  for (;;) {
    ssize_t n = ::pread(fd, piece.data(), piece.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{errno_text("cannot read", path)};
    if (n == 0) break;
    XXH3_128bits_update(state.get(), piece.data(), static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return digest_text(XXH3_128bits_digest(state.get()), offset);
}

Result<std::string> file_digest(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{errno_text("cannot open", path)};
  auto digest = file_digest(fd, path);
  ::close(fd);
  return digest;
}

}  // namespace deltatap
