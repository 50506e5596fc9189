// Config values: how each kind of value a key takes is read and checked
// (sizes, booleans, levels, log formats, URLs, listen addresses, headers,
// paths, PostgreSQL connection strings), and the error each gives: the
// value parsers behind the key table (service/config_keys.h), kept apart
// from the table itself so that either reads on its own.
//
// Every parser returns the value, or an Error that names where the value came
// from (Origin), quotes it JSON-escaped (secrets never) and says what is
// allowed. Pure functions; any thread. Internal to service/.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "service/config_keys.h"

namespace deltatap {

using Millis = std::chrono::milliseconds;

// What the keys allow: each text is both the "(expected ...)" of its errors
// and the allowed values of the key in deltatap.conf(5).
inline constexpr std::string_view kSizeExpected =
    "a positive size in bytes, or with a unit KiB, MiB or GiB, e.g. 16MiB or 1024KiB";
inline constexpr std::string_view kBoolExpected = "on, off, true, false, yes, no, 1 or 0";
inline constexpr std::string_view kLevelExpected = "debug, info, warning or error";
inline constexpr std::string_view kFormatExpected =
    "journal, text, json, or auto (journal under systemd, else text)";
inline constexpr std::string_view kUrlExpected =
    "a ws:// or wss:// URL with a host, e.g. ws://127.0.0.1:3001/ws";
inline constexpr std::string_view kReconcileUrlExpected =
    "an http:// or https:// URL with a host, e.g. https://backend.example/api/sessions, or empty "
    "to derive it from url";
inline constexpr std::string_view kPathExpected =
    "a path that is not empty or only white space, e.g. data/sessions.sqlite";
inline constexpr std::string_view kCaFileExpected =
    "an existing readable regular file of PEM CA certificates, or empty for the system's only";
inline constexpr std::string_view kMaxDeltasExpected = "an integer >= 0; 0 means no limit";
inline constexpr std::string_view kCompressionExpected =
    "off (the states as JSON text) or zstd (compressed with a dictionary trained on the store's "
    "own states)";
inline constexpr std::string_view kDaysExpected = "an integer >= 0, e.g. 30; 0 keeps everything";
inline constexpr std::string_view kArchiveExpected =
    "on or off (also true, false, yes, no, 1 or 0); on needs [storage] enabled";
inline constexpr std::string_view kArchiveDaysExpected =
    "an integer >= 0, e.g. 365; 0 keeps every archive file";
inline constexpr std::string_view kTokenAllowed =
    "a token without white space, control characters or commas, such as a hex or base64url "
    "string; empty for none";
inline constexpr std::string_view kListenAllowed =
    "IP:PORT or [IPv6]:PORT with a port from 1 to 65535; empty disables the HTTP API";
inline constexpr std::string_view kPersistExpected = "1 to store deltas or 0 not to";
inline constexpr std::string_view kMillisExpected = "a positive integer, e.g. 60000";
inline constexpr std::string_view kPostgresUrlExpected =
    "a libpq connection string or URI, e.g. postgresql://deltatap@db.example/deltatap or "
    "\"host=/run/postgresql dbname=deltatap\"; empty: no PostgreSQL sink";
inline constexpr std::string_view kSourceExpected =
    "a name of 1 to 200 characters without control characters, e.g. control-room-1; empty: the "
    "host name";

std::string lower(std::string_view s);
Error invalid(const Origin& origin, std::string_view value, std::string_view what,
              std::string_view expected);
Error invalid_secret(const Origin& origin, std::string_view problem);
bool all_digits(std::string_view s);
std::optional<std::int64_t> parse_integer(std::string_view s);
Result<Millis> read_duration(std::string_view value, const Origin& origin);
Result<std::uint64_t> parse_size(std::string_view value, const Origin& origin);
Result<bool> parse_bool(std::string_view value, const Origin& origin);
Result<LogLevel> parse_level(std::string_view value, const Origin& origin);
Result<std::optional<LogFormat>> parse_format(std::string_view value, const Origin& origin);
Result<Compression> parse_compression(std::string_view value, const Origin& origin);
Status check_url(std::string_view value, const Origin& origin);
Status check_reconcile_url(std::string_view value, const Origin& origin);
Status check_listen(std::string_view value, const Origin& origin);
Status check_header(std::string_view value, const Origin& origin);
Status check_path(std::string_view value, const Origin& origin, std::string_view empty_means);
Status check_readable_file(std::string_view value, const Origin& origin, std::string_view expected);
Status check_postgres_url(std::string_view value, const Origin& origin);
Status check_source(std::string_view value, const Origin& origin);

}  // namespace deltatap
