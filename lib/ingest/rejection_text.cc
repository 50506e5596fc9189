#include "ingest/rejection_text.h"

namespace deltatap {

std::string quote_short(std::string_view text) {
  constexpr std::size_t kShown = 64;
  std::string out = "\"";
  out.append(text.substr(0, kShown));
  if (text.size() > kShown) out += "...";
  out += "\"";
  return out;
}

Rejection make_rejection(std::string reason, std::string detail, std::string_view raw) {
  if (raw.size() > kMaxRawBytes) {
    std::size_t cut = kMaxRawBytes;
    // Back off over UTF-8 continuation bytes so the kept text stays valid UTF-8.
    for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(raw[cut]) & 0xC0) == 0x80; ++i) {
      --cut;
    }
    detail += " (raw text cut to " + std::to_string(cut) + " of " + std::to_string(raw.size()) +
              " bytes)";
    raw = raw.substr(0, cut);
  }
  return Rejection{std::move(reason), std::move(detail), std::string(raw)};
}

}  // namespace deltatap
