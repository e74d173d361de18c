//! SQL for why each notification exists: the audience (`notify::Audience`)
//! that chose its user, kept in `notifications.reason`. Written right after
//! the notification, in the same transaction.

use super::Result;
use super::db::{Backend, Db};

/// Records the audience that chose a notification's user.
pub fn set(conn: &dyn Db, notification_id: i64, reason: &str) -> Result<()> {
    conn.execute(
        "UPDATE notifications SET reason = $2 WHERE id = $1",
        &[&notification_id, &reason],
    )?;
    Ok(())
}

/// Records one audience for many notifications at once (one statement;
/// the IDs travel as one JSON array).
pub fn set_many(conn: &dyn Db, notification_ids: &[i64], reason: &str) -> Result<()> {
    if notification_ids.is_empty() {
        return Ok(());
    }
    let ids = serde_json::to_string(notification_ids)
        .map_err(|e| super::StoreError::Other(e.to_string()))?;
    let sql = match conn.backend() {
        Backend::Sqlite => {
            "UPDATE notifications SET reason = $2
              WHERE id IN (SELECT value FROM json_each($1))"
        }
        Backend::Postgres => {
            "UPDATE notifications SET reason = $2
              WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST($1 AS JSON)))"
        }
    };
    conn.execute(sql, &[&ids, &reason])?;
    Ok(())
}

/// The recorded audience of a notification (None for one written before
/// reasons were kept, or for a digest).
pub fn of(conn: &dyn Db, notification_id: i64) -> Result<Option<String>> {
    Ok(conn
        .query_opt(
            "SELECT reason FROM notifications WHERE id = $1",
            &[&notification_id],
            |row| row.opt_text(0),
        )?
        .flatten())
}

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
