//! The ticket events people cause from more than one door: opening a ticket
//! and commenting, from the command line (`ticket create`, `ticket comment
//! --by`) or by email (`mail receive`). Each writes the ticket or the comment
//! with its notifications in the caller's transaction, the same way
//! whichever door it came through.

use crate::store::Db;
use anyhow::Result;

use crate::config::Config;
use crate::model::{EventKind, Priority, Purpose, TicketId};
use crate::notify::event::EventData;
use crate::notify::fanout::{self, Recorded};
use crate::store::tickets::{self, NewTicket, Ticket};
use crate::store::users::User;
use crate::store::watchers;

/// The ticket, or the error a person reads when there is none.
pub fn find(conn: &dyn Db, id: TicketId) -> Result<Ticket> {
    tickets::by_id(conn, id)?.ok_or_else(|| {
        crate::error::hinted(
            format!("ticket #{id} does not exist"),
            "list tickets with `helpdesk ticket list`",
        )
    })
}

/// Opens a ticket by `creator` and notifies as `RULES` say for a new one.
pub fn open_ticket(
    conn: &dyn Db,
    config: &Config,
    creator: &User,
    purpose: Purpose,
    priority: Priority,
    description: &str,
) -> Result<(Ticket, Recorded)> {
    let id = tickets::insert(
        conn,
        &NewTicket {
            created_by: creator.id,
            purpose,
            priority,
            description,
        },
        crate::clock::now_ms(),
    )?;
    let ticket = find(conn, id)?;
    let recorded = fanout::record_event(
        conn,
        config,
        &ticket,
        EventKind::New,
        creator,
        &EventData::of(&ticket),
    )?;
    Ok((ticket, recorded))
}

/// `author` comments on ticket `ticket_id`: the same event, with the same
/// notifications (never to the author), however the comment arrived.
pub fn comment(
    conn: &dyn Db,
    config: &Config,
    ticket_id: TicketId,
    author: &User,
    body: &str,
) -> Result<(Ticket, Recorded)> {
    let ticket = find(conn, ticket_id)?;
    // A commenter, by command or by email, watches the ticket from now on.
    watchers::add(conn, ticket.id, author.id, crate::clock::now_ms())?;
    let data = EventData {
        comment: Some(body.to_string()),
        ..EventData::of(&ticket)
    };
    let recorded = fanout::record_event(conn, config, &ticket, EventKind::Comment, author, &data)?;
    Ok((ticket, recorded))
}
