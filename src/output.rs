//! Output: results go to stdout as a table (for people) or as one JSON
//! document (`--format json`, for scripts); warnings and notes go to stderr.
//! A command returns a view that is `Serialize` and describes its own form
//! for people (a `Table` of plain cells and lines of text); this file decides
//! which form is printed, how a table is laid out for where stdout goes, how
//! times read for people, and makes user text safe for a terminal.

use std::fmt;
use std::io::{IsTerminal, Write};

use anyhow::Result;
use serde::{Serialize, Serializer};
use unicode_width::UnicodeWidthChar;

use crate::cli::{Format, GlobalArgs};

/// A command's result: JSON through serde, and a form for people: its table
/// (if it has one, printed first when it has rows), then its text.
pub trait View: Serialize {
    /// The view's table: a header and rows of plain cells, which `Output`
    /// makes safe, drops empty columns from and fits to where it is printed.
    fn table(&self) -> Option<Table> {
        None
    }

    /// The text printed without `--format json`, after the table (ends
    /// without a newline; empty prints nothing).
    fn human(&self) -> String {
        String::new()
    }
}

/// A table as a view describes it: what each column holds, nothing of its
/// layout. Cells are plain text (user text included): they are made safe and
/// shortened by `Output`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    /// Columns of free text, shortened first when the table is too wide.
    text_columns: Vec<&'static str>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
            text_columns: Vec::new(),
        }
    }

    /// Names the columns of free text (descriptions, addresses, errors):
    /// when the table is too wide they are shortened first, so that short
    /// values such as IDs, states and times stay whole as long as they can.
    pub fn text_columns(mut self, columns: &[&'static str]) -> Table {
        debug_assert!(columns.iter().all(|c| self.header.contains(c)));
        self.text_columns = columns.to_vec();
        self
    }

    /// Adds a row (one cell per column of the header).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len(), "one cell per column");
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

pub struct Output {
    pub format: Format,
    pub quiet: bool,
    pub verbose: bool,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
}

impl Output {
    pub fn new(global: &GlobalArgs) -> Output {
        Output {
            format: global.format,
            quiet: global.quiet,
            verbose: global.verbose,
            stdout_tty: std::io::stdout().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints a result on stdout in the chosen format (`-q` keeps the
    /// table form quiet; JSON is always printed, since a script asked for it).
    pub fn show(&self, view: &impl View) -> Result<()> {
        let text = match self.format {
            Format::Json => serde_json::to_string_pretty(view)?,
            Format::Table if self.quiet => return Ok(()),
            Format::Table => self.human(view),
        };
        if text.is_empty() {
            return Ok(());
        }
        print_stdout(&text)
    }

    /// A view's form for people: its table laid out for stdout, then its text.
    fn human(&self, view: &impl View) -> String {
        let table = view
            .table()
            .filter(|t| !t.is_empty())
            .map(|t| self.render(&t));
        let text = view.human();
        match (table, text.is_empty()) {
            (Some(table), true) => table,
            (Some(table), false) => format!("{table}\n{text}"),
            (None, _) => text,
        }
    }

    /// A table laid out for where stdout goes: fitted to the terminal's
    /// width with a rule under the header, or plain aligned columns on a pipe.
    pub fn render(&self, table: &Table) -> String {
        if self.stdout_tty {
            layout(table, Some(terminal_width()))
        } else {
            layout(table, None)
        }
    }

    /// A list printed item by item as a long run produces it (so memory
    /// stays flat however long it is): a JSON array as `show` would print
    /// it, or each item's text (`View::human`; a table is not used) on its
    /// own line, and `empty` when there was none.
    pub fn stream(&self, empty: &'static str) -> Stream {
        Stream {
            json: self.json(),
            quiet: !self.json() && self.quiet,
            empty,
            count: 0,
            closed: false,
        }
    }

    /// A warning on stderr (silenced by `-q`).
    pub fn warn(&self, message: &str) {
        if !self.quiet {
            print_stderr(&format!("warning: {message}"));
        }
    }

    /// A note for people on stderr (silenced by `-q`).
    pub fn note(&self, message: &str) {
        if !self.quiet {
            print_stderr(message);
        }
    }
}

/// A list printed as it goes (`Output::stream`).
pub struct Stream {
    json: bool,
    /// Table format with `-q`: nothing is printed.
    quiet: bool,
    empty: &'static str,
    count: usize,
    /// stdout was closed (`| head`): the run goes on without output.
    closed: bool,
}

impl Stream {
    /// One item: an element of the JSON array, or its text (`View::human`).
    pub fn item(&mut self, item: &impl View) -> Result<()> {
        self.count += 1;
        if self.quiet {
            return Ok(());
        }
        let text = if self.json {
            // An element of a pretty-printed array: its own pretty form,
            // each line indented one level (strings hold no raw newline).
            let element = serde_json::to_string_pretty(item)?;
            let mut text = String::from(if self.count == 1 { "[\n" } else { ",\n" });
            for (i, line) in element.lines().enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                text.push_str("  ");
                text.push_str(line);
            }
            text
        } else {
            item.human() + "\n"
        };
        self.write(&text)
    }

    /// The end of the list (`[]`, or the empty text, when it was empty).
    pub fn finish(&mut self) -> Result<()> {
        if self.quiet {
            return Ok(());
        }
        match (self.json, self.count) {
            (true, 0) => self.write("[]\n"),
            (true, _) => self.write("\n]\n"),
            (false, 0) => {
                let empty = format!("{}\n", self.empty);
                self.write(&empty)
            }
            (false, _) => Ok(()),
        }
    }

    fn write(&mut self, text: &str) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => Ok(other?),
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly.
pub fn print_stdout(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Writes one message (and a line break) to stderr. A stderr that cannot be
/// written (closed, a full disk, `2>/dev/full`) loses the message but never
/// stops the command: its work and its exit status stand.
pub fn print_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}").and_then(|()| stderr.flush());
}

// ---- tables --------------------------------------------------------------------------------

/// Columns are this many spaces apart.
const GAP: usize = 2;
/// Off a terminal nothing limits the width; a cell is still cut here, so one
/// long description cannot make every line of the listing that long.
const PIPE_CELL_WIDTH: usize = 80;
/// Below this, a reported terminal width is not believed (some ptys say 0).
const MIN_TERMINAL_WIDTH: usize = 20;

/// The width tables fit on a terminal: `COLUMNS` when set, else the
/// terminal's own, else 80.
fn terminal_width() -> usize {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok());
    let from_tty =
        || terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0));
    from_env
        .filter(|&w| w >= MIN_TERMINAL_WIDTH)
        .or_else(|| from_tty().filter(|&w| w >= MIN_TERMINAL_WIDTH))
        .unwrap_or(80)
}

