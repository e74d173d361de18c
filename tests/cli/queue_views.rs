//! The operator's views of the queue (SPEC §5 "Knowing when"): `notify
//! status` says when the next deferred email is due, `notify show` when a
//! `processing` claim expires, each line said once.

use serde_json::Value;

use crate::support::{BASE_CONFIG, Sandbox, ServerOptions, smtp::Verdict};

/// A sandbox whose SMTP server defers every email, with one developer and one ticket.
fn deferring() -> Sandbox {
    let sb = Sandbox::with(
        ServerOptions::default().with_verdict(|_, _| Verdict::Reply(451, "4.3.0 try later".into())),
        BASE_CONFIG,
    );
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Printer on fire");
    sb
}

/// An RFC 3339 UTC time as `TZ=UTC` prints it for people.
fn as_utc_text(rfc3339: &str) -> String {
    let at: jiff::Timestamp = rfc3339.parse().expect("RFC 3339");
    at.strftime("%Y-%m-%d %H:%M").to_string()
}

fn email_id(sb: &Sandbox) -> i64 {
    sb.sql_i64("SELECT id FROM notifications WHERE channel = 'email'")
}

#[test]
fn status_says_when_the_next_deferred_email_is_due() {
    let sb = deferring();
    let status = sb
        .run(["notify", "status", "--format", "json"])
        .success()
        .json();
    assert_eq!(status["next_due_at"], Value::Null, "{status}");

    sb.run(["notify", "flush"]).code(3);
    let shown = sb
        .run([
            "notify",
            "show",
            &email_id(&sb).to_string(),
            "--format",
            "json",
        ])
        .success()
        .json();
    let next = shown["next_attempt_at"].as_str().expect("a next attempt");
    let status = sb
        .run(["notify", "status", "--format", "json"])
        .success()
        .json();
    assert_eq!(status["due"], 0, "{status}");
    assert_eq!(status["next_due_at"].as_str(), Some(next), "{status}");

    let text = sb.run_env(["notify", "status"], &[("TZ", "UTC")]).success();
    assert!(
        text.stdout
            .lines()
            .any(|l| l == format!("next due:   {}", as_utc_text(next))),
        "{}",
        text.stdout
    );
    // Once it is due, it is counted as due and no longer announced as next.
    let later = sb
        .run_env(
            ["notify", "status", "--format", "json"],
            &[("HELPDESK_NOW", "+2h")],
        )
        .success()
        .json();
    assert_eq!(later["due"], 1, "{later}");
    assert_eq!(later["next_due_at"], Value::Null, "{later}");
}

#[test]
fn show_says_when_a_processing_claim_expires() {
    let sb = deferring();
    let id = email_id(&sb);
    // A flush holds the email: as a flush that was killed leaves it.
    let lease_until: i64 = 4_102_444_800_000; // 2100-01-01T00:00:00Z
    sb.sql_exec(&format!(
        "UPDATE notifications SET status = 'processing', lease_until = {lease_until}, claim = 'other-flush' WHERE id = {id}"
    ));

    let shown = sb
        .run(["notify", "show", &id.to_string(), "--format", "json"])
        .success()
        .json();
    assert_eq!(shown["status"], "processing");
    assert_eq!(shown["claim_expires_at"], "2100-01-01T00:00:00Z", "{shown}");
    let text = sb
        .run_env(["notify", "show", &id.to_string()], &[("TZ", "UTC")])
        .success();
    assert!(
        text.stdout
            .lines()
            .any(|l| l == "claim expires: 2100-01-01 00:00"),
        "{}",
        text.stdout
    );
    // No claim, no line: the same email deferred again keeps its old
    // `lease_until` in the row, and still shows no expiry.
    sb.sql_exec(&format!(
        "UPDATE notifications SET status = 'errored', claim = NULL WHERE id = {id}"
    ));
    let deferred = sb
        .run(["notify", "show", &id.to_string(), "--format", "json"])
        .success()
        .json();
    assert_eq!(deferred["status"], "errored");
    assert_eq!(deferred["claim_expires_at"], Value::Null, "{deferred}");
    let text = sb.run(["notify", "show", &id.to_string()]).success();
    assert!(!text.stdout.contains("claim expires"), "{}", text.stdout);
}

#[test]
fn show_gives_the_attempt_count_once_with_the_log_under_it() {
    let sb = deferring();
    sb.run(["notify", "flush"]).code(3);
    let text = sb
        .run(["notify", "show", &email_id(&sb).to_string()])
        .success();
    let attempts: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("attempts"))
        .collect();
    assert_eq!(attempts, ["attempts:      1"], "{}", text.stdout);
    let log = text
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("attempts:"))
        .nth(1)
        .expect("the attempt log under the count");
    assert!(
        log.starts_with("  ") && log.contains("4.3.0 try later"),
        "{log}"
    );
}

#[test]
fn status_after_a_purge_prints_no_empty_in_app_line() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Printer on fire");
    sb.run(["inbox", "read", "--user", "dev", "--all"])
        .success();
    sb.run(["notify", "flush"]).success();
    sb.run_env(
        ["notify", "purge", "--older-than", "1m"],
        &[("HELPDESK_NOW", "+1h")],
    )
    .success();
    assert_eq!(sb.sql_i64("SELECT count(*) FROM notifications"), 0);
    let text = sb.run(["notify", "status"]).success();
    assert!(
        text.stdout.lines().all(|l| l.trim_end() != "in-app:"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.starts_with("email:"), "{}", text.stdout);
}

#[test]
fn the_progress_bar_prints_whole_rates() {
    let options = ServerOptions {
        latency: Some(std::time::Duration::from_millis(40)),
        ..ServerOptions::default()
    };
    let sb = Sandbox::with(options, BASE_CONFIG);
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    for i in 0..6 {
        sb.ticket("dev", "high", &format!("Ticket {i}"));
    }
    let run = crate::tables::on_terminal(&sb, 100, &["notify", "flush"], &[]).success();
    // The bar is redrawn in place: take every rate it showed.
    let rates: Vec<&str> = run
        .stdout
        .split(['\r', '\n', ','])
        .map(str::trim)
        .filter(|part| part.ends_with("/s"))
        .collect();
    assert!(!rates.is_empty(), "no progress bar:\n{:?}", run.stdout);
    for rate in rates {
        let number = rate.trim_end_matches("/s");
        assert!(
            number.chars().all(|c| c.is_ascii_digit()),
            "{rate:?} in {:?}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("sent 12, deferred 0, failed 0"),
        "{}",
        run.stdout
    );
}
