//! SQL for ticket events: what happened to a ticket, by whom, with the facts
//! its notifications are rendered from (JSON, owned by `notify::event`).

use super::db::{Db, Row};
use super::{Result, StoreError};
use crate::model::{EventId, RecordedKind, TicketId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: EventId,
    pub ticket_id: TicketId,
    pub kind: RecordedKind,
    pub actor_id: UserId,
    /// The actor's username, joined in for display.
    pub actor: String,
    pub data: String,
    pub created_at: i64,
}

/// The start of every event query; `from_row` reads its columns.
macro_rules! select {
    () => {
        "SELECT e.id, e.ticket_id, e.kind, e.actor_id, u.username, e.data, e.created_at
           FROM events e JOIN users u ON u.id = e.actor_id"
    };
}

fn from_row(row: &Row<'_, '_>) -> Result<EventRow> {
    Ok(EventRow {
        id: row.parse(0)?,
        ticket_id: row.parse(1)?,
        kind: row.parse(2)?,
        actor_id: row.parse(3)?,
        actor: row.text(4)?,
        data: row.text(5)?,
        created_at: row.int(6)?,
    })
}

/// What an event's notifications say.
pub struct Wording<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub url: &'a str,
}

/// Records an event that happened at `now`; the caller decides the transaction.
pub fn insert(
    conn: &dyn Db,
    ticket_id: TicketId,
    kind: RecordedKind,
    actor_id: UserId,
    data: &str,
    wording: &Wording<'_>,
    now: i64,
) -> Result<EventRow> {
    let id = conn.query_one(
        "INSERT INTO events (ticket_id, kind, actor_id, data, title, body, url, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        &[
            &ticket_id,
            &kind,
            &actor_id,
            &data,
            &wording.title,
            &wording.body,
            &wording.url,
            &now,
        ],
        |row| row.parse::<EventId>(0),
    )?;
    by_id(conn, id)?
        .ok_or_else(|| StoreError::Other(format!("event {id} vanished as it was written")))
}

pub fn by_id(conn: &dyn Db, id: EventId) -> Result<Option<EventRow>> {
    conn.query_opt(concat!(select!(), " WHERE e.id = $1"), &[&id], from_row)
}

/// A ticket's events, oldest first.
pub fn of_ticket(conn: &dyn Db, ticket_id: TicketId) -> Result<Vec<EventRow>> {
    conn.query(
        concat!(select!(), " WHERE e.ticket_id = $1 ORDER BY e.id"),
        &[&ticket_id],
        from_row,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;
    use crate::store::Store;

    #[test]
    fn an_event_is_dated_by_the_callers_clock() {
        let store = Store::open_in_memory();
        let conn = store.conn();
        conn.execute_batch(
            "INSERT INTO users (id, username, email, created_at) VALUES (1, 'u', 'u@x', 0);
             INSERT INTO tickets (id, created_by, purpose, priority, status, description, created_at, updated_at)
                  VALUES (1, 1, 'app', 'low', 'ready', 'd', 0, 0);",
        )
        .unwrap();
        let wording = Wording {
            title: "t",
            body: "b",
            url: "/u",
        };
        let event = insert(
            conn,
            TicketId(1),
            EventKind::New.into(),
            UserId(1),
            "{}",
            &wording,
            1_234,
        )
        .unwrap();
        assert_eq!((event.created_at, event.actor.as_str()), (1_234, "u"));
        assert_eq!(of_ticket(conn, TicketId(1)).unwrap(), [event]);
    }
}
