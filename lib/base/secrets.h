// Secrets: reading a token (or any credential) from a file.
//
// The secret never appears in an error message; the path does.
//
// Thread safety: safe to call from any thread; no state is kept.
#pragma once

#include <cstddef>
#include <string>

#include "base/result.h"

namespace deltatap {

// The largest secret file read_secret_file() accepts.
inline constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

// Reads the secret held in the regular file `path`. With `require_private`,
// a file that group or others may read is refused, unread (a file in a
// directory only its owner can enter, such as systemd's
// $CREDENTIALS_DIRECTORY, may be read without that check).
//
// On success, the file's contents minus one trailing newline ("\n" or
// "\r\n"), possibly empty: whether an empty secret is an error is the caller's
// call. On error (cannot open or read it, not a regular file, readable by
// group or others, larger than kMaxSecretFileBytes) a message that names the
// file (JSON-quoted) and, for a mode refused, its mode and the chmod that fixes
// it.
Result<std::string> read_secret_file(const std::string& path, bool require_private = true);

}  // namespace deltatap
