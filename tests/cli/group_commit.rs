//! Group commit: the workers of a `--concurrency` flush hand their outcomes
//! to one list, and whoever takes the run's connection commits them all in
//! one transaction; each worker waits for its own outcome before it sends
//! its next message. A SIGKILL at any moment can therefore leave at most one
//! message per connection sent but not recorded: every other message the
//! server has is recorded `sent`, and after the killed flush's leases expire
//! the next flush resends only those few, with their Message-IDs.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// Emails in the queue besides the ticket's own two.
const BULK: usize = 600;
const CONCURRENCY: usize = 4;

fn config() -> String {
    format!("{BASE_CONFIG}\n[queue]\nbatch_size = 10\nlease_secs = 60\n")
}

/// A queue of `BULK + 2` emails: one ticket's event, for the two developers
/// and `BULK` more users written straight into the database.
fn big_queue(sb: &Sandbox) -> HashSet<String> {
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.ticket("dev", "low", "the queue of a killed concurrent flush");
    let users = if sb.on_postgres() {
        format!(
            "INSERT INTO users (username, email, name, active, created_at)
               SELECT 'bulk' || g, 'bulk' || g || '@example.org', 'Bulk ' || g, TRUE, 0
                 FROM generate_series(1, {BULK}) g;"
        )
    } else {
        format!(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {BULK})
             INSERT INTO users (username, email, name, active, created_at)
               SELECT 'bulk' || n, 'bulk' || n || '@example.org', 'Bulk ' || n, 1, 0 FROM g;"
        )
    };
    sb.sql_exec(&format!(
        "{users}
         INSERT INTO notifications (event_id, ticket_id, user_id, channel, priority, status,
                                    to_addr, message_id, created_at)
           SELECT e.id, e.ticket_id, u.id, 'email', 1, 'pending', u.email,
                  '<bulk.' || u.id || '@example.org>', e.created_at
             FROM users u, events e WHERE u.username LIKE 'bulk%';"
    ));
    let ids: HashSet<String> = stored_ids(sb, "channel = 'email'");
    assert_eq!(ids.len(), BULK + 2);
    ids
}

/// The Message-IDs of the email notifications that match `filter`.
fn stored_ids(sb: &Sandbox, filter: &str) -> HashSet<String> {
    sb.sql_texts(&format!(
        "SELECT message_id FROM notifications WHERE {filter}"
    ))
    .into_iter()
    .map(|row| row[0].clone().expect("a Message-ID").trim().to_string())
    .collect()
}

/// How many times each Message-ID reached the server.
fn arrivals(sb: &Sandbox) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for mail in sb.smtp.received() {
        let id = mail.header("Message-ID").expect("a Message-ID header");
        *seen.entry(id.trim().to_string()).or_default() += 1;
    }
    seen
}

#[test]
fn a_killed_concurrent_flush_leaves_at_most_one_unrecorded_message_per_connection() {
    // Each reply a little late, so that the flush is surely mid-run when killed.
    let options = ServerOptions {
        latency: Some(Duration::from_millis(1)),
        ..ServerOptions::default()
    };
    let sb = Sandbox::with(options, &config());
    let expected = big_queue(&sb);

    let mut flush = sb
        .command()
        .args(["notify", "flush", "--concurrency"])
        .arg(CONCURRENCY.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a flush");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sb.smtp.received().len() < expected.len() / 3 {
        assert!(Instant::now() < deadline, "the flush sent nothing in time");
        assert!(
            flush.try_wait().unwrap().is_none(),
            "the flush ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    flush.kill().expect("SIGKILL the flush");
    flush.wait().expect("reap the flush");
    // What the server had taken when the connections closed.
    let mut before = arrivals(&sb);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = arrivals(&sb);
        if now == before {
            break;
        }
        before = now;
    }

    let recorded = stored_ids(&sb, "channel = 'email' AND status = 'sent'");
    let arrived: HashSet<String> = before.keys().cloned().collect();
    assert!(
        recorded.is_subset(&arrived),
        "recorded sent but never arrived: {:?}",
        recorded.difference(&arrived).collect::<Vec<_>>()
    );
    let unrecorded: HashSet<String> = arrived.difference(&recorded).cloned().collect();
    assert!(
        unrecorded.len() <= CONCURRENCY,
        "{} messages arrived without their outcome recorded, but only one per connection ({CONCURRENCY}) may be in flight: {unrecorded:?}",
        unrecorded.len()
    );
    assert!(
        before.values().all(|n| *n == 1),
        "nothing reaches the server twice within one run"
    );
    for id in &unrecorded {
        assert_eq!(
            stored_ids(&sb, "channel = 'email' AND status = 'processing'")
                .contains(id)
                .then_some(()),
            Some(()),
            "{id}: arrived, not recorded, so still held by the killed flush"
        );
    }

    // The killed flush's leases expire; the next flush sends the rest.
    sb.run_env(
        ["notify", "flush", "--concurrency", "2"],
        &[("HELPDESK_NOW", "+2m")],
    )
    .success();
    assert_eq!(
        sb.sql_i64(
            "SELECT count(*) FROM notifications WHERE channel = 'email' AND status <> 'sent'"
        ),
        0,
        "everything is sent in the end"
    );
    let after = arrivals(&sb);
    let keys: HashSet<String> = after.keys().cloned().collect();
    assert_eq!(keys, expected, "every email arrived, nothing else did");
    let twice: HashSet<String> = after
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        twice.is_subset(&unrecorded) && after.values().all(|n| *n <= 2),
        "only a message in flight at the kill is resent, once: {twice:?} (in flight: {unrecorded:?})"
    );
}
