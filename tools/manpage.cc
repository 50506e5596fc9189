// manpage: writes deltatap's manual pages from what the programs themselves
// print, so that a page cannot say something the program does not:
//
//   deltatapd(8)       kDeltatapdUsage (deltatapd --help) and the environment table
//   deltatap(1)        cli::kUsageText (deltatap --help) and every command's help
//                      (deltatap COMMAND --help)
//   deltatap-sim(1)    kSimulatorUsage (deltatap-sim --help)
//   deltatap.conf(5)   the key table (service/config_keys.h: every key, what it
//                      allows, what it does, its variables and options) and the
//                      defaults as --check-config prints them (describe_config)
//
// The help texts are read as they are laid out: a "usage:" line (and its
// indented continuation lines) is the synopsis; a line indented by two spaces,
// "  TERM  description", starts an item, and deeper indented lines continue it;
// a block of lines indented by four spaces or more is an example, kept as it
// is; text at the left margin is prose, and a prose paragraph whose label is
// "Signals:", "Exit status:" (...) goes to the section of that name. What the
// help texts leave out (what a program is for, files, signals, the systemd
// environment) is prose written here, kept short.
//
// Usage: deltatap_manpage DIR
// writes DIR/deltatapd.8, DIR/deltatap.1, DIR/deltatap-sim.1 and
// DIR/deltatap.conf.5 (each through a temporary file and a rename). Built by
// cmake/manpages.cmake (the `manpages` target), never installed itself;
// tests/manpages_test.cc checks the pages against the programs' --help and the
// key table, and runs them through man --warnings.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "base/duration.h"
#include "cli/args.h"
#include "service/command_line.h"
#include "service/config.h"
#include "service/config_keys.h"
#include "sim/simulator.h"

