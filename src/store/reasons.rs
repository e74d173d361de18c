//! SQL for why each notification exists: the audience (`notify::Audience`)
//! that chose its user, kept in `notifications.reason` (written with the
//! notification, `notifications::insert_all`), and what `notify why` reads.

use super::Result;
use super::db::Db;

/// A notification with what `notify why` explains it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub id: i64,
    pub channel: String,
    pub status: String,
    pub reason: Option<String>,
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub event_id: i64,
    pub event_kind: String,
    pub event_data: String,
    pub event_at: i64,
    pub actor: String,
    pub ticket_id: i64,
}

/// A notification, its user and its event; None when there is no such notification.
pub fn origin(conn: &dyn Db, notification_id: i64) -> Result<Option<Origin>> {
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
                id: row.int(0)?,
                channel: row.text(1)?,
                status: row.text(2)?,
                reason: row.opt_text(3)?,
                user_id: row.int(4)?,
                username: row.text(5)?,
                email: row.text(6)?,
                event_id: row.int(7)?,
                event_kind: row.text(8)?,
                event_data: row.text(9)?,
                event_at: row.int(10)?,
                actor: row.text(11)?,
                ticket_id: row.int(12)?,
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
pub fn email_of(conn: &dyn Db, event_id: i64, user_id: i64) -> Result<Option<EmailOf>> {
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
