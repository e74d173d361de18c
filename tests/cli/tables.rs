//! Tables and times as people read them (SPEC §5): on a terminal a table
//! fits its width by shortening cells with `…` and never breaks a word across
//! lines; on a pipe it has no borders and one line per row; columns empty in
//! every row are left out; times are local (`TZ` honoured) in one format,
//! while JSON keeps RFC 3339 in UTC.

use crate::support::{BASE_CONFIG, Run, Sandbox, ServerOptions, smtp::Verdict};

/// A description longer than any terminal, with words that must never be
/// split across lines.
const LONG: &str = "Printing fails for Bob@Example.org while processing the quarterly \
                    report: the spooler says the queue is stalled and every retry ends the same way";

/// How many terminal columns a line takes (the text here is one column per character,
/// except the box-drawing and ellipsis characters, which are one column too).
fn width(line: &str) -> usize {
    line.chars().count()
}

/// Runs the binary on a pseudo-terminal of `cols` columns (util-linux
/// `script`), in the sandbox, with the sandbox's clean environment and `env`.
pub fn on_terminal(sb: &Sandbox, cols: u16, args: &[&str], env: &[(&str, &str)]) -> Run {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    // The shell may reset COLUMNS after `stty`: `env` sets the variables last.
    let mut line = format!("stty cols {cols} rows 40 && exec env");
    for (k, v) in env {
        line.push(' ');
        line.push_str(&quote(&format!("{k}={v}")));
    }
    line.push(' ');
    line.push_str(&quote(env!("CARGO_BIN_EXE_helpdesk")));
    for arg in args {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    // `script` runs the command on a new pseudo-terminal and copies what it
    // prints; the environment is cleaned as `Sandbox::command` does.
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    script.current_dir(sb.dir.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("HELPDESK_") || key == "XDG_CONFIG_HOME" || key == "COLUMNS" {
            script.env_remove(key);
        }
    }
    script.env("HOME", sb.dir.path());
    // A terminal emulator names itself; CI may not (progress bars need it).
    script.env("TERM", "xterm");
    script.stdin(std::process::Stdio::null());
    let output = script
        .output()
        .expect("util-linux `script` runs (the tests need it for a pseudo-terminal)");
    let mut run = Run::from(output);
    run.stdout = run.stdout.replace("\r\n", "\n");
    run
}

/// A help desk with four tickets (one long), in-app and email notifications,
/// and one email refused with a long reply.
fn busy_desk() -> Sandbox {
    let options = ServerOptions::default().with_verdict(|_, _| {
        Verdict::Reply(
            550,
            "5.1.1 the mailbox of this recipient is unavailable because the account was closed \
             by its administrator last week; please contact the postmaster"
                .into(),
        )
    });
    let sb = Sandbox::with(options, BASE_CONFIG);
    sb.user("dev", "dev@example.org");
    sb.manager("max", "max@example.org");
    sb.ticket("dev", "high", LONG);
    sb.ticket("dev", "low", "Short one");
    sb.ticket("dev", "medium", "Another ticket about the printer");
    sb.run(["notify", "flush"]).code(3);
    sb
}

#[test]
fn a_table_on_an_80_column_terminal_fits_and_shortens_cells_without_breaking_words() {
    let sb = busy_desk();
    let tickets = 3;
    let notifications = sb.sql_i64("SELECT count(*) FROM notifications") as usize;
    for (args, rows) in [
        (vec!["ticket", "list"], tickets),
        (vec!["notify", "list"], notifications),
        (vec!["inbox", "--user", "max"], tickets),
        (vec!["user", "list"], 2),
    ] {
        let run = on_terminal(&sb, 80, &args, &[]).success();
        let mut lines: Vec<&str> = run.stdout.lines().collect();
        if args[0] == "inbox" {
            assert_eq!(lines.pop(), Some(format!("{tickets} unread").as_str()));
        }
        // A header, a rule under it, and exactly one line per row.
        assert_eq!(lines.len(), rows + 2, "{args:?}:\n{}", run.stdout);
        for line in &lines {
            assert!(
                width(line) <= 80,
                "{args:?}: {} columns:\n{line}",
                width(line)
            );
            assert!(!line.contains('│'), "{args:?}: a box border:\n{line}");
        }
        assert!(
            lines[1].starts_with('─'),
            "{args:?}: no rule:\n{}",
            run.stdout
        );
    }
    let list = on_terminal(&sb, 80, &["ticket", "list"], &[]).success();
    let long = list
        .stdout
        .lines()
        .find(|l| l.starts_with("#1 "))
        .expect("ticket #1 listed");
    // Shortened with an ellipsis, its beginning kept whole.
    assert!(long.ends_with('…'), "{long}");
    assert!(long.contains("Printing fails for"), "{long}");
    // The last error takes one line and is shortened too.
    let queue = on_terminal(&sb, 80, &["notify", "list", "--channel", "email"], &[]).success();
    let failed: Vec<&str> = queue
        .stdout
        .lines()
        .filter(|l| l.contains("failed"))
        .collect();
    assert_eq!(failed.len(), 3, "{}", queue.stdout);
    assert!(failed.iter().all(|l| l.ends_with('…')), "{}", queue.stdout);
    // The short columns stay whole: the state and the address.
    assert!(
        failed.iter().all(|l| l.contains("dev@example.org")),
        "{}",
        queue.stdout
    );
}

#[test]
fn a_narrower_terminal_gets_a_narrower_table() {
    let sb = busy_desk();
    let run = on_terminal(&sb, 60, &["ticket", "list"], &[]).success();
    assert_eq!(run.stdout.lines().count(), 5, "{}", run.stdout);
    assert!(run.stdout.lines().all(|l| width(l) <= 60), "{}", run.stdout);
    // COLUMNS, when set, is the width to fit.
    let run = on_terminal(&sb, 80, &["ticket", "list"], &[("COLUMNS", "50")]).success();
    assert!(run.stdout.lines().all(|l| width(l) <= 50), "{}", run.stdout);
}

#[test]
fn a_table_on_a_pipe_has_no_borders_and_one_line_per_row() {
    let sb = busy_desk();
    let run = sb.run(["ticket", "list"]).success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(
        lines[0].starts_with("ID  STATUS  PRIORITY"),
        "{}",
        run.stdout
    );
    for line in &lines {
        assert!(!line.contains(['│', '─', '┌', '+', '|']), "{line}");
    }
    let queue = sb.run(["notify", "list"]).success();
    let rows = sb.sql_i64("SELECT count(*) FROM notifications") as usize;
    assert_eq!(queue.stdout.lines().count(), rows + 1, "{}", queue.stdout);
    assert!(
        queue.stdout.contains("5.1.1 the mailbox of this recipient"),
        "{}",
        queue.stdout
    );
}

#[test]
fn columns_empty_in_every_row_are_left_out() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Printer on fire");
    // Nothing was tried yet: no next try and no last error anywhere.
    let run = sb.run(["notify", "list"]).success();
    let header = run.stdout.lines().next().unwrap_or_default().to_string();
    assert!(header.starts_with("ID  CHANNEL  USER  TO"), "{header}");
    assert!(!header.contains("NEXT TRY"), "{header}");
    assert!(!header.contains("LAST ERROR"), "{header}");
    // Nobody is assigned yet.
    let run = sb.run(["ticket", "list"]).success();
    assert!(!run.stdout.contains("ASSIGNEE"), "{}", run.stdout);
    // Once an email is deferred, its columns appear.
    let sb = Sandbox::with(
        ServerOptions::default().with_verdict(|_, _| Verdict::Reply(451, "4.3.0 try later".into())),
        BASE_CONFIG,
    );
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Printer on fire");
    sb.run(["notify", "flush"]).code(3);
    let run = sb.run(["notify", "list"]).success();
    let header = run.stdout.lines().next().unwrap_or_default();
    assert!(header.contains("NEXT TRY"), "{header}");
    assert!(header.contains("LAST ERROR"), "{header}");
}