/// Lays a table out as lines of aligned cells: one line per row, never a
/// word broken across lines. Columns empty in every row are left out. With a
/// `width` (a terminal), a rule goes under the header and the widest columns
/// are shortened with `…` until the table fits; without one (a pipe), there
/// are no rules and every line has the same width.
fn layout(table: &Table, width: Option<usize>) -> String {
    let keep: Vec<usize> = (0..table.header.len())
        .filter(|&c| {
            table
                .rows
                .iter()
                .any(|row| row.get(c).is_some_and(|cell| !cell.trim().is_empty()))
        })
        .collect();
    let cap = if width.is_some() {
        usize::MAX
    } else {
        PIPE_CELL_WIDTH
    };
    let header: Vec<String> = keep.iter().map(|&c| table.header[c].to_string()).collect();
    let rows: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|row| {
            keep.iter()
                .map(|&c| cell(row.get(c).map_or("", String::as_str), usize::MAX))
                .map(|text| shorten(&text, cap))
                .collect()
        })
        .collect();
    let natural: Vec<usize> = (0..keep.len())
        .map(|c| {
            rows.iter()
                .map(|row| text_width(&row[c]))
                .chain([text_width(&header[c])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let widths = match width {
        Some(total) => {
            let text: Vec<bool> = keep
                .iter()
                .map(|&c| table.text_columns.contains(&table.header[c]))
                .collect();
            fit(&natural, &header, &text, total)
        }
        None => natural,
    };
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(text, &w)| pad(&shorten(text, w), w))
            .collect();
        padded.join(&" ".repeat(GAP))
    };
    let mut out = vec![line(&header)];
    if width.is_some() {
        let rule: Vec<String> = widths.iter().map(|&w| "─".repeat(w)).collect();
        out.push(rule.join(&" ".repeat(GAP)));
        // A terminal needs no padding after the last column.
        out[0] = out[0].trim_end().to_string();
    }
    for row in &rows {
        let text = line(row);
        out.push(if width.is_some() {
            text.trim_end().to_string()
        } else {
            text
        });
    }
    out.join("\n")
}

/// Column widths that fit `total`. The text columns are cut first, to one
/// common width as wide as the room allows; then, if that is not enough, all
/// columns. A column is cut below its header's width only when nothing else
/// fits.
fn fit(natural: &[usize], header: &[String], text: &[bool], total: usize) -> Vec<usize> {
    let room = total.saturating_sub(GAP * natural.len().saturating_sub(1));
    if natural.iter().sum::<usize>() <= room {
        return natural.to_vec();
    }
    let header_floors: Vec<usize> = natural
        .iter()
        .zip(header)
        .map(|(&n, h)| n.min(text_width(h).max(3)))
        .collect();
    // Floors per step: text columns only (the others at their natural width),
    // then every column down to its header, then every column down to one.
    let steps = [
        natural
            .iter()
            .zip(&header_floors)
            .zip(text)
            .map(|((&n, &floor), &is_text)| if is_text { floor } else { n })
            .collect::<Vec<usize>>(),
        header_floors.clone(),
        vec![1; natural.len()],
    ];
    let capped = |limit: usize, floors: &[usize]| -> Vec<usize> {
        natural
            .iter()
            .zip(floors)
            .map(|(&n, &floor)| n.min(limit.max(floor)))
            .collect()
    };
    let max = natural.iter().copied().max().unwrap_or(0).min(room);
    for floors in &steps {
        let best = (1..=max)
            .rev()
            .find(|&limit| capped(limit, floors).iter().sum::<usize>() <= room);
        if let Some(limit) = best {
            return capped(limit, floors);
        }
    }
    vec![1; natural.len()]
}

/// How many terminal columns a text takes.
fn text_width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Text cut to `width` columns, ending in `…` when it was cut.
fn shorten(text: &str, width: usize) -> String {
    if text_width(text) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Text padded with spaces to `width` columns.
fn pad(text: &str, width: usize) -> String {
    let fill = width.saturating_sub(text_width(text));
    format!("{text}{}", " ".repeat(fill))
}

// ---- times ---------------------------------------------------------------------------------

/// A stored time (milliseconds since the Unix epoch) in a view: JSON prints
/// it as RFC 3339 in UTC, people read it in the local time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub i64);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&rfc3339(self.0))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&local_time(self.0))
    }
}

