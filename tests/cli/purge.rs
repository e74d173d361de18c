//! `notify purge --older-than D` (SPEC §5): deletes sent and failed email and
//! read in-app notifications older than D, with the attempts of the deleted
//! emails; never an unread in-app notification, never email still due
//! (`pending`, `processing`, `errored`). `--dry-run` deletes nothing and
//! counts per channel and status; `--channel` narrows it. Age comes from
//! `HELPDESK_NOW`, never from sleeping.

use serde_json::{Value, json};

use crate::support::smtp::Verdict;
use crate::support::*;

const CONFIG: &str = r#"database = "helpdesk.db"
admins = [["Dev One", "dev@example.org"], ["Dev Two", "dev2@example.org"], ["Dev Three", "dev3@example.org"]]
default_from_email = "Helpdesk <helpdesk@example.org>"

[email.smtp]
host = "127.0.0.1"
port = {port}
timeout_secs = 5
"#;

/// Two hours on: everything written now is older than `--older-than 1h`.
const LATER: &[(&str, &str)] = &[("HELPDESK_NOW", "+2h")];

/// A help desk with history. Ticket 1: its email to dev was sent, to dev2
/// refused (failed), to dev3 deferred (errored); dev and boss read their
/// in-app notifications, dev2 and dev3 did not. Ticket 2: every email still
/// pending, but dev's claimed by a running flush (processing); nothing read.
struct History {
    sb: Sandbox,
    /// (ticket 1's emails to dev, dev2, dev3), ticket 2's email to dev.
    sent: i64,
    failed: i64,
    errored: i64,
    processing: i64,
}

