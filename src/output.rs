//! Output: results go to stdout as a table (for people) or as one JSON
//! document (`--format json`, for scripts); warnings and notes go to stderr.
//! A command returns a view that is `Serialize` and knows its table form;
//! this file decides which form is printed and how tables look.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

use crate::cli::{Format, GlobalArgs};

/// A command's result: JSON through serde, and a form for people.
pub trait View: Serialize {
    /// The text printed without `--format json` (ends without a newline).
    fn human(&self) -> String;
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
            Format::Table => view.human(),
        };
        if text.is_empty() {
            return Ok(());
        }
        print_stdout(&text)
    }

    /// A warning on stderr (silenced by `-q`).
    pub fn warn(&self, message: &str) {
        if !self.quiet {
            eprintln!("warning: {message}");
        }
    }

    /// A note for people on stderr (silenced by `-q`).
    pub fn note(&self, message: &str) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// A table styled for where stdout goes: borders on a terminal (fitted to
    /// its width), plain aligned columns otherwise.
    pub fn table(&self, header: &[&str]) -> Table {
        let mut table = Table::new();
        if self.stdout_tty {
            table
                .load_preset(presets::UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic);
            // A terminal that reports no size (some ptys) would squeeze every column to one letter.
            if table.width().unwrap_or(0) < 40 {
                table.set_width(100);
            }
        } else {
            table.load_preset(presets::NOTHING);
        }
        table.set_header(header.iter().map(|h| h.to_string()));
        table
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

/// A stored time as a table shows it: `2026-11-27 22:31` (UTC).
pub fn short_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Makes user text safe for one table cell: control characters (line breaks,
/// tabs, NUL, escape sequences) and bidirectional overrides cannot move the
/// cursor or reorder the columns around them. Long text is cut to `max` chars.
pub fn cell(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
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
    use super::{block, cell};

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
