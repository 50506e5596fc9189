// HttpOptions: where the HTTP API listens and the token it asks for.
#pragma once

#include <string>

namespace deltatap {

struct HttpOptions {
  std::string listen = "127.0.0.1:9477";     // empty disables the API
  std::string token;                         // when set, every request needs it
};

}  // namespace deltatap
