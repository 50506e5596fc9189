// digest_of: a 64-bit digest of a text, stable across builds and machines
// (XXH3-64, seed 0), for telling quickly whether two texts are the same.
//
// The session ledger keeps the digest of each session's last state, so that
// checking that a delta starts from that state costs one hash of its before
// state instead of a read of the stored one. Equal digests are taken as equal
// texts; unequal ones are then compared as JSON values, so a collision could
// only ever hide a change, never invent one, and at 2^-64 it does not.
//
// Pure function: any thread may call it.
#pragma once

#include <cstdint>
#include <string_view>

namespace deltatap {

std::uint64_t digest_of(std::string_view text);

}  // namespace deltatap