namespace deltatap {
namespace {

namespace fs = std::filesystem;

// ---- roff text -----------------------------------------------------------------

// Text as it may stand in a roff text line: a backslash as \e, a character
// beyond ASCII as \[uXXXX], and the hyphens of an option name ("--db", "-h",
// "--log-level", a lone "-") as \- (the minus sign, which is what a reader
// copies into a shell); other hyphens (read-only, ISO-8601) stay hyphens.
std::string escape(std::string_view text) {
  std::string out;
  bool in_option = false;  // within a word that started with '-'
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // UTF-8: the lead byte says how many continuation bytes follow.
      int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
      unsigned code = c & (0x3f >> extra);
      for (int k = 0; k < extra && i + 1 < text.size(); ++k) {
        code = (code << 6) | (static_cast<unsigned char>(text[++i]) & 0x3f);
      }
      char buffer[16];
      std::snprintf(buffer, sizeof buffer, "\\[u%04X]", code);
      out += buffer;
      in_option = false;
      continue;
    }
    if (c == '-') {
      bool word_start = i == 0 || !(std::isalnum(static_cast<unsigned char>(text[i - 1])) ||
                                    text[i - 1] == '_' || text[i - 1] == '.');
      if (in_option || word_start) {
        out += "\\-";
        in_option = true;
        continue;
      }
    } else if (!std::isalnum(c)) {
      in_option = false;
    }
    if (c == '\\') {
      out += "\\e";
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// What is typed as it stands (options, names, paths, values): every hyphen
// is a \-, in "deltatap-sim" as in "--log-level".
std::string literal(std::string_view text) {
  std::string out;
  for (char c : escape(text)) {
    if (c == '-' && (out.empty() || out.back() != '\\')) out += '\\';
    out += c;
  }
  return out;
}

std::string bold(std::string_view text) { return "\\fB" + literal(text) + "\\fR"; }
std::string italic(std::string_view text) { return "\\fI" + escape(text) + "\\fR"; }

// Running text: escaped, with the options it names ("--count") in bold.
std::string prose(std::string_view text) {
  static const std::regex option(R"((^|[\s(\["'/])((?:\\-){1,2}[A-Za-z][A-Za-z0-9]*(?:\\-[A-Za-z0-9]+)*))");
  return std::regex_replace(escape(text), option, "$1\\fB$2\\fR");
}

// A text line of the output: one that would start with a control character
// ('.' or '\'') gets the zero-width \& in front.
std::string line(std::string text) {
  if (!text.empty() && (text.front() == '.' || text.front() == '\'')) text = "\\&" + text;
  return text + "\n";
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == ':' || c == '.';
}

// A synopsis: the first `names` words (the program, the command) and every
// option in bold, placeholders (FILE, SESSION_ID, ISO-8601) in italics, the
// rest (brackets, bars, literal values) in roman; an option in brackets is
// not broken across lines.
std::string synopsis(std::string_view text, int names) {
  std::string out;
  int word = 0;
  int depth = 0;  // within [...]: spaces do not break the line ("[--since TIME]")
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_word_char(text[i])) {
      if (text[i] == '[') ++depth;
      if (text[i] == ']' && depth > 0) --depth;
      out += text[i] == ' ' && depth > 0 ? "\\ " : escape(text.substr(i, 1));
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && is_word_char(text[end])) ++end;
    std::string_view w = text.substr(i, end - i);
    bool placeholder = std::isupper(static_cast<unsigned char>(w.front()));
    for (char c : w) {
      placeholder = placeholder && !std::islower(static_cast<unsigned char>(c));
    }
    if (word < names || w.front() == '-') out += bold(w);
    else if (placeholder) out += italic(w);
    else out += escape(w);
    ++word;
    i = end;
  }
  return out;
}

// The tag of an item: "--listen IP:PORT" as \fB--listen\fR \fIIP:PORT\fR,
// "-h, --help" with both in bold, "timeline ID" with the command in bold.
std::string tag(std::string_view term) {
  std::string out;
  bool first = true;
  while (!term.empty()) {
    std::size_t space = term.find(' ');
    std::string_view w = term.substr(0, space);
    term = space == std::string_view::npos ? std::string_view{} : term.substr(space + 1);
    if (w.empty()) continue;
    std::string_view comma = w.back() == ',' ? "," : "";
    if (!comma.empty()) w.remove_suffix(1);
    if (!first) out += ' ';
    out += (first || w.front() == '-') ? bold(w) : italic(w);
    out += comma;
    first = false;
  }
  return out;
}

// ---- help texts ----------------------------------------------------------------

struct Item {
  std::string term;
  std::string text;
};

struct Para {
  enum class Kind { usage, prose, items, verbatim };
  Kind kind;
  std::string text;                // prose: the joined lines; items: the heading line, if any
  std::vector<std::string> lines;  // usage and verbatim
  std::vector<Item> items;