fn notification(ticket: &Value, user: &str, channel: &str) -> i64 {
    ticket["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .find(|n| n["user"] == user && n["channel"] == channel)
        .and_then(|n| n["id"].as_i64())
        .unwrap_or_else(|| panic!("no {channel} notification for {user} in {ticket}"))
}

fn history() -> History {
    let options = ServerOptions::default().with_verdict(|env, _| {
        if env.rcpt_to.iter().any(|r| r == "dev2@example.org") {
            Verdict::Reply(550, "5.1.1 no such user".into())
        } else if env.rcpt_to.iter().any(|r| r == "dev3@example.org") {
            Verdict::Reply(451, "4.3.0 try later".into())
        } else {
            Verdict::Accept
        }
    });
    let sb = Sandbox::with(options, CONFIG);
    for user in ["dev", "dev2", "dev3"] {
        sb.user(user, &format!("{user}@example.org"));
    }
    sb.manager("boss", "boss@example.org");
    sb.user("bob", "bob@example.org");
    let first = sb.ticket("bob", "high", "Old news");
    sb.run(["notify", "flush"]).code(3);
    sb.run(["inbox", "read", "--user", "dev", "--all"])
        .success();
    sb.run(["inbox", "read", "--user", "boss", "--all"])
        .success();
    let second = sb.ticket("bob", "low", "Still queued");
    let processing = notification(&second, "dev", "email");
    // A flush holding a claim right now: what a running flush leaves in the row.
    sb.sql_exec(&format!(
        "UPDATE notifications SET status = 'processing', claim = 'running', lease_until = 9000000000000000
          WHERE id = {processing}"
    ));
    History {
        sent: notification(&first, "dev", "email"),
        failed: notification(&first, "dev2", "email"),
        errored: notification(&first, "dev3", "email"),
        processing,
        sb,
    }
}

fn status_of(sb: &Sandbox, id: i64) -> String {
    sb.run(["notify", "show", &id.to_string(), "--format", "json"])
        .success()
        .json()["status"]
        .as_str()
        .expect("a status")
        .to_string()
}

fn count(sb: &Sandbox, channel: &str, condition: &str) -> i64 {
    sb.sql_i64(&format!(
        "SELECT count(*) FROM notifications WHERE channel = '{channel}' AND {condition}"
    ))
}

fn unread(sb: &Sandbox, user: &str) -> i64 {
    sb.run(["inbox", "--user", user, "--format", "json"])
        .success()
        .json()["unread"]
        .as_i64()
        .expect("unread is a number")
}

#[test]
fn purge_deletes_what_is_done_with_and_keeps_what_is_unread_or_due() {
    let h = history();
    let sb = &h.sb;
    assert_eq!(status_of(sb, h.sent), "sent");
    assert_eq!(status_of(sb, h.failed), "failed");
    assert_eq!(status_of(sb, h.errored), "errored");
    assert_eq!(sb.sql_i64("SELECT count(*) FROM attempts"), 3);
    let unread_before: Vec<i64> = ["dev", "dev2", "dev3", "boss"]
        .iter()
        .map(|u| unread(sb, u))
        .collect();
    assert_eq!(unread_before, [1, 2, 2, 1]);

    // Nothing is an hour old yet.
    let run = sb
        .run(["notify", "purge", "--older-than", "1h", "--format", "json"])
        .success();
    assert_eq!(run.json()["count"], 0);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM notifications"), 14);

    let run = sb
        .run_env(
            ["notify", "purge", "--older-than", "1h", "--format", "json"],
            LATER,
        )
        .success();
    assert_eq!(
        run.json(),
        json!({"dry_run": false, "count": 4,
               "by_channel": {"email": {"sent": 1, "failed": 1}, "app": {"read": 2}}})
    );
    for gone in [h.sent, h.failed] {
        sb.run(["notify", "show", &gone.to_string()]).code(1);
    }
    assert_eq!(status_of(sb, h.errored), "errored");
    assert_eq!(status_of(sb, h.processing), "processing");
    assert_eq!(count(sb, "email", "status = 'pending'"), 2);
    assert_eq!(count(sb, "app", "read_at IS NOT NULL"), 0);
    assert_eq!(
        count(sb, "app", "read_at IS NULL"),
        6,
        "every unread one kept"
    );
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM attempts"),
        1,
        "the deleted emails' attempts went with them; the errored one's stayed"
    );
    let unread_after: Vec<i64> = ["dev", "dev2", "dev3", "boss"]
        .iter()
        .map(|u| unread(sb, u))
        .collect();
    assert_eq!(unread_after, unread_before);
    let shown = sb
        .run(["ticket", "show", "1", "--format", "json"])
        .success()
        .json();
    let left: Vec<(String, String)> = shown["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .map(|n| {
            (
                n["user"].as_str().unwrap_or_default().to_string(),
                n["channel"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(
        left,
        [
            ("dev2".to_string(), "app".to_string()),
            ("dev3".to_string(), "app".to_string()),
            ("dev3".to_string(), "email".to_string()),
        ],
        "ticket 1 keeps its unread in-app notifications and its errored email"
    );

    // Read later, purged later: the inbox and its count follow.
    sb.run(["inbox", "read", "--user", "dev2", "--all"])
        .success();
    let run = sb
        .run_env(["notify", "purge", "--older-than", "1h"], LATER)
        .success();
    assert_eq!(
        run.stdout.trim_end(),
        "purged 2 notifications (email sent 0, failed 0; in-app read 2)"
    );
    assert_eq!(unread(sb, "dev2"), 0);
    let inbox = sb
        .run(["inbox", "--user", "dev2", "--format", "json"])
        .success()
        .json();
    assert_eq!(inbox["notifications"], json!([]));
}

#[test]
fn a_dry_run_counts_per_channel_and_status_and_deletes_nothing() {
    let h = history();
    let sb = &h.sb;
    let before = sb.sql_i64("SELECT count(*) FROM notifications");
    let run = sb
        .run_env(
            [
                "notify",
                "purge",
                "--older-than",
                "1h",
                "--dry-run",
                "--format",
                "json",
            ],
            LATER,
        )
        .success();
    assert_eq!(
        run.json(),
        json!({"dry_run": true, "count": 4,
               "by_channel": {"email": {"sent": 1, "failed": 1}, "app": {"read": 2}}})
    );
    let run = sb
        .run_env(
            ["notify", "purge", "--older-than", "1h", "--dry-run"],
            LATER,
        )
        .success();
    assert_eq!(
        run.stdout.trim_end(),
        "would purge 4 notifications (email sent 1, failed 1; in-app read 2)\n\
         dry run: nothing was deleted"
    );
    assert_eq!(sb.sql_i64("SELECT count(*) FROM notifications"), before);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM attempts"), 3);
    assert_eq!(status_of(sb, h.sent), "sent");
}

#[test]
fn channel_narrows_the_purge() {
    let h = history();
    let sb = &h.sb;
    let run = sb
        .run_env(
            [
                "notify",
                "purge",
                "--older-than",
                "1h",
                "--channel",
                "email",
                "--format",
                "json",
            ],
            LATER,
        )
        .success();
    assert_eq!(
        run.json(),
        json!({"dry_run": false, "count": 2, "by_channel": {"email": {"sent": 1, "failed": 1}}})
    );
    assert_eq!(
        count(sb, "app", "read_at IS NOT NULL"),
        2,
        "in-app untouched"
    );
    assert_eq!(sb.sql_i64("SELECT count(*) FROM attempts"), 1);

    let run = sb
        .run_env(
            ["notify", "purge", "--older-than", "1h", "--channel", "app"],
            LATER,
        )
        .success();
    assert_eq!(
        run.stdout.trim_end(),
        "purged 2 notifications (in-app read 2)"
    );
    assert_eq!(count(sb, "app", "read_at IS NOT NULL"), 0);
    assert_eq!(count(sb, "email", "TRUE"), 4, "email untouched");
}

#[test]
fn an_unknown_channel_is_wrong_usage() {
    let sb = Sandbox::new();
    let run = sb
        .run(["notify", "purge", "--older-than", "1d", "--channel", "sms"])
        .code(2);
    assert!(run.stderr.contains("sms"), "{}", run.stderr);
    assert!(
        run.stderr.contains("app") && run.stderr.contains("email"),
        "{}",
        run.stderr
    );
}
