#include "cli/table.h"

#include <algorithm>
#include <optional>
#include <ostream>

namespace deltatap::cli {

void Table::print(std::ostream& out, const Style& style) const {
  std::vector<std::size_t> widths(headers.size());
  for (std::size_t c = 0; c < headers.size(); ++c) widths[c] = display_width(headers[c]);
  for (const auto& row : rows) {
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
  line(headers, std::nullopt);
  for (std::size_t r = 0; r < rows.size(); ++r) line(rows[r], r);
}

}  // namespace deltatap::cli