/// A stored time as JSON and the database's neighbours read it: RFC 3339 in
/// UTC, to the second (`2026-11-30T10:25:00Z`).
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_second(ms.div_euclid(1000))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A stored time as people read it: local time (`TZ` honoured, else the
/// system's zone), to the minute: `2026-11-30 11:25`.
pub fn local_time(ms: i64) -> String {
    jiff::Timestamp::from_second(ms.div_euclid(1000))
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// A time of day as people read it, in local time: `11:42`.
pub fn clock_time(ms: i64) -> String {
    jiff::Timestamp::from_second(ms.div_euclid(1000))
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

// ---- safe text -----------------------------------------------------------------------------
/// Makes user text safe for one table cell: control characters (line breaks,
/// tabs, NUL, escape sequences) and bidirectional overrides cannot move the
/// cursor or reorder the columns around them. Long text is cut to `max` chars.
pub fn cell(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_mul(4)));
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        out.push(match c {
            '\n' | '\r' | '\t' => ' ',
            c => visible(c),
        });
    }
    out
}

/// Makes user text safe to print as a block: like `cell`, but its lines stay
/// lines (CRLF and a lone CR become a line break) and nothing is cut.
pub fn block(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\n' | '\r' => '\n',
            '\t' => '\t',
            c => visible(c),
        })
        .collect()
}

/// A character as it may reach a terminal: controls and bidirectional
/// formatting characters become U+FFFD.
fn visible(c: char) -> char {
    match c {
        c if c.is_control() => '\u{FFFD}',
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => '\u{FFFD}',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::{Table, block, cell, layout, rfc3339};

    fn sample() -> Table {
        let mut table = Table::new(&["ID", "NOTE", "EMPTY", "TEXT"]).text_columns(&["TEXT"]);
        table.row(vec![
            "1".into(),
            "a b".into(),
            String::new(),
            "x".repeat(100),
        ]);
        table.row(vec![
            "22".into(),
            "c\nd".into(),
            " ".into(),
            "short words here".into(),
        ]);
        table
    }

    #[test]
    fn a_pipe_gets_aligned_lines_without_rules_or_empty_columns() {
        let text = layout(&sample(), None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  NOTE  TEXT"), "{text}");
        assert!(lines[1].starts_with("1   a b   xxx"), "{text}");
        assert!(lines[2].starts_with("22  c d   short words here"), "{text}");
        // Cut at 80 columns; every line as wide as the header.
        assert!(lines[1].ends_with("x…"), "{text}");
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() == lines[0].chars().count())
        );
    }

    #[test]
    fn a_terminal_gets_a_fitted_table_with_a_rule() {
        let text = layout(&sample(), Some(30));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[1], format!("──  ────  {}", "─".repeat(20)));
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{text}");
        assert_eq!(lines[3], "22  c d   short words here");
        assert_eq!(lines[2], format!("1   a b   {}…", "x".repeat(19)));
    }

    #[test]
    fn short_columns_are_cut_only_when_text_columns_are_not_enough() {
        let mut table = Table::new(&["WHEN", "TEXT"]).text_columns(&["TEXT"]);
        table.row(vec!["2026-11-30 11:25".into(), "y".repeat(40)]);
        let text = layout(&table, Some(24));
        assert_eq!(text.lines().nth(2), Some("2026-11-30 11:25  yyyyy…"));
        let text = layout(&table, Some(20));
        assert!(text.lines().all(|l| l.chars().count() <= 20), "{text}");
    }

    #[test]
    fn times_print_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn cells_are_single_line_and_cut() {
        assert_eq!(cell("a\nb\tc", 10), "a b c");
        assert_eq!(cell("\u{202E}evil\x1b[2J", 20), "\u{FFFD}evil\u{FFFD}[2J");
        assert_eq!(cell("abcdef", 3), "abc…");
    }

    #[test]
    fn blocks_keep_their_lines_only() {
        assert_eq!(
            block("a\r\nb\rc\n\u{1b}[31md\u{061C}"),
            "a\nb\nc\n\u{FFFD}[31md\u{FFFD}"
        );
    }
}
