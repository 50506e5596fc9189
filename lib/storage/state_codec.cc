// StateCodec with libzstd: one compression and one decompression context per
// codec, and per dictionary its bytes and, made on first use, its digested
// forms (ZSTD_CDict for the newest, ZSTD_DDict for any), so a value costs one
// frame's work and never a dictionary's preparation.
//
// Built twice: into deltatap_lib, and into the loadable SQLite extension
// (tools/sqlite_extension.cc), where DELTATAP_SQLITE_EXTENSION makes every
// sqlite3_* call below go through the host's API table (sqlite3ext.h), so the
// extension uses the shell's own SQLite whatever that is linked as.
#ifdef DELTATAP_SQLITE_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#endif

#include "storage/state_codec.h"

#include "storage/state_chain.h"

#include <sqlite3.h>
#include <zdict.h>
#include <zstd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <utility>
#include <vector>

namespace deltatap {

namespace {

constexpr std::size_t kHeaderBytes = 5;  // the tag and the dictionary id
constexpr std::size_t kPrefixedHeaderBytes = 2;  // the tag and the depth
constexpr int kLevel = 3;
// A dictionary's size: the measurement (6.0x on the simulator's
// states) used 112 KB; ZDICT needs samples of about 100x its size to fill it,
// and trims it when they are fewer.
constexpr std::size_t kDictionaryCapacity = 112 * 1024;
// No state is this large (the parser refuses far smaller messages): a frame
// saying it holds more is corrupt, and is not given the memory it asks for.
constexpr unsigned long long kMaxDecodedBytes = 1ULL << 30;

std::string sql_error(sqlite3* db, const char* what) {
  return std::string("state_dictionaries: ") + what + ": " + sqlite3_errmsg(db);
}

std::uint32_t get_id(std::string_view value) {
  std::uint32_t id = 0;
  for (int i = 0; i < 4; ++i) id |= std::uint32_t{static_cast<unsigned char>(value[1 + i])} << (8 * i);
  return id;
}

std::string now_text() {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

struct StateCodec::Impl {
  struct ZstdFree {
    void operator()(ZSTD_CCtx* p) const { ZSTD_freeCCtx(p); }
    void operator()(ZSTD_DCtx* p) const { ZSTD_freeDCtx(p); }
    void operator()(ZSTD_CDict* p) const { ZSTD_freeCDict(p); }
    void operator()(ZSTD_DDict* p) const { ZSTD_freeDDict(p); }
  };
  struct Dictionary {
    std::string bytes;
    std::unique_ptr<ZSTD_CDict, ZstdFree> cdict;  // made when it is the newest and used
    std::unique_ptr<ZSTD_DDict, ZstdFree> ddict;  // made on the first decode needing it
  };
  std::map<std::uint32_t, Dictionary> dictionaries;
  std::uint32_t newest = 0;
  std::unique_ptr<ZSTD_CCtx, ZstdFree> cctx{ZSTD_createCCtx()};
  std::unique_ptr<ZSTD_DCtx, ZstdFree> dctx{ZSTD_createDCtx()};

  void add(std::uint32_t id, std::string bytes) {
    auto& entry = dictionaries[id];
    if (entry.bytes != bytes) {  // a known id keeps its prepared forms
      entry = Dictionary{std::move(bytes), nullptr, nullptr};
    }
    if (id > newest) newest = id;
  }
};

StateCodec::StateCodec() : impl_(std::make_unique<Impl>()) {}
StateCodec::~StateCodec() = default;
StateCodec::StateCodec(StateCodec&&) noexcept = default;
StateCodec& StateCodec::operator=(StateCodec&&) noexcept = default;

Status StateCodec::load(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT id, bytes FROM state_dictionaries ORDER BY id", -1, &stmt,
                         nullptr) != SQLITE_OK) {
    return Error{sql_error(db, "read")};
  }
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    auto id = sqlite3_column_int64(stmt, 0);
    auto bytes = static_cast<const char*>(sqlite3_column_blob(stmt, 1));
    auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, 1));
    if (id <= 0 || id > 0xffffffffLL) continue;  // no value can name it
    impl_->add(static_cast<std::uint32_t>(id), std::string(bytes ? bytes : "", size));
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error{sql_error(db, "read")};
  return ok_status();
}

