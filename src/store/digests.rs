//! SQL for digests: which users have email `held` for a digest, and taking a
//! user's held email (marking it `sent`) so that it goes into exactly one
//! digest. The digest email itself is an event and a notification like any
//! other, written by the caller in the same transaction.

use super::Result;
use super::db::Db;
use crate::model::{EventId, NotificationId, TicketId, UserId};

/// One held email, with what its event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub id: NotificationId,
    pub ticket_id: TicketId,
    pub event_id: EventId,
    pub priority: i64,
    pub created_at: i64,
    pub reason: Option<String>,
    pub title: String,
    pub body: String,
    pub url: String,
}

/// The users with held email, by ID, from `after` on (exclusive), at most `limit`.
pub fn users_with_held(conn: &dyn Db, after: UserId, limit: i64) -> Result<Vec<UserId>> {
    conn.query(
        "SELECT DISTINCT user_id FROM notifications
          WHERE status = 'held' AND user_id > $1 ORDER BY user_id LIMIT $2",
        &[&after, &limit],
        |row| row.parse(0),
    )
}

/// Takes every email held for `user_id`: marks it `sent` (delivered at
/// `now`, through the digest) and returns it, oldest first. One statement
/// claims them, so two runs at once never take the same one; the caller
/// writes the digest in the same transaction, so a run that dies before
/// its commit takes nothing.
///
/// One statement on both backends: what its event says comes back with
/// each taken row (the `RETURNING` subqueries read `events` by its key).
pub fn take_held(conn: &dyn Db, user_id: UserId, now: i64) -> Result<Vec<Held>> {
    let mut out = conn.query(
        "UPDATE notifications SET status = 'sent', delivered_at = $2
          WHERE user_id = $1 AND status = 'held'
         RETURNING id, ticket_id, event_id, priority, created_at, reason,
                   (SELECT e.title FROM events e WHERE e.id = notifications.event_id),
                   (SELECT e.body FROM events e WHERE e.id = notifications.event_id),
                   (SELECT e.url FROM events e WHERE e.id = notifications.event_id)",
        &[&user_id, &now],
        |row| {
            Ok(Held {
                id: row.parse(0)?,
                ticket_id: row.parse(1)?,
                event_id: row.parse(2)?,
                priority: row.int(3)?,
                created_at: row.int(4)?,
                reason: row.opt_text(5)?,
                title: row.text(6)?,
                body: row.text(7)?,
                url: row.text(8)?,
            })
        },
    )?;
    out.sort_by_key(|h| h.id);
    Ok(out)
}
