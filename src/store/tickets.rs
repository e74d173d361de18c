//! SQL for tickets.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Result;
use crate::model::{Priority, Purpose, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    pub created_by: i64,
    /// The creator's username, joined in for display.
    pub created_by_name: String,
    pub purpose: Purpose,
    pub priority: Priority,
    pub status: Status,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewTicket<'a> {
    pub created_by: i64,
    pub purpose: Purpose,
    pub priority: Priority,
    pub description: &'a str,
}

const SELECT: &str =
    "SELECT t.id, t.created_by, u.username, t.purpose, t.priority, t.status, t.description,
                             t.created_at, t.updated_at
                        FROM tickets t JOIN users u ON u.id = t.created_by";

/// Reads a stored enum; a value this version does not know is a damaged row.
fn stored<T>(row: &Row<'_>, index: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown stored value `{text}`").into(),
        )
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        id: row.get(0)?,
        created_by: row.get(1)?,
        created_by_name: row.get(2)?,
        purpose: stored(row, 3, Purpose::from_stored)?,
        priority: stored(row, 4, Priority::from_stored)?,
        status: stored(row, 5, Status::from_stored)?,
        description: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

/// Inserts a ticket with status `ready`, created at `now`; the caller
/// decides the transaction.
pub fn insert(conn: &Connection, new: &NewTicket<'_>, now: i64) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO tickets (created_by, purpose, priority, status, description, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'ready', ?4, ?5, ?5)",
    )?
    .execute(params![new.created_by, new.purpose.as_str(), new.priority.as_str(), new.description, now])?;
    Ok(conn.last_insert_rowid())
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<Ticket>> {
    Ok(conn
        .prepare_cached(&format!("{SELECT} WHERE t.id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// Tickets, newest first, optionally only those with a status or a priority.
pub fn list(
    conn: &Connection,
    status: Option<Status>,
    priority: Option<Priority>,
) -> Result<Vec<Ticket>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE (?1 IS NULL OR t.status = ?1) AND (?2 IS NULL OR t.priority = ?2) ORDER BY t.id DESC"
    ))?;
    let rows = stmt.query_map(
        params![status.map(|s| s.as_str()), priority.map(|p| p.as_str())],
        from_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets a ticket's status and priority, updated at `now`.
pub fn update(
    conn: &Connection,
    id: i64,
    status: Status,
    priority: Priority,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tickets SET status = ?2, priority = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, status.as_str(), priority.as_str(), now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::users::{self, NewUser};

    #[test]
    fn a_ticket_keeps_the_times_it_is_given() {
        let store = Store::open_in_memory();
        let conn = store.conn();
        let user = users::insert(
            conn,
            &NewUser {
                username: "u",
                email: "u@example.org",
                name: "",
            },
            1_000,
        )
        .unwrap();
        assert_eq!(user.created_at, 1_000);
        assert_eq!(
            users::by_id(conn, user.id).unwrap().unwrap().created_at,
            1_000
        );
        let new = NewTicket {
            created_by: user.id,
            purpose: Purpose::App,
            priority: Priority::Low,
            description: "d",
        };
        let id = insert(conn, &new, 2_000).unwrap();
        let ticket = by_id(conn, id).unwrap().unwrap();
        assert_eq!((ticket.created_at, ticket.updated_at), (2_000, 2_000));
        update(conn, id, Status::Done, Priority::High, 3_000).unwrap();
        let ticket = by_id(conn, id).unwrap().unwrap();
        assert_eq!((ticket.created_at, ticket.updated_at), (2_000, 3_000));
        assert_eq!(
            (ticket.status, ticket.priority),
            (Status::Done, Priority::High)
        );
    }
}