bool StateCodec::has_dictionary() const { return impl_->newest != 0; }

std::uint32_t StateCodec::newest_dictionary() const { return impl_->newest; }

namespace {

// The frame parameters every form shares. The content size lets a decode size
// its output exactly; the checksum lets check() tell a damaged value from a
// good one; the frame does not repeat the dictionary's id, which the header
// holds.
void set_frame_parameters(ZSTD_CCtx* cctx) {
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, kLevel);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_dictIDFlag, 0);
}

// The size a frame says it holds, or an error naming `what`.
Result<std::size_t> content_size(std::string_view frame, const std::string& what) {
  auto size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
      size > kMaxDecodedBytes) {
    return Error{"encoded state (" + what + "): not a zstd frame"};
  }
  return static_cast<std::size_t>(size);
}

}  // namespace

std::string StateCodec::encode(std::string_view json) {
  std::uint32_t id = impl_->newest;
  std::string out;
  out.resize(kHeaderBytes + ZSTD_compressBound(json.size()));
  out[0] = kEncodedTag;
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<char>((id >> (8 * i)) & 0xff);
  ZSTD_CCtx* cctx = impl_->cctx.get();
  set_frame_parameters(cctx);
  if (id != 0) {
    auto& dict = impl_->dictionaries[id];
    if (!dict.cdict) {
      dict.cdict.reset(ZSTD_createCDict(dict.bytes.data(), dict.bytes.size(), kLevel));
    }
    ZSTD_CCtx_refCDict(cctx, dict.cdict.get());
  }
  std::size_t written = ZSTD_compress2(cctx, out.data() + kHeaderBytes, out.size() - kHeaderBytes,
                                       json.data(), json.size());
  // Into a buffer of ZSTD_compressBound this fails only short of memory (a
  // dictionary that could not be prepared): then without the dictionary.
  if (ZSTD_isError(written)) {
    std::memset(out.data() + 1, 0, 4);
    written = ZSTD_compress(out.data() + kHeaderBytes, out.size() - kHeaderBytes, json.data(),
                            json.size(), kLevel);
  }
  out.resize(kHeaderBytes + written);
  return out;
}

std::string StateCodec::encode_against(std::string_view json, std::string_view before, int depth) {
  std::string out;
  out.resize(kPrefixedHeaderBytes + ZSTD_compressBound(json.size()));
  out[0] = kPrefixedTag;
  out[1] = static_cast<char>(depth);
  ZSTD_CCtx* cctx = impl_->cctx.get();
  set_frame_parameters(cctx);
  // A prefix is used for this one frame only, and costs no preparation.
  ZSTD_CCtx_refPrefix(cctx, before.data(), before.size());
  std::size_t written = ZSTD_compress2(cctx, out.data() + kPrefixedHeaderBytes,
                                       out.size() - kPrefixedHeaderBytes, json.data(), json.size());
  if (ZSTD_isError(written)) return encode(json);  // short of memory: the dictionary form
  out.resize(kPrefixedHeaderBytes + written);
  return out;
}

bool StateCodec::is_encoded(std::string_view value) {
  // A JSON text never starts with the tag (a letter other than t, f, n).
  return value.size() >= kHeaderBytes && value[0] == kEncodedTag;
}

bool StateCodec::is_prefixed(std::string_view value) {
  return value.size() >= kPrefixedHeaderBytes && value[0] == kPrefixedTag;
}

int StateCodec::depth_of(std::string_view value) {
  return is_prefixed(value) ? static_cast<unsigned char>(value[1]) : 0;
}

