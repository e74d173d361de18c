//! SQL for why each notification exists: the audience (`notify::Audience`)
//! that chose its user, kept in `notifications.reason` (written with the
//! notification, `notifications::insert_all`), and what `notify why` reads.

use super::Result;
use super::db::Db;
use crate::model::{
    Channel, EventId, NotificationId, NotificationStatus, RecordedKind, TicketId, UserId,
};

/// A notification with what `notify why` explains it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub id: NotificationId,
    pub channel: Channel,
    pub status: NotificationStatus,
    pub reason: Option<String>,
    pub user_id: UserId,
    pub username: String,
    pub email: String,
    pub event_id: EventId,
    pub event_kind: RecordedKind,
    pub event_data: String,
    pub event_at: i64,
    pub actor: String,
    pub ticket_id: TicketId,
}

/// A notification, its user and its event; None when there is no such notification.
pub fn origin(conn: &dyn Db, notification_id: NotificationId) -> Result<Option<Origin>> {
    conn.query_opt(
        "SELECT n.id, n.channel, n.status, n.reason, u.id, u.username, u.email,
                e.id, e.kind, e.data, e.created_at, a.username, e.ticket_id
           FROM notifications n
           JOIN users u ON u.id = n.user_id
           JOIN events e ON e.id = n.event_id
           JOIN users a ON a.id = e.actor_id
          WHERE n.id = $1",
        &[&notification_id],
        |row| {
            Ok(Origin {
                id: row.parse(0)?,
                channel: row.parse(1)?,
                status: row.parse(2)?,
                reason: row.opt_text(3)?,
                user_id: row.parse(4)?,
                username: row.text(5)?,
                email: row.text(6)?,
                event_id: row.parse(7)?,
                event_kind: row.parse(8)?,
                event_data: row.text(9)?,
                event_at: row.int(10)?,
                actor: row.text(11)?,
                ticket_id: row.parse(12)?,
            })
        },
    )
}

/// The email an event gave a user: why, to where, and its Message-ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailOf {
    pub reason: Option<String>,
    pub to_addr: Option<String>,
    pub message_id: Option<String>,
}

/// The email notification event `event_id` wrote for `user_id`, if any.
pub fn email_of(conn: &dyn Db, event_id: EventId, user_id: UserId) -> Result<Option<EmailOf>> {
    conn.query_opt(
        "SELECT reason, to_addr, message_id FROM notifications
          WHERE event_id = $1 AND user_id = $2 AND channel = 'email'",
        &[&event_id, &user_id],
        |row| {
            Ok(EmailOf {
                reason: row.opt_text(0)?,
                to_addr: row.opt_text(1)?,
                message_id: row.opt_text(2)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::{PgDb, StatementCache};
    use crate::store::postgres::migrate;
    use crate::store::postgres::testing::{FreshDatabase, client};

    /// Ann's email and in-app notification of event 1; none for bob.
    fn email_of_each(db: &dyn Db) -> Vec<Option<EmailOf>> {
        db.execute_batch(
            "INSERT INTO users (id, username, email, created_at) VALUES (1, 'ann', 'ann@x', 0);
             INSERT INTO users (id, username, email, created_at) VALUES (2, 'bob', 'bob@x', 0);
             INSERT INTO tickets (id, created_by, purpose, priority, status, description, created_at, updated_at)
                  VALUES (1, 1, 'app', 'low', 'ready', 'd', 0, 0);
             INSERT INTO events (id, ticket_id, kind, actor_id, data, title, body, url, created_at)
                  VALUES (1, 1, 'comment', 2, '{}', 't', 'b', '/u', 0);
             INSERT INTO notifications (id, event_id, ticket_id, user_id, channel, priority, status,
                                        to_addr, message_id, created_at, reason)
                  VALUES (1, 1, 1, 1, 'app', 1, 'sent', NULL, NULL, 0, 'creator');
             INSERT INTO notifications (id, event_id, ticket_id, user_id, channel, priority, status,
                                        to_addr, message_id, created_at, reason)
                  VALUES (2, 1, 1, 1, 'email', 1, 'pending', 'ann@x', '<1.1.0@x>', 0, 'creator');",
        )
        .unwrap();
        vec![
            email_of(db, EventId(1), UserId(1)).unwrap(),
            email_of(db, EventId(1), UserId(2)).unwrap(),
            email_of(db, EventId(2), UserId(1)).unwrap(),
        ]
    }

    #[test]
    fn the_email_an_event_gave_a_user_is_found_alike_on_both_backends() {
        let sqlite = crate::store::Store::open_in_memory();
        let on_sqlite = email_of_each(sqlite.conn());
        assert_eq!(
            on_sqlite,
            vec![
                Some(EmailOf {
                    reason: Some("creator".into()),
                    to_addr: Some("ann@x".into()),
                    message_id: Some("<1.1.0@x>".into()),
                }),
                None,
                None,
            ]
        );
        let Some(fresh) = FreshDatabase::new() else {
            return;
        };
        let mut pg = client(&fresh.target);
        migrate::migrate(&mut pg, true).unwrap();
        let mut cache = StatementCache::new();
        assert_eq!(email_of_each(&PgDb::new(&mut pg, &mut cache)), on_sqlite);
    }
}