  // "Signals" for prose that reads "Signals: SIGTERM/SIGINT stop ...".
  std::string label() const {
    if (kind != Kind::prose || text.empty() || !std::isupper(static_cast<unsigned char>(text[0]))) return "";
    std::size_t colon = text.find(": ");
    if (colon == std::string::npos || colon > 40) return "";
    std::string_view head(text.data(), colon);
    if (head.find_first_of("(\"{[.") != std::string_view::npos) return "";
    return std::string(head);
  }
  // The prose after its label.
  std::string body() const {
    std::string l = label();
    return l.empty() ? text : text.substr(l.size() + 2);
  }
};

std::string_view trim_view(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// `text` with each run of spaces as one: help texts align with spaces, which
// filled roff text would keep.
std::string collapse(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  return lines;
}

std::vector<Para> parse_help(std::string_view help) {
  std::vector<Para> paras;
  auto lines = split_lines(help);
  std::size_t i = 0;
  auto starts_usage = [](std::string_view l) { return l.starts_with("usage:") || l.starts_with("Usage:"); };
  if (!lines.empty() && starts_usage(lines[0])) {
    Para usage{Para::Kind::usage};
    usage.lines.emplace_back(trim_view(lines[0].substr(6)));
    for (i = 1; i < lines.size() && lines[i].starts_with(' ') && !trim_view(lines[i]).empty(); ++i) {
      usage.lines.emplace_back(trim_view(lines[i]));
    }
    paras.push_back(std::move(usage));
  }
  bool open = false;  // the last paragraph goes on (no blank line since)
  std::string_view previous;
  for (; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    if (trim_view(l).empty()) {
      open = false;
      continue;
    }
    std::size_t indent = l.find_first_not_of(' ');
    Para* last = open && !paras.empty() ? &paras.back() : nullptr;
    if (indent == 0) {
      // A sentence that starts a line after one that ended a sentence starts
      // a paragraph ("Exit status: ..." after "... snapshots now.").
      bool new_sentence = previous.ends_with('.') && std::isupper(static_cast<unsigned char>(l[0]));
      if (last && last->kind == Para::Kind::prose && !new_sentence) {
        last->text += ' ';
        last->text += collapse(l);
      } else {
        paras.push_back(Para{Para::Kind::prose, collapse(l)});
      }
    } else if (indent == 2 && !(last && last->kind == Para::Kind::verbatim)) {
      std::string_view rest = l.substr(2);
      std::size_t gap = rest.find("  ");
      Item item{collapse(trim_view(rest.substr(0, gap))),
                gap == std::string_view::npos ? "" : collapse(trim_view(rest.substr(gap)))};
      if (!(last && last->kind == Para::Kind::items)) {
        Para list{Para::Kind::items};
        // A prose line ending in ':' just before the list is its heading.
        if (last && last->kind == Para::Kind::prose && last->text.ends_with(':')) {
          list.text = std::move(last->text);
          paras.pop_back();
        }
        paras.push_back(std::move(list));
      }
      paras.back().items.push_back(std::move(item));
    } else if (last && last->kind == Para::Kind::items) {
      std::string& text = last->items.back().text;
      if (!text.empty()) text += ' ';
      text += collapse(trim_view(l));
    } else {
      if (!(last && last->kind == Para::Kind::verbatim)) paras.push_back(Para{Para::Kind::verbatim});
      paras.back().lines.emplace_back(l.substr(std::min<std::size_t>(indent, 4)));
    }
    open = true;
    previous = trim_view(l);
  }
  return paras;
}

// ---- a page --------------------------------------------------------------------

class Page {
 public:
  // `sections`: the order of the .SH sections; one left empty is not written.
  Page(std::string name, int section, std::string manual, std::string summary,
       std::vector<std::string> sections)
      : name_(std::move(name)), section_(section), manual_(std::move(manual)),
        summary_(std::move(summary)), order_(std::move(sections)) {}

  // A paragraph of prose (already roff) in `section`.
  void paragraph(const std::string& section, const std::string& roff_text) {
    std::string& out = body_[section];
    if (!out.empty()) out += ".PP\n";
    out += line(roff_text);
  }
  // Raw roff (macros included) at the end of `section`.
  void raw(const std::string& section, const std::string& roff) { body_[section] += roff; }
  void item(const std::string& section, const std::string& roff_tag, const std::string& roff_text) {
    raw(section, ".TP\n" + line(roff_tag) + (roff_text.empty() ? "" : line(roff_text)));
  }

  // A help paragraph in `section`, as its kind reads best.
  void help(const std::string& section, const Para& para) {
    switch (para.kind) {
      case Para::Kind::usage: {
        std::string joined;
        for (const auto& l : para.lines) joined += (joined.empty() ? "" : " ") + l;
        paragraph(section, synopsis(joined, 1));
        break;
      }
      case Para::Kind::prose:
        paragraph(section, prose(para.text));
        break;
      case Para::Kind::items:
        if (!para.text.empty()) paragraph(section, prose(para.text));
        for (const auto& it : para.items) item(section, tag(it.term), prose(it.text));
        break;
      case Para::Kind::verbatim: {
        std::string out = body_[section].empty() ? "" : ".PP\n";
        out += ".RS 4\n.nf\n";
        // An empty line is a blank line in no-fill mode; \& says so without one.
        for (const auto& l : para.lines) out += l.empty() ? "\\&\n" : line(escape(l));
        out += ".fi\n.RE\n";
        raw(section, out);
        break;
      }
    }
  }

  std::string roff() const {
    std::string upper;
    for (char c : name_) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string out;
    out += ".\\\" Generated by tools/manpage.cc from the programs' help texts and the\n"
           ".\\\" configuration key table: edit those, not this file.\n";
    out += ".TH \"" + escape(upper) + "\" \"" + std::to_string(section_) + "\" \"\" \"deltatap " +
           DELTATAP_VERSION + "\" \"" + manual_ + "\"\n";
    // Left-aligned, without hyphenation: option names, paths and variables
    // are neither stretched apart nor broken.
    out += ".ad l\n.nh\n";
    out += ".SH NAME\n" + line(literal(name_) + " \\- " + escape(summary_));
    for (const auto& section : order_) {
      auto found = body_.find(section);
      if (found == body_.end() || found->second.empty()) continue;
      out += ".SH " + section + "\n" + found->second;
    }
    for (const auto& [section, text] : body_) {
      bool known = false;
      for (const auto& s : order_) known = known || s == section;
      if (!known) throw std::logic_error(name_ + ": section " + section + " is not in the order");
    }
    return out;
  }

  const std::string& name() const { return name_; }
  int section() const { return section_; }

 private:
  std::string name_;
  int section_;
  std::string manual_;
  std::string summary_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> body_;
};

// "0 clean stop, 1 fatal runtime error, 2 configuration error." as a list,
// each code its own item; text that does not read so stays a paragraph.
void exit_status(Page& page, const Para& para) {
  std::string body = para.body();
  if (body.ends_with('.')) body.pop_back();
  std::vector<Item> codes;
  std::string_view rest = body;
  while (!rest.empty()) {
    std::size_t comma = rest.find(", ");
    std::string_view piece = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 2);
    std::size_t digits = 0;
    while (digits < piece.size() && std::isdigit(static_cast<unsigned char>(piece[digits]))) ++digits;
    if (digits > 0 && digits < piece.size() && piece[digits] == ' ') {
      codes.push_back({std::string(piece.substr(0, digits)), std::string(piece.substr(digits + 1))});
    } else if (!codes.empty()) {
      codes.back().text += ", " + std::string(piece);
    } else {
      page.paragraph("EXIT STATUS", prose(para.text));
      return;
    }
  }
  for (const auto& code : codes) page.item("EXIT STATUS", bold(code.term), prose(code.text));
}

// "SIGTERM/SIGINT stop after a final snapshot; SIGHUP reloads ..." as a list.
void signal_list(Page& page, const Para& para) {
  std::string body = para.body();
  std::string_view rest = body;
  while (!rest.empty()) {
    std::size_t semi = rest.find("; ");
    std::string_view piece = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 2);
    std::size_t space = piece.find(' ');
    std::string signals(piece.substr(0, space));
    std::string roff_tag;
    for (std::size_t start = 0; start <= signals.size();) {
      std::size_t slash = signals.find('/', start);
      if (!roff_tag.empty()) roff_tag += ", ";
      roff_tag += bold(signals.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    std::string text = space == std::string_view::npos ? "" : std::string(piece.substr(space + 1));
    if (!text.empty()) text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
    if (!text.empty() && !text.ends_with('.')) text += '.';
    page.item("SIGNALS", roff_tag, prose(text));
  }
}

// Where each help paragraph goes: the synopsis, then the first prose as the
// description, lists and labelled prose by `route` (label or list heading
// prefix -> section), anything else where the one before it went.
std::string upper(std::string_view text) {
  std::string out;
  for (char c : text) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

struct Route {
  std::string_view prefix;
  std::string section;
};

void place_help(Page& page, const std::vector<Para>& paras, const std::vector<Route>& routes,
                const std::string& items_section) {
  std::string current = "DESCRIPTION";
  bool described = false;
  for (const auto& para : paras) {
    if (para.kind == Para::Kind::usage) {
      page.help("SYNOPSIS", para);
      continue;
    }
    std::string key = para.kind == Para::Kind::items ? para.text : para.label();
    if (key.empty() && para.kind == Para::Kind::prose && para.text.starts_with("See ")) key = "See";
    std::string section;
    for (const auto& route : routes) {
      if (!key.empty() && key.starts_with(route.prefix)) section = route.section;
    }
    if (section.empty() && para.kind == Para::Kind::items) section = items_section;
    if (section.empty() && !described && para.kind == Para::Kind::prose) section = "DESCRIPTION";
    if (section.empty()) section = current;
    described = described || section == "DESCRIPTION";
    current = section;
    if (section == "EXIT STATUS") {
      exit_status(page, para);
    } else if (section == "SIGNALS") {
      signal_list(page, para);
    } else if (para.kind == Para::Kind::items && upper(para.text) == section + ":") {
      Para list = para;  // "Commands:" heads the section COMMANDS already
      list.text.clear();
      page.help(section, list);
    } else {
      page.help(section, para);
    }
  }
}

std::string see_also(std::vector<std::string_view> pages) {
  std::string out;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    std::string_view p = pages[i];
    std::size_t paren = p.find('(');
    out += ".BR " + literal(p.substr(0, paren)) + " " + std::string(p.substr(paren)) +
           (i + 1 < pages.size() ? "," : "") + "\n";
  }
  return out;
}

// ---- the environment -------------------------------------------------------------

// Each variable of the environment table: the key it sets and in what syntax.
void environment_items(Page& page, const std::string& section) {
  for (const auto& var : environment_table()) {
    std::string text = "Sets " + key_name(var.section, var.key);
    text += var.own_syntax.empty() ? ", in the key's syntax" : ", as " + std::string(var.own_syntax);
    text += var.empty_is_value ? "; set to the empty string, it sets the key to empty."
                               : "; set to the empty string, it counts as unset.";
    page.item(section, bold(var.name), prose(text));
  }
}

const char* const kCredentials =
    "Set by systemd for LoadCredential=: when no other source gives a token, it is read from "
    "$CREDENTIALS_DIRECTORY/token; an empty credential means no token.";

// ---- deltatapd(8) --------------------------------------------------------------

Page deltatapd_page() {
  Page page("deltatapd", 8, "System Administration",
            "tap the Jules Control Room broadcast into a store of session deltas",
            {"SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "EXIT STATUS", "ENVIRONMENT", "FILES",
             "SEE ALSO"});
  // The variables first; the help's own words on them follow.
  const std::string e = "ENVIRONMENT";
  page.paragraph(e, prose("Each of these variables sets a configuration key (deltatap.conf(5)) "
                          "over the file and under the options:"));
  environment_items(page, e);
  place_help(page, parse_help(kDeltatapdUsage),
             {{"Signals", "SIGNALS"},
              {"Exit status", "EXIT STATUS"},
              {"Environment only", "ENVIRONMENT"},
              {"Token sources", "OPTIONS"},
              {"See", "SEE ALSO"}},
             "OPTIONS");

  const std::string d = "DESCRIPTION";
  page.paragraph(d, prose(
      "deltatapd connects to the backend's WebSocket broadcast and keeps every session delta it "
      "receives. It reconnects with backoff whenever the connection ends, and keeps reading while "
      "the store is busy: received deltas wait in a bounded queue ([stream] buffer)."));
  page.paragraph(d, prose(
      "With storage on, each delta is appended to a journal before it is stored, and the in-memory "
      "SQLite database is written out atomically as a snapshot every [storage] snapshot_interval, "
      "on SIGUSR1 and at stop. At start the snapshot is loaded and the journal replayed, so a crash "
      "loses at most one [storage] journal_fsync_interval. Retention runs at start and then every "
      "day at 00:00 UTC, deleting deltas older than [retention] days."));
  page.paragraph(d, prose(
      "The HTTP API (127.0.0.1:9477 unless [http] listen says otherwise) answers /api/deltas, "
      "/api/sessions, /api/stats and /api/export, takes POST /api/snapshot and /api/cleanup, and "
      "serves /healthz, /readyz and Prometheus metrics on /metrics. deltatap(1) is its "
      "command-line client."));
  page.paragraph(d, prose(
      "Configuration comes from built-in defaults, the file named by --config (see "
      "deltatap.conf(5)), the environment and the options, each overriding the one before. A bad "
      "value stops the start with exit status 2 and a message naming the key, the value and what "
      "is allowed; --check-config prints the configuration that would be used."));
  page.paragraph(d, prose(
      "Under systemd (deltatap.service, Type=notify) it reports READY=1 once the store is loaded "
      "and the HTTP API listens, whether or not the backend is reachable, pings the watchdog, "
      "keeps a STATUS= line, and writes native journal entries with fields such as SESSION_ID=, "
      "DELTA_TYPE= and ERROR=. Only one deltatapd may use a data directory: it holds a lock on "
      ".deltatap.lock there. A data directory that group or others may write is refused."));

  const std::string s = "SIGNALS";
  page.paragraph(s, prose(
      "On SIGHUP (systemctl reload deltatap) the configuration file and the token file "
      "([stream] token_file) are read again; when a value is bad, the error is logged and the "
      "running configuration kept. Changed stream settings make it reconnect. The storage path, "
      "storage on or off, the journal on or off, the HTTP listener and the HTTP API's token "
      "change only at restart. The environment and the systemd credential stay what the process "
      "started with: after changing a variable or /etc/deltatap/token, restart the service."));

  page.paragraph(e, prose("Set by systemd, read by deltatapd:"));
  page.item(e, bold("CREDENTIALS_DIRECTORY"), prose(kCredentials));
  page.item(e, bold("NOTIFY_SOCKET"),
            prose("Where READY=1, RELOADING=1, STOPPING=1 and STATUS= are sent; unset, no "
                  "notifications are sent."));
  page.item(e, bold("WATCHDOG_USEC"),
            prose("With WatchdogSec=: the watchdog is pinged at half this interval."));
  page.item(e, bold("JOURNAL_STREAM") + ", " + bold("INVOCATION_ID"),
            prose("Either one set (started by systemd) makes [log] format auto mean journal."));

  const std::string f = "FILES";
  page.item(f, bold("/etc/deltatap/deltatap.conf"),
            prose("The configuration the unit passes with --config; see deltatap.conf(5)."));
  page.item(f, bold("/etc/deltatap/token"),
            prose("The backend's token, root's, mode 0600; systemd hands it to the service as the "
                  "credential token."));
  page.item(f, bold("/var/lib/deltatap/"),
            prose("The state directory (mode 0700) and the unit's working directory: the "
                  "configured [storage] path, data/sessions.sqlite, is relative to it."));
  page.item(f, bold("/var/lib/deltatap/data/sessions.sqlite"),
            prose("The snapshot. One that is damaged is renamed to sessions.sqlite.corrupt-TIME "
                  "and kept."));
  page.item(f, bold("/var/lib/deltatap/data/sessions.journal"),
            prose("The journal, with numbered segments sessions.journal.N until a snapshot holds "
                  "them."));
  page.item(f, bold("/var/lib/deltatap/data/.deltatap.lock"),
            prose("The lock of the running daemon, holding its PID."));

  page.raw("SEE ALSO", see_also({"deltatap(1)", "deltatap.conf(5)", "deltatap-sim(1)",
                                 "systemctl(1)", "journalctl(1)", "systemd.exec(5)"}));
  return page;
}

// ---- deltatap(1) ---------------------------------------------------------------

Page deltatap_page() {
  Page page("deltatap", 1, "User Commands",
            "ask the session-delta history kept by deltatapd",
            {"SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS", "ENVIRONMENT",
             "FILES", "SEE ALSO"});
  place_help(page, parse_help(cli::kUsageText),
             {{"Commands", "COMMANDS"}, {"Exit codes", "EXIT STATUS"}}, "OPTIONS");

  page.paragraph("DESCRIPTION", prose(
      "The answers come either from a snapshot file (--db), opened read-only so that a running "
      "daemon is never disturbed, or from the running daemon's HTTP API (--url, the default). "
      "Tables are for people: text from the stream is shown with control characters escaped. The "
      "json, ndjson and csv formats carry the stored text exactly."));
  page.paragraph("OPTIONS", "Help:");
  page.item("OPTIONS", tag("-h, --help"),
            prose("Print the usage and exit; after a command, that command's help (also: deltatap "
                  "help COMMAND)."));
  page.item("OPTIONS", tag("--version"), prose("Print the version and exit."));

  // Each command: its synopsis, then its help.
  for (const auto& command : cli::command_table()) {
    page.raw("COMMANDS", ".SS " + escape(command.name) + "\n");
    for (const auto& para : parse_help(command.help)) {
      if (para.kind == Para::Kind::usage) {
        std::string joined;
        for (const auto& l : para.lines) joined += (joined.empty() ? "" : " ") + l;
        page.raw("COMMANDS", line(synopsis(joined, 2)));
        page.paragraph("SYNOPSIS", synopsis(joined, 2));
      } else {
        page.help("COMMANDS", para);
      }
    }
  }

  page.item("ENVIRONMENT", bold("NO_COLOR"),
            prose("Set and not empty: no colours with --color auto."));
  page.item("ENVIRONMENT", bold("TERM"), prose("dumb: no colours with --color auto."));
  page.item("FILES", bold("/var/lib/deltatap/data/sessions.sqlite"),
            prose("The snapshot file of the packaged service, for --db (readable by root)."));
  page.raw("SEE ALSO", see_also({"deltatapd(8)", "deltatap.conf(5)", "deltatap-sim(1)"}));
  return page;
}

// ---- deltatap-sim(1) -----------------------------------------------------------

Page sim_page() {
  Page page("deltatap-sim", 1, "User Commands",
            "simulate the Jules Control Room backend's broadcast of session deltas",
            {"SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "EXIT STATUS", "EXAMPLES",
             "SEE ALSO"});
  place_help(page, parse_help(kSimulatorUsage), {{"Exit status", "EXIT STATUS"}}, "OPTIONS");
  page.item("SIGNALS", bold("SIGTERM") + ", " + bold("SIGINT"),
            prose("Close every client with a normal close, print the summary line if it was not "
                  "printed yet, and exit 0."));
  page.paragraph("EXAMPLES", prose(
      "Send 5000 deltas at 1000 a second to a deltatapd that stores them:"));
  page.raw("EXAMPLES",
           ".PP\n.RS 4\n.nf\n" +
               line(escape("deltatap-sim --count 5000 --rate 1000 --token secret &")) +
               line(escape("deltatapd --url ws://127.0.0.1:3001/ws --token secret --persist")) +
               ".fi\n.RE\n");
  page.raw("SEE ALSO", see_also({"deltatapd(8)", "deltatap(1)"}));
  return page;
}

// ---- deltatap.conf(5) ----------------------------------------------------------

// The built-in defaults, "section.key" -> value, read from --check-config's
// text for no configuration at all: what deltatapd itself would print.
std::map<std::string, std::string> defaults() {
  std::map<std::string, std::string> out;
  std::string section;
  const std::string text = describe_config(Config{});
  for (auto l : split_lines(text)) {
    if (l.starts_with('[') && l.ends_with(']')) {
      section = std::string(l.substr(1, l.size() - 2));
    } else if (!l.empty() && l[0] != '#') {
      std::size_t eq = l.find(" =");
      if (eq == std::string_view::npos) continue;
      out.emplace(section + "." + std::string(l.substr(0, eq)), std::string(trim_view(l.substr(eq + 2))));
    }
  }
  return out;
}

Page conf_page() {
  Page page("deltatap.conf", 5, "File Formats", "configuration file of deltatapd",
            {"SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"});
  page.paragraph("SYNOPSIS", bold("/etc/deltatap/deltatap.conf"));

  const std::string d = "DESCRIPTION";
  page.paragraph(d, prose(
      "deltatapd(8) reads the INI file named by its --config option; the systemd unit passes "
      "/etc/deltatap/deltatap.conf. Without --config no file is read. Precedence: options over "
      "the environment over this file over the built-in defaults. deltatapd --config FILE "
      "--check-config validates the file and prints the configuration that would be used, "
      "secrets hidden. SIGHUP reads the file again (see deltatapd(8) for what changes only at "
      "restart)."));
  page.paragraph(d, prose(
      "The file has [section] headers and key = value lines; comments are lines of their own "
      "starting with # or ;. There are no end-of-line comments: everything after = is the value, "
      "# and ; included. A value may be wrapped in double quotes (\"\" is the empty value). Each "
      "key may be given once, except [stream] header. An unknown section or key, and a bad value, "
      "stop the start with exit status 2 and a message naming the file, the line, the key and "
      "what is allowed."));
  page.paragraph(d, prose("Durations are " + std::string(kDurationExpected) +
                          ". Sizes are bytes, or take a unit KiB, MiB or GiB. Booleans are on, "
                          "off, true, false, yes, no, 1 or 0."));

  auto defaults_text = defaults();
  std::string section;
  for (const auto& spec : key_table()) {
    if (spec.section != section) {
      section = std::string(spec.section);
      page.raw("OPTIONS", ".SS \"[" + escape(section) + "]\"\n");
    }
    std::string text = prose(std::string(spec.help) + ".");
    text += "\n.br\n" + line(prose("Values: " + std::string(spec.allowed) + "."));
    auto found = defaults_text.find(section + "." + std::string(spec.key));
    std::string value = found == defaults_text.end() ? "(none)" : found->second;
    if (value == "(none)") text += ".br\n" + line("Default: none.");
    else if (value.empty()) text += ".br\n" + line("Default: empty.");
    else text += ".br\n" + line("Default: " + bold(value) + ".");
    std::string variables;
    for (const auto& var : environment_table()) {
      if (var.section != spec.section || var.key != spec.key) continue;
      if (!variables.empty()) variables += ", ";
      variables += bold(var.name);
      if (!var.own_syntax.empty()) variables += " (" + prose(var.own_syntax) + ")";
    }
    if (!variables.empty()) text += ".br\n" + line("Environment: " + variables + ".");
    std::string flags;
    for (auto flag : key_flags(spec.section, spec.key)) flags += (flags.empty() ? "" : ", ") + bold(flag);
    if (!flags.empty()) text += ".br\n" + line("deltatapd option: " + flags + ".");
    text.pop_back();  // item() ends the text's line
    page.item("OPTIONS", bold(spec.key), text);
  }

  const std::string e = "ENVIRONMENT";
  page.paragraph(e, prose("These variables of deltatapd's environment override the file:"));
  environment_items(page, e);
  page.item(e, bold("CREDENTIALS_DIRECTORY"), prose(kCredentials));

  const std::string f = "FILES";
  page.item(f, bold("/etc/deltatap/deltatap.conf"),
            prose("The configuration of the packaged service, a conffile: an upgrade keeps local "
                  "edits."));
  page.item(f, bold("/usr/share/doc/deltatap/examples/deltatap.conf"),
            prose("The shipped configuration, every key with a comment."));
  page.item(f, bold("/etc/deltatap/token"),
            prose("The backend's token for the packaged service, root's, mode 0600, handed to "
                  "deltatapd as the systemd credential token. Do not set token or token_file as "
                  "well: they come first."));

  page.paragraph("EXAMPLES", prose("The built-in defaults, as deltatapd --check-config prints "
                                   "them when no file is read and no variable is set:"));
  Para example{Para::Kind::verbatim};
  const std::string text = describe_config(Config{});
  for (auto l : split_lines(text)) example.lines.emplace_back(l);
  page.help("EXAMPLES", example);
  page.raw("SEE ALSO", see_also({"deltatapd(8)", "deltatap(1)", "systemd.exec(5)"}));
  return page;
}

int write_pages(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "deltatap_manpage: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  for (const Page& page : {deltatapd_page(), deltatap_page(), sim_page(), conf_page()}) {
    fs::path target = dir / (page.name() + "." + std::to_string(page.section()));
    fs::path temporary = target;
    temporary += ".tmp";
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out << page.roff();
      out.close();
      if (!out) {
        std::fprintf(stderr, "deltatap_manpage: cannot write %s\n", temporary.c_str());
        return 1;
      }
    }
    fs::rename(temporary, target, ec);
    if (ec) {
      std::fprintf(stderr, "deltatap_manpage: cannot rename %s: %s\n", temporary.c_str(),
                   ec.message().c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace deltatap

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: deltatap_manpage DIR\n");
    return 2;
  }
  try {
    return deltatap::write_pages(argv[1]);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "deltatap_manpage: %s\n", error.what());
    return 1;
  }
}