Result<std::string> StateCodec::decode(std::string_view value) {
  if (is_prefixed(value)) {
    return Error{"a prefixed after state needs its row's before state to decode"};
  }
  if (!is_encoded(value)) return std::string(value);
  std::uint32_t id = get_id(value);
  auto frame = value.substr(kHeaderBytes);
  ZSTD_DDict* ddict = nullptr;
  if (id != 0) {
    auto found = impl_->dictionaries.find(id);
    if (found == impl_->dictionaries.end()) {
      return Error{"encoded state needs dictionary " + std::to_string(id) +
                   ", which state_dictionaries does not hold"};
    }
    if (!found->second.ddict) {
      found->second.ddict.reset(
          ZSTD_createDDict(found->second.bytes.data(), found->second.bytes.size()));
    }
    ddict = found->second.ddict.get();
  }
  auto size = content_size(frame, "dictionary " + std::to_string(id));
  if (!size.ok()) return Error{size.error()};
  std::string out(*size, '\0');
  // No prefix left over from a prefixed value that failed part way.
  ZSTD_DCtx_reset(impl_->dctx.get(), ZSTD_reset_session_and_parameters);
  std::size_t got =
      ddict ? ZSTD_decompress_usingDDict(impl_->dctx.get(), out.data(), out.size(), frame.data(),
                                         frame.size(), ddict)
            : ZSTD_decompressDCtx(impl_->dctx.get(), out.data(), out.size(), frame.data(),
                                  frame.size());
  if (ZSTD_isError(got) || got != out.size()) {
    return Error{"encoded state (dictionary " + std::to_string(id) +
                 "): " + (ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short frame")};
  }
  return out;
}

Result<std::string> StateCodec::decode_against(std::string_view value, std::string_view before) {
  if (!is_prefixed(value)) return decode(value);
  auto frame = value.substr(kPrefixedHeaderBytes);
  auto size = content_size(frame, "prefixed");
  if (!size.ok()) return Error{size.error()};
  std::string out(*size, '\0');
  ZSTD_DCtx* dctx = impl_->dctx.get();
  ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters);
  ZSTD_DCtx_refPrefix(dctx, before.data(), before.size());
  std::size_t got = ZSTD_decompressDCtx(dctx, out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(got) || got != out.size()) {
    return Error{std::string("encoded state (prefixed): ") +
                 (ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short frame")};
  }
  return out;
}

Result<std::string> StateCodec::train_bytes(std::span<const std::string> samples) {
  std::string joined;
  std::vector<std::size_t> sizes;
  sizes.reserve(samples.size());
  for (const auto& sample : samples) {
    joined += sample;
    sizes.push_back(sample.size());
  }
  std::string dictionary(kDictionaryCapacity, '\0');
  auto size = ZDICT_trainFromBuffer(dictionary.data(), dictionary.size(), joined.data(),
                                    sizes.data(), static_cast<unsigned>(sizes.size()));
  if (ZDICT_isError(size)) {
    return Error{std::string("train a dictionary on ") + std::to_string(samples.size()) +
                 " states: " + ZDICT_getErrorName(size)};
  }
  dictionary.resize(size);
  return dictionary;
}

Result<std::uint32_t> StateCodec::add_dictionary(sqlite3* db, std::string_view bytes,
                                                 std::size_t samples) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO state_dictionaries (id, trained_at, samples, bytes) "
                         "VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM state_dictionaries), "
                         "?1, ?2, ?3)",
                         -1, &stmt, nullptr) != SQLITE_OK) {
    return Error{sql_error(db, "add")};
  }
  auto at = now_text();
  sqlite3_bind_text(stmt, 1, at.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(samples));
  sqlite3_bind_blob64(stmt, 3, bytes.data(), bytes.size(), SQLITE_STATIC);
  int rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return Error{sql_error(db, "add")};
  auto id = sqlite3_last_insert_rowid(db);
  if (id <= 0 || id > 0xffffffffLL) return Error{"state_dictionaries: id out of range"};
  impl_->add(static_cast<std::uint32_t>(id), std::string(bytes));
  return static_cast<std::uint32_t>(id);
}

Result<std::uint32_t> StateCodec::train(sqlite3* db, std::span<const std::string> samples) {
  auto bytes = train_bytes(samples);
  if (!bytes.ok()) return Error{bytes.error()};
  return add_dictionary(db, *bytes, samples.size());
}

