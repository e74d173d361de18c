//! The inbox's `unread` comes from a per-user counter of filed notifications
//! and the user's unread recent ones, kept in the same transaction as every
//! change to an in-app notification (src/store/schema/002_inbox.sql).
//! It must stay exact while tickets are created and notifications read at
//! the same time, also across the batch in which recent in-app notifications
//! are filed per user.

use std::thread;

use crate::support::*;

/// `dev` and `dev2` are developers, `boss` a manager, `bob` opens tickets.
fn setup() -> Sandbox {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.manager("boss", "boss@example.org");
    sb.user("bob", "bob@example.org");
    sb
}

/// Adds `events` copies of event 1, each with an in-app notification for
/// dev, dev2 and boss (the older half read), written straight to the
/// database as an operator's sqlite3 would.
fn seed(sb: &Sandbox, events: i64) {
    sb.sql_exec(&format!(
        "BEGIN;
         WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < {events})
         INSERT INTO events (ticket_id, kind, actor_id, data, title, body, url, created_at)
              SELECT ticket_id, kind, actor_id, data, title, body, url, created_at FROM k, events WHERE id = 1;
         INSERT INTO notifications (event_id, ticket_id, user_id, channel, priority, status, read_at,
                                    created_at, delivered_at)
              SELECT e.id, e.ticket_id, u.id, 'app', 1, 'sent',
                     CASE WHEN e.id < {events} / 2 THEN e.created_at END, e.created_at, e.created_at
                FROM events e, users u WHERE e.id > 1 AND u.username IN ('dev', 'dev2', 'boss')
               ORDER BY e.id, u.id;
         COMMIT;"
    ));
}

fn unread_in_json(sb: &Sandbox, user: &str) -> i64 {
    sb.run(["inbox", "--user", user, "--format", "json"])
        .success()
        .json()["unread"]
        .as_i64()
        .expect("unread is a number")
}

fn unread_in_ledger(sb: &Sandbox, user: &str) -> i64 {
    sb.sql_i64(&format!(
        "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id
          WHERE u.username = '{user}' AND n.channel = 'app' AND n.read_at IS NULL"
    ))
}

#[test]
fn unread_counts_stay_exact_under_concurrent_creates_and_reads() {
    let sb = setup();
    sb.ticket("bob", "low", "the first");
    // 8,100 in-app notifications: some twenty tickets later a notification
    // gets ID 8192, which files the recent ones per user.
    seed(&sb, 2_700);
    // SQLite files in-app notifications in batches (schema/002_inbox.sql);
    // PostgreSQL keeps them in `notifications` with per-user indexes.
    let filing = !sb.on_postgres();
    if filing {
        assert_eq!(
            sb.sql_i64("SELECT count(*) FROM inbox"),
            0,
            "nothing filed yet"
        );
    }
    let before = unread_in_ledger(&sb, "dev");
    assert!(before > 1_000, "{before}");

    thread::scope(|s| {
        for creator in 0..3 {
            let sb = &sb;
            s.spawn(move || {
                for i in 0..8 {
                    let description = format!("ticket {creator}.{i}");
                    sb.run([
                        "ticket",
                        "create",
                        "--created-by",
                        "bob",
                        "--purpose",
                        "app",
                        "--priority",
                        "low",
                        "--description",
                        &description,
                        "-q",
                    ])
                    .success();
                }
            });
        }
        let sb = &sb;
        s.spawn(move || {
            for _ in 0..8 {
                sb.run(["inbox", "read", "--user", "dev", "--all", "-q"])
                    .success();
                sb.run([
                    "inbox",
                    "--user",
                    "boss",
                    "--mark-read",
                    "--limit",
                    "3",
                    "-q",
                ])
                .success();
            }
        });
        s.spawn(move || {
            for _ in 0..8 {
                let newest = sb
                    .run([
                        "inbox", "--user", "dev2", "--limit", "1", "--format", "json",
                    ])
                    .success()
                    .json()["notifications"][0]["id"]
                    .as_i64()
                    .expect("dev2 has notifications");
                sb.run(["inbox", "read", "--user", "dev2", &newest.to_string(), "-q"])
                    .success();
            }
        });
    });

    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM tickets"),
        25,
        "every create succeeded"
    );
    for user in ["dev", "dev2", "boss", "bob"] {
        let ledger = unread_in_ledger(&sb, user);
        assert_eq!(unread_in_json(&sb, user), ledger, "{user}");
    }
    assert!(
        unread_in_ledger(&sb, "dev") < before,
        "dev's reads happened"
    );
    if !filing {
        return;
    }
    assert!(
        sb.sql_i64("SELECT count(*) FROM inbox") > 0,
        "the recent notifications were filed during the run"
    );
    assert_eq!(
        sb.sql_i64(
            "SELECT count(*) FROM users u
              WHERE coalesce((SELECT unread FROM inbox_unread c WHERE c.user_id = u.id), 0)
                 <> (SELECT count(*) FROM inbox i JOIN notifications n ON n.id = i.id
                      WHERE i.user_id = u.id AND n.read_at IS NULL)"
        ),
        0,
        "every user's counter of filed unread notifications equals a real count"
    );
    assert_eq!(
        sb.sql_i64(
            "SELECT (SELECT count(*) FROM inbox i JOIN notifications n ON n.id = i.id
                      WHERE i.unread <> (n.read_at IS NULL))
                  + (SELECT count(*) FROM inbox_recent r JOIN notifications n ON n.id = r.id
                      WHERE r.unread <> (n.read_at IS NULL))"
        ),
        0,
        "every unread flag follows read_at"
    );
    assert_eq!(
        sb.sql_i64(
            "SELECT count(*) FROM notifications n
              WHERE n.channel = 'app'
                AND (SELECT count(*) FROM inbox i WHERE i.user_id = n.user_id AND i.id = n.id)
                  + (SELECT count(*) FROM inbox_recent r WHERE r.id = n.id AND r.user_id = n.user_id) <> 1"
        ),
        0,
        "each in-app notification is in exactly one of the user's inbox tables"
    );
    assert_eq!(
        sb.sql_i64(
            "SELECT (SELECT count(*) FROM inbox) + (SELECT count(*) FROM inbox_recent)
                  - (SELECT count(*) FROM notifications WHERE channel = 'app')"
        ),
        0,
        "and nothing else is"
    );
}
