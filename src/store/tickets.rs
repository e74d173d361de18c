//! SQL for tickets.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::notifications::stored;
use super::{Result, now_ms};
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

/// Inserts a ticket with status `ready`; the caller decides the transaction.
pub fn insert(conn: &Connection, new: &NewTicket<'_>) -> Result<i64> {
    let now = now_ms();
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

/// Sets a ticket's status and priority.
pub fn update(conn: &Connection, id: i64, status: Status, priority: Priority) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tickets SET status = ?2, priority = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, status.as_str(), priority.as_str(), now_ms()])?;
    Ok(())
}
