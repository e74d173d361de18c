//! SQL for tickets.

use super::Result;
use super::db::{Db, Row};
use crate::model::{Priority, Purpose, Status, TicketId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    pub created_by: UserId,
    /// The creator's username, joined in for display.
    pub created_by_name: String,
    pub purpose: Purpose,
    pub priority: Priority,
    pub status: Status,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Who the ticket is assigned to, if anyone, with their username.
    pub assignee: Option<(UserId, String)>,
}

pub struct NewTicket<'a> {
    pub created_by: UserId,
    pub purpose: Purpose,
    pub priority: Priority,
    pub description: &'a str,
}

/// The start of every ticket query; `from_row` reads its columns.
macro_rules! select {
    () => {
        "SELECT t.id, t.created_by, u.username, t.purpose, t.priority, t.status, t.description,
                t.created_at, t.updated_at, t.assignee_id, a.username
           FROM tickets t JOIN users u ON u.id = t.created_by
           LEFT JOIN users a ON a.id = t.assignee_id"
    };
}

fn from_row(row: &Row<'_, '_>) -> Result<Ticket> {
    Ok(Ticket {
        id: row.parse(0)?,
        created_by: row.parse(1)?,
        created_by_name: row.text(2)?,
        purpose: row.parse(3)?,
        priority: row.parse(4)?,
        status: row.parse(5)?,
        description: row.text(6)?,
        created_at: row.int(7)?,
        updated_at: row.int(8)?,
        assignee: match row.parse(9)? {
            Some(id) => Some((id, row.text(10)?)),
            None => None,
        },
    })
}

/// Inserts a ticket with status `ready`, created at `now`; the caller
/// decides the transaction.
pub fn insert(conn: &dyn Db, new: &NewTicket<'_>, now: i64) -> Result<TicketId> {
    conn.query_one(
        "INSERT INTO tickets (created_by, purpose, priority, status, description, created_at, updated_at)
         VALUES ($1, $2, $3, 'ready', $4, $5, $5) RETURNING id",
        &[
            &new.created_by,
            &new.purpose,
            &new.priority,
            &new.description,
            &now,
        ],
        |row| row.parse(0),
    )
}

pub fn by_id(conn: &dyn Db, id: TicketId) -> Result<Option<Ticket>> {
    conn.query_opt(concat!(select!(), " WHERE t.id = $1"), &[&id], from_row)
}

/// Tickets, newest first, optionally only those with a status or a priority.
#[cfg_attr(not(test), allow(dead_code))]
pub fn list(
    conn: &dyn Db,
    status: Option<Status>,
    priority: Option<Priority>,
) -> Result<Vec<Ticket>> {
    list_assigned(conn, status, priority, None)
}

/// Which tickets a listing keeps by their assignee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// Tickets assigned to this user.
    User(UserId),
    /// Tickets nobody is assigned to.
    Nobody,
}

/// `list`, also filtered by assignee when one is given.
pub fn list_assigned(
    conn: &dyn Db,
    status: Option<Status>,
    priority: Option<Priority>,
    assignee: Option<AssigneeFilter>,
) -> Result<Vec<Ticket>> {
    let (any, nobody, user) = match assignee {
        None => (true, false, None),
        Some(AssigneeFilter::Nobody) => (false, true, None),
        Some(AssigneeFilter::User(id)) => (false, false, Some(id)),
    };
    conn.query(
        concat!(
            select!(),
            " WHERE (CAST($1 AS TEXT) IS NULL OR t.status = $1)
                AND (CAST($2 AS TEXT) IS NULL OR t.priority = $2)
                AND ($3 OR ($4 AND t.assignee_id IS NULL) OR t.assignee_id = $5)
              ORDER BY t.id DESC"
        ),
        &[&status, &priority, &any, &nobody, &user],
        from_row,
    )
}

/// Sets (or, with `None`, clears) a ticket's assignee, updated at `now`.
pub fn set_assignee(conn: &dyn Db, id: TicketId, assignee: Option<UserId>, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE tickets SET assignee_id = $2, updated_at = $3 WHERE id = $1",
        &[&id, &assignee, &now],
    )?;
    Ok(())
}

/// Sets a ticket's status and priority, updated at `now`.
pub fn update(
    conn: &dyn Db,
    id: TicketId,
    status: Status,
    priority: Priority,
    now: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE tickets SET status = $2, priority = $3, updated_at = $4 WHERE id = $1",
        &[&id, &status, &priority, &now],
    )?;
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
