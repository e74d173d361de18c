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
        // 2: in-app notifications filed per user in batches, with an unread counter: a new ticket
        // wrote one page per recipient in two per-user indexes, 3 MB per ticket with history.
        M::up(include_str!("schema/002_inbox.sql")),
        // 3: conversations by email: each ticket's thread root, received mail
        // recorded once by Message-ID, and the suppression list.
        M::up(include_str!("schema/003_mail.sql")),
        // 4: ownership (SPEC §7): assignees, watchers, preferences, and the held
        // status and per-notification reason that preferences and digests need.
        M::up(include_str!("schema/004_ownership.sql")),
        // 5: no index of Message-IDs: an email's notification is found by the
        // event and user its Message-ID names.
        M::up(include_str!("schema/005_message_ids.sql")),
    ]
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::model::UserId;
    use crate::store::notifications;

    #[test]
    fn migrations_are_valid() {
        super::all().validate().unwrap();
    }

    #[test]
    fn step_2_files_an_existing_databases_inbox_and_counts_its_unread() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::all().to_version(&mut conn, 1).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, email, created_at) VALUES (1, 'a', 'a@x', 0), (2, 'b', 'b@x', 0);
             INSERT INTO tickets (id, created_by, purpose, priority, status, description, created_at, updated_at)
                  VALUES (1, 1, 'app', 'low', 'ready', 'd', 0, 0);
             INSERT INTO events (id, ticket_id, kind, actor_id, data, title, body, url, created_at)
                  VALUES (1, 1, 'new', 1, '{}', 't1', 'b', '/u', 0), (2, 1, 'comment', 2, '{}', 't2', 'b', '/u', 0);
             INSERT INTO notifications (id, event_id, ticket_id, user_id, channel, priority, status, read_at, created_at)
                  VALUES (1, 1, 1, 1, 'app', 1, 'sent', NULL, 0), (2, 1, 1, 1, 'email', 1, 'pending', NULL, 0),
                         (3, 1, 1, 2, 'app', 1, 'sent', 5, 0), (4, 2, 1, 1, 'app', 1, 'sent', 6, 0),
                         (5, 2, 1, 2, 'app', 1, 'sent', NULL, 0);",
        )
        .unwrap();
        super::all().to_latest(&mut conn).unwrap();
        let listed = |user: i64, unread_only| -> Vec<(i64, String)> {
            notifications::inbox(&conn, UserId(user), unread_only, 50)
                .unwrap()
                .into_iter()
                .map(|n| (n.id.get(), n.title))
                .collect()
        };
        assert_eq!(listed(1, false), [(4, "t2".into()), (1, "t1".into())]);
        assert_eq!(listed(1, true), [(1, "t1".into())]);
        assert_eq!(listed(2, false), [(5, "t2".into()), (3, "t1".into())]);
        assert_eq!(notifications::unread_count(&conn, UserId(1)).unwrap(), 1);
        assert_eq!(notifications::unread_count(&conn, UserId(2)).unwrap(), 1);
        assert_eq!(
            notifications::mark_all_read(&conn, UserId(2), 9).unwrap(),
            1
        );
        assert_eq!(notifications::unread_count(&conn, UserId(2)).unwrap(), 0);
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

    /// Step 5 drops the index of Message-IDs: an email sent before it is
    /// still found by the Message-ID a reply or a bounce names.
    #[test]
    fn step_5_keeps_sent_emails_findable_by_message_id() {
        use crate::mail::classify::Lookup;
        use crate::model::EventId;
        use crate::notify::message;
        use crate::store::received::StoreLookup;

        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::all().to_version(&mut conn, 4).unwrap();
        let sent = message::mint_message_id(EventId(1), UserId(1), 7, "help.example.org");
        conn.execute_batch(
            "INSERT INTO users (id, username, email, created_at) VALUES (1, 'ann', 'a@example.org', 1);
             INSERT INTO tickets VALUES (1, 1, 'app', 'low', 'ready', 'd', 1, 1, NULL);
             INSERT INTO events VALUES (1, 1, 'new', 1, '{}', 't', 'b', '/u', 1);",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO notifications (id, event_id, ticket_id, user_id, channel, priority, status,
                                        to_addr, message_id, created_at)
                  VALUES (9, 1, 1, 1, 'email', 1, 'sent', 'a@example.org', ?1, 2)",
            [&sent],
        )
        .unwrap();
        super::all().to_latest(&mut conn).unwrap();
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'notifications_by_message_id'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0);
        let found = StoreLookup(&conn)
            .our_notification_by_message_id(&sent)
            .unwrap()
            .expect("the sent email is found by its Message-ID");
        assert_eq!(found.id.get(), 9);
    }
}
