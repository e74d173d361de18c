//! Composing a ticket event's email: the content rendered from the
//! templates, threaded and addressed as SPEC §6 says. The one place both a
//! flush (for what it sends) and `notify preview` (for what it shows) build
//! an event's email, so the preview is what would be sent.

use anyhow::Result;

use crate::config::Config;
use crate::model::{EventKind, RecordedKind, TicketId};
use crate::notify::content::{self, EmailContent};
use crate::notify::event::EventData;
use crate::notify::message::{Addressing, Prepared, reply_to};
use crate::notify::{Audience, digest};
use crate::render::Renderer;
use crate::store::events::EventRow;

/// An event's email for recipients chosen for one reason: its content
/// (subject, text and HTML, as rendered) and the message parts built from it.
pub struct Composed {
    pub content: EmailContent,
    pub prepared: Prepared,
}

/// The footer's words for a stored reason (`notifications.reason`); the
/// default words when none was recorded or it is not known.
pub fn reason_words(reason: Option<&str>) -> &'static str {
    reason
        .and_then(Audience::from_stored)
        .map_or(content::UNKNOWN_REASON, Audience::reason)
}

/// The email of a ticket event of `kind` with `data`, caused by `actor`
/// (a username; `data.actor_name` wins when set), for recipients the
/// footer's `reason` words address; it refers to `thread_root` and, with
/// inbound mail set up, replies go to the ticket's address.
#[allow(clippy::too_many_arguments)]
pub fn event_email(
    renderer: &Renderer,
    config: &Config,
    kind: EventKind,
    ticket_id: TicketId,
    data: &EventData,
    actor: &str,
    reason: &str,
    thread_root: Option<String>,
) -> Result<Composed> {
    let content = content::email(
        renderer,
        &config.site,
        kind,
        ticket_id,
        data,
        actor,
        config.email.inbound.address.is_some(),
        reason,
    )?;
    let prepared = Prepared::new(&content).threaded(thread_root, reply_to(config, ticket_id));
    Ok(Composed { content, prepared })
}

/// The email of a stored event (a ticket event or a digest) for a recipient
/// whose notification recorded `reason`, as a flush sends it.
pub fn stored_event_email(
    renderer: &Renderer,
    config: &Config,
    event: &EventRow,
    reason: Option<&str>,
    thread_root: Option<String>,
) -> Result<Composed> {
    let kind = match event.kind {
        RecordedKind::Ticket(kind) => kind,
        RecordedKind::Digest => {
            let content = digest::email(renderer, &config.site, &event.data)?;
            let prepared = Prepared::new(&content);
            return Ok(Composed { content, prepared });
        }
    };
    let data = EventData::from_json(&event.data)?;
    event_email(
        renderer,
        config,
        kind,
        event.ticket_id,
        &data,
        &event.actor,
        reason_words(reason),
        thread_root,
    )
}

/// How a queued email about `ticket_id` is addressed: from the help desk,
/// to `to` (or `development_email` in debug mode), with its Message-ID.
pub fn addressing<'a>(
    config: &'a Config,
    key: i64,
    to: &'a str,
    message_id: Option<&'a str>,
    ticket_id: TicketId,
) -> Addressing<'a> {
    Addressing {
        key,
        from: &config.from,
        to: config.delivery_address(to),
        message_id: message_id.filter(|id| !id.is_empty()),
        ticket_id: Some(ticket_id),
    }
}
