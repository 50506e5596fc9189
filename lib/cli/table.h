// table: rows of text in aligned columns, for the terminal.
//
// Columns are as wide as their widest cell (human_text.h's display_width) and
// two spaces apart; the last column is not padded, so no line ends in spaces.
// The header line is bold when colour is on. Every cell (headers too) is put
// through escape_controls() before it is measured or printed, so no cell,
// whatever the stream put in it, can move the cursor or talk to the terminal;
// otherwise cells are printed as given: a caller that wants a cell short clips
// it first.
#pragma once

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "cli/human_text.h"

namespace deltatap::cli {

struct Table {
  std::vector<std::string> headers;
  // Each row has exactly one cell per header.
  std::vector<std::vector<std::string>> rows;
  // The colour code for a cell, or "" for none; may be left empty. Applied after
  // padding, so escape sequences never count towards a width. Called with the
  // indices of `rows`, whose cells it may read as given (unescaped).
  std::function<std::string_view(std::size_t row, std::size_t column)> colour;

  // Writes the header line and then every row, each ending in '\n'.
  void print(std::ostream& out, const Style& style) const;
};

}  // namespace deltatap::cli
