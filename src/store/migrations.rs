//! The ordered schema steps. The number applied lives in SQLite's
//! `user_version`; steps only ever get appended, never edited once shipped.

use rusqlite_migration::{M, Migrations};

/// Every step, oldest first. A database whose `user_version` is past the end
/// comes from a newer helpdesk and is refused by `Store::open`.
pub fn all() -> Migrations<'static> {
    Migrations::new(steps())
}

/// How many steps there are: the `user_version` of an up-to-date database.
pub fn count() -> i64 {
    steps().len() as i64
}

fn steps() -> Vec<M<'static>> {
    vec![
        // 1: the first schema: people and permissions, tickets and their events,
        // notifications with their delivery state, and a log of every attempt.
        M::up(include_str!("schema/001_initial.sql")),
        // 4: ownership (SPEC §7): assignees, watchers, preferences, and the held
        // status and per-notification reason that preferences and digests need.
        // (Steps 2 and 3 are other branches'; the lead orders them at merge.)
        M::up(include_str!("schema/004_ownership.sql")),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::all().validate().unwrap();
    }

    /// Step 4 rebuilds `notifications` (a CHECK constraint cannot change in
    /// place): what a database held before it is all still there, attempts
    /// still point at their notifications, and `held` is now accepted.
    #[test]
    fn the_notifications_rebuild_keeps_every_row_and_reference() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::all().to_version(&mut conn, 1).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, email, created_at) VALUES (1, 'ann', 'a@example.org', 1);
             INSERT INTO tickets VALUES (1, 1, 'app', 'low', 'ready', 'd', 1, 1);
             INSERT INTO events VALUES (1, 1, 'new', 1, '{}', 't', 'b', '/u', 1);
             INSERT INTO notifications (id, event_id, ticket_id, user_id, channel, priority, status,
                                        to_addr, message_id, attempts, created_at)
                  VALUES (7, 1, 1, 1, 'email', 1, 'errored', 'a@example.org', '<m@x>', 1, 2);
             INSERT INTO attempts VALUES (7, 1, 3, 'deferred', '451 later');",
        )
        .unwrap();
        super::all().to_latest(&mut conn).unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        let row: (String, String, i64, Option<String>) = conn
            .query_row(
                "SELECT status, message_id, attempts, reason FROM notifications WHERE id = 7",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(row, ("errored".into(), "<m@x>".into(), 1, None));
        let problems: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(problems, 0);
        conn.execute("UPDATE notifications SET status = 'held' WHERE id = 7", [])
            .unwrap();
        assert!(
            conn.execute("UPDATE notifications SET status = 'lost' WHERE id = 7", [])
                .is_err()
        );
        // Deleting a notification still cascades to its attempts.
        conn.execute("DELETE FROM notifications WHERE id = 7", [])
            .unwrap();
        let left: i64 = conn
            .query_row("SELECT count(*) FROM attempts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
