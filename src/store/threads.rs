//! SQL for each ticket's thread root: the Message-ID every email about the
//! ticket names in `In-Reply-To` and `References` (SPEC §6), minted once.

use super::Result;
use super::db::Db;
use crate::model::TicketId;

/// The ticket's thread root, minting `candidate` as it when it has none yet;
/// the caller decides the transaction. Returns the stored root.
pub fn ensure(conn: &dyn Db, ticket_id: TicketId, candidate: &str) -> Result<String> {
    conn.execute(
        "INSERT INTO ticket_threads (ticket_id, message_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
        &[&ticket_id, &candidate],
    )?;
    conn.query_one(
        "SELECT message_id FROM ticket_threads WHERE ticket_id = $1",
        &[&ticket_id],
        |row| row.text(0),
    )
}

/// The ticket's thread root, if one was minted.
pub fn root(conn: &dyn Db, ticket_id: TicketId) -> Result<Option<String>> {
    conn.query_opt(
        "SELECT message_id FROM ticket_threads WHERE ticket_id = $1",
        &[&ticket_id],
        |row| row.text(0),
    )
}

/// The ticket whose thread root is `message_id`.
pub fn ticket_of(conn: &dyn Db, message_id: &str) -> Result<Option<TicketId>> {
    conn.query_opt(
        "SELECT ticket_id FROM ticket_threads WHERE message_id = $1",
        &[&message_id],
        |row| row.parse(0),
    )
}
