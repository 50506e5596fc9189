// digest_of: a 64-bit digest of a text, stable across builds and machines
// (XXH3-64, seed 0), for telling quickly whether two texts are the same.
//
// The session ledger keeps the digest of each session's last state, so that
// checking that a delta starts from that state costs one hash of its before
// state instead of a read of the stored one. Equal digests are taken as equal
// texts; unequal ones are then compared as JSON values, so a collision could
// only ever hide a change, never invent one, and at 2^-64 it does not.
//
// file_digest: the same idea for a whole file, as text a person can read and
// compare: "xxh3-128 <32 hex digits> <size in bytes>" (XXH3-128, seed 0). A
// snapshot's digest lets a start trust that the file is the one a snapshot
// wrote without reading every page through SQLite (storage/snapshot.h). It is
// a check against accidents (a torn copy, a bad disk), not a signature:
// whoever can write the file can write its digest.
//
// Pure functions: any thread may call them. file_digest reads with pread (the
// descriptor's offset does not move) in pieces of 4 MiB, to the file's end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace deltatap {

std::uint64_t digest_of(std::string_view text);

// The digest text of `bytes`.
std::string file_digest(std::string_view bytes);
// The digest text of the file open as `fd`; an error names `path` and the
// failed read.
Result<std::string> file_digest(int fd, std::string_view path);
// As above, opening `path` for reading.
Result<std::string> file_digest(const std::string& path);

}  // namespace deltatap