namespace {

// deltatap_json(value). The codec (the function's user data) is loaded from
// the calling database on first use, and again when a value names a
// dictionary it has not seen (the store trained one since).
struct SqlFunctionState {
  StateCodec codec;
  StateChain chain{codec, 4u << 20, StateChain::Statement::per_call};
  bool loaded = false;
};

void json_sql_function(sqlite3_context* context, int, sqlite3_value** args) {
  int type = sqlite3_value_type(args[0]);
  if (type != SQLITE_BLOB) {  // NULL and TEXT are what they say
    sqlite3_result_value(context, args[0]);
    return;
  }
  auto* state = static_cast<SqlFunctionState*>(sqlite3_user_data(context));
  auto blob = static_cast<const char*>(sqlite3_value_blob(args[0]));
  std::string_view value(blob ? blob : "", static_cast<std::size_t>(sqlite3_value_bytes(args[0])));
  if (!StateCodec::is_encoded(value)) {
    sqlite3_result_error(context, "deltatap_json: a BLOB that is not an encoded state", -1);
    return;
  }
  auto decoded = state->codec.decode(value);
  if (!decoded.ok() && (!state->loaded || get_id(value) > state->codec.newest_dictionary())) {
    sqlite3* db = sqlite3_context_db_handle(context);
    if (auto s = state->codec.load(db); !s.ok()) {
      sqlite3_result_error(context, ("deltatap_json: " + s.error()).c_str(), -1);
      return;
    }
    state->loaded = true;
    decoded = state->codec.decode(value);
  }
  if (!decoded.ok()) {
    sqlite3_result_error(context, ("deltatap_json: " + decoded.error()).c_str(), -1);
    return;
  }
  sqlite3_result_text64(context, decoded->data(), decoded->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

// deltatap_after(after_state, before_state, before_ref): a row's after state
// in any form, a prefixed one decoded against its before state (read from the
// calling database, state_chain.h). Dictionaries are loaded as for
// deltatap_json, and again once when a value names one not seen yet.
void after_sql_function(sqlite3_context* context, int, sqlite3_value** args) {
  auto after = StateChain::stored(args[0]);
  if (after.type != SQLITE_BLOB) {
    sqlite3_result_value(context, args[0]);
    return;
  }
  auto* state = static_cast<SqlFunctionState*>(sqlite3_user_data(context));
  sqlite3* db = sqlite3_context_db_handle(context);
  auto before = StateChain::stored(args[1]);
  std::int64_t ref = sqlite3_value_type(args[2]) == SQLITE_NULL ? 0 : sqlite3_value_int64(args[2]);
  auto decoded = state->chain.after(db, after, before, ref, 0);
  if (!decoded.ok() && decoded.error().find("dictionary") != std::string::npos) {
    if (auto s = state->codec.load(db); !s.ok()) {
      sqlite3_result_error(context, ("deltatap_after: " + s.error()).c_str(), -1);
      return;
    }
    state->loaded = true;
    decoded = state->chain.after(db, after, before, ref, 0);
  }
  if (!decoded.ok()) {
    sqlite3_result_error(context, ("deltatap_after: " + decoded.error()).c_str(), -1);
    return;
  }
  const std::string& text = **decoded;
  sqlite3_result_text64(context, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void destroy_state(void* p) { delete static_cast<SqlFunctionState*>(p); }

}  // namespace

Status StateCodec::register_sql_function(sqlite3* db) {
  // Not SQLITE_DIRECTONLY: the view session_deltas_json uses it. Innocuous
  // (it only reads the database's own dictionaries), so it may be used in a
  // view with trusted_schema off.
  auto* state = new SqlFunctionState;
  if (sqlite3_create_function_v2(db, "deltatap_json", 1,
                                 SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, state,
                                 json_sql_function, nullptr, nullptr,
                                 destroy_state) != SQLITE_OK) {
    // sqlite3_create_function_v2 calls destroy_state itself on failure.
    return Error{std::string("register deltatap_json: ") + sqlite3_errmsg(db)};
  }
  // Not deterministic: it reads other rows of the database.
  auto* chain_state = new SqlFunctionState;
  if (sqlite3_create_function_v2(db, "deltatap_after", 3, SQLITE_UTF8 | SQLITE_INNOCUOUS,
                                 chain_state, after_sql_function, nullptr, nullptr,
                                 destroy_state) != SQLITE_OK) {
    return Error{std::string("register deltatap_after: ") + sqlite3_errmsg(db)};
  }
  return ok_status();
}

}  // namespace deltatap
