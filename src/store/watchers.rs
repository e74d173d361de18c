//! SQL for a ticket's watchers: who follows a ticket, and since when.

use super::Result;
use super::db::Db;
use super::users::User;

/// Makes `user_id` watch `ticket_id` from `now`; false when they already did
/// (their first `since` is kept). The caller decides the transaction.
pub fn add(conn: &dyn Db, ticket_id: i64, user_id: i64, now: i64) -> Result<bool> {
    let changed = conn.execute(
        "INSERT INTO watchers (ticket_id, user_id, since) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&ticket_id, &user_id, &now],
    )?;
    Ok(changed > 0)
}

/// Stops `user_id` watching `ticket_id`; false when they did not.
pub fn remove(conn: &dyn Db, ticket_id: i64, user_id: i64) -> Result<bool> {
    let changed = conn.execute(
        "DELETE FROM watchers WHERE ticket_id = $1 AND user_id = $2",
        &[&ticket_id, &user_id],
    )?;
    Ok(changed > 0)
}

/// A ticket's watchers, active or not, with when each started, oldest first.
pub fn of_ticket(conn: &dyn Db, ticket_id: i64) -> Result<Vec<(User, i64)>> {
    conn.query(
        "SELECT u.id, u.username, u.email, u.name, u.active, u.created_at, w.since
           FROM watchers w JOIN users u ON u.id = w.user_id
          WHERE w.ticket_id = $1 ORDER BY w.since, u.id",
        &[&ticket_id],
        |row| {
            Ok((
                User {
                    id: row.int(0)?,
                    username: row.text(1)?,
                    email: row.text(2)?,
                    name: row.text(3)?,
                    active: row.bool(4)?,
                    created_at: row.int(5)?,
                },
                row.int(6)?,
            ))
        },
    )
}

/// Since when `user_id` watches `ticket_id`, if they do.
pub fn since(conn: &dyn Db, ticket_id: i64, user_id: i64) -> Result<Option<i64>> {
    conn.query_opt(
        "SELECT since FROM watchers WHERE ticket_id = $1 AND user_id = $2",
        &[&ticket_id, &user_id],
        |row| row.int(0),
    )
}