/// `2026-11-30 11:25`: the one format tables and text use for times.
fn is_local_format(text: &str) -> bool {
    let b = text.as_bytes();
    text.len() == 16
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// An RFC 3339 UTC time from JSON, as people in `tz` read it.
fn local(rfc3339: &str, tz: &str) -> String {
    let at: jiff::Timestamp = rfc3339.parse().expect("RFC 3339");
    let zone = jiff::tz::TimeZone::get(tz).expect("a known time zone");
    at.to_zoned_datetime(zone)
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

#[test]
fn tables_and_text_show_local_time_in_one_format_and_json_stays_utc() {
    let sb = Sandbox::with(
        ServerOptions::default().with_verdict(|_, _| Verdict::Reply(451, "4.3.0 try later".into())),
        BASE_CONFIG,
    );
    sb.user("dev", "dev@example.org");
    let ticket = sb.ticket("dev", "high", "Printer on fire");
    sb.run(["notify", "flush"]).code(3);
    let created = ticket["created_at"]
        .as_str()
        .expect("created_at")
        .to_string();
    assert!(created.ends_with('Z'), "{created}");
    // Tokyo is never UTC: a UTC time printed as local would differ.
    let tz = [("TZ", "Asia/Tokyo")];
    let expected = local(&created, "Asia/Tokyo");
    assert_ne!(expected, local(&created, "UTC"));
    let email = sb
        .sql_i64("SELECT id FROM notifications WHERE channel = 'email'")
        .to_string();
    for args in [
        vec!["ticket", "list"],
        vec!["ticket", "show", "1"],
        vec!["inbox", "--user", "dev"],
        vec!["notify", "show", &email],
        vec!["user", "show", "dev"],
    ] {
        let run = sb.run_env(&args, &tz).success();
        assert!(
            run.stdout.contains(&expected),
            "{args:?} lacks {expected}:\n{}",
            run.stdout
        );
        assert!(
            !run.stdout.contains("T0") && !run.stdout.contains("T1") && !run.stdout.contains("T2"),
            "{args:?} prints an RFC 3339 time:\n{}",
            run.stdout
        );
    }
    // The next try of the deferred email: local, in the same format.
    let listed = sb
        .run_env(["notify", "list", "--channel", "email"], &tz)
        .success();
    let next: serde_json::Value = sb
        .run(["notify", "list", "--channel", "email", "--format", "json"])
        .success()
        .json();
    let next_at = next[0]["next_attempt_at"]
        .as_str()
        .expect("next_attempt_at");
    assert!(next_at.ends_with('Z'), "{next_at}");
    assert!(
        listed.stdout.contains(&local(next_at, "Asia/Tokyo")),
        "{}",
        listed.stdout
    );
    // Every time in the ticket listing has the one format.
    let list = sb.run_env(["ticket", "list"], &tz).success();
    let row = list.stdout.lines().nth(1).expect("a row");
    let at = row.find(&expected).expect("the time");
    assert!(is_local_format(&row[at..at + 16]), "{row}");
    // JSON is unchanged: RFC 3339 UTC whatever TZ says.
    let json = sb
        .run_env(["ticket", "show", "1", "--format", "json"], &tz)
        .success()
        .json();
    assert_eq!(json["created_at"].as_str(), Some(created.as_str()));
}
