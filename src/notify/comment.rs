//! Commenting on a ticket, the one way every path does it (`ticket comment`,
//! and a reply by email): the author starts watching the ticket, and the
//! comment is recorded with its notifications.

use anyhow::Result;
use rusqlite::Connection;

use crate::config::Config;
use crate::notify::event::{EventData, EventKind};
use crate::notify::fanout::{self, Recorded};
use crate::store::tickets::Ticket;
use crate::store::users::User;
use crate::store::watchers;

/// Records `author`'s comment `body` on `ticket` and makes the author a
/// watcher (if they were not already). Runs in the caller's transaction; the
/// caller has checked that the author may comment (an active user).
pub fn comment(
    conn: &Connection,
    config: &Config,
    ticket: &Ticket,
    author: &User,
    body: &str,
) -> Result<Recorded> {
    watchers::add(conn, ticket.id, author.id, crate::clock::now_ms())?;
    let data = EventData {
        comment: Some(body.to_string()),
        ..EventData::of(ticket)
    };
    fanout::record_event(conn, config, ticket, EventKind::Comment, author, &data)
}
