#include "cli/table.h"

#include <algorithm>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace deltatap::cli {

namespace {

std::vector<std::string> escaped(const std::vector<std::string>& cells) {
  std::vector<std::string> out;
  out.reserve(cells.size());
  for (const auto& cell : cells) out.push_back(escape_controls(cell));
  return out;
}

}  // namespace

void Table::print(std::ostream& out, const Style& style) const {
  // Escaped first, so that widths are those of what is printed.
  std::vector<std::string> shown_headers = escaped(headers);
  std::vector<std::vector<std::string>> shown_rows;
  shown_rows.reserve(rows.size());
  for (const auto& row : rows) shown_rows.push_back(escaped(row));

  std::vector<std::size_t> widths(shown_headers.size());
  for (std::size_t c = 0; c < shown_headers.size(); ++c) widths[c] = display_width(shown_headers[c]);
  for (const auto& row : shown_rows) {
    for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], display_width(row[c]));
    }
  }
  auto line = [&](const std::vector<std::string>& cells, std::optional<std::size_t> row) {
    std::string text;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      bool last = c + 1 == cells.size();
      std::string cell = cells[c];
      if (!last) cell += std::string(widths[c] - display_width(cells[c]), ' ');
      std::string_view code = !row ? std::string_view("1") : colour ? colour(*row, c) : "";
      text += code.empty() ? cell : style.paint(cell, code);
      if (!last) text += "  ";
    }
    out << text << '\n';
  };
  line(shown_headers, std::nullopt);
  for (std::size_t r = 0; r < shown_rows.size(); ++r) line(shown_rows[r], r);
}

}  // namespace deltatap::cli
