//! `notify preview`: an event's email exactly as a flush would send it,
//! built by `compose` from the current templates, for a real ticket and
//! user or for samples. Reads the database, never writes it.

use anyhow::Result;

use crate::config::Config;
use crate::model::{Channel, EventId, EventKind, Priority, Purpose, Status, TicketId, UserId};
use crate::notify::compose::{self, Composed};
use crate::notify::event::{Assignment, Change, EventData, Person, display_name};
use crate::notify::message::{self, Outgoing};
use crate::notify::{Audience, content, fanout, recipients, rule};
use crate::render::Renderer;
use crate::store::Db;
use crate::store::tickets::Ticket;
use crate::store::users::{self, User};
use crate::store::{events, reasons, threads};

/// The sample ticket's ID, when no `--ticket` is given.
pub const SAMPLE_TICKET: TicketId = TicketId(42);
/// The sample recipient's address, when no `--user` is given.
pub const SAMPLE_RECIPIENT: &str = "recipient@example.org";
const SAMPLE_ACTOR: &str = "Alex Agent";
const SAMPLE_OPENER: &str = "Robin Requester";

/// What to preview.
pub struct Request<'a> {
    pub kind: EventKind,
    /// The ticket whose facts to use (already known to exist); None: a sample.
    pub ticket: Option<&'a Ticket>,
    /// The recipient; None: a sample.
    pub user: Option<&'a User>,
}

/// The email and what the person previewing it should know.
pub struct Preview {
    pub composed: Composed,
    pub message: Outgoing,
    /// The address it goes to and its Message-ID.
    pub to: String,
    pub message_id: String,
    /// Notes for stderr: where the facts and the footer's reason came from.
    pub notes: Vec<String>,
}

/// Builds the email `request` names, as a flush would send it.
pub fn preview(conn: &dyn Db, config: &Config, request: &Request<'_>) -> Result<Preview> {
    let renderer = Renderer::new(config.templates_dir.as_deref())?;
    let kind = request.kind;
    let mut notes = Vec::new();
    let facts = match request.ticket {
        Some(ticket) => ticket_facts(conn, kind, ticket, &mut notes)?,
        None => {
            notes.push(format!(
                "a sample ticket (#{SAMPLE_TICKET}); pass --ticket N for a real one"
            ));
            sample_facts(config, kind)
        }
    };
    if let Some(user) = request.user.filter(|user| !user.active) {
        notes.push(format!(
            "`{}` is deactivated: no email goes to them",
            user.username
        ));
    }
    // Why the recipient hears, in the footer's words, and where the email goes.
    let stored = match (request.user, facts.event_id) {
        (Some(user), Some(event_id)) => reasons::email_of(conn, event_id, user.id)?,
        _ => None,
    };
    let reason = match (request.user, request.ticket) {
        (Some(user), Some(ticket)) => match &stored {
            Some(email) => compose::reason_words(email.reason.as_deref()).to_string(),
            None => match audience_now(conn, config, ticket, kind, &facts, user)? {
                Some(audience) => {
                    notes.push(format!(
                        "`{}` gets no email for this event yet; the footer gives the reason they would get it now",
                        user.username
                    ));
                    audience.reason().to_string()
                }
                None => {
                    notes.push(format!(
                        "`{}` would get no email for this event; the footer gives the default reason",
                        user.username
                    ));
                    content::UNKNOWN_REASON.to_string()
                }
            },
        },
        _ => sample_reason(kind).to_string(),
    };
    let to = match (&stored, request.user) {
        (Some(email), _) if email.to_addr.is_some() => email.to_addr.clone().unwrap_or_default(),
        (_, Some(user)) => user.email.clone(),
        (_, None) => {
            notes.push(format!(
                "a sample recipient ({SAMPLE_RECIPIENT}); pass --user U for a real one"
            ));
            SAMPLE_RECIPIENT.to_string()
        }
    };
    let message_id = stored
        .as_ref()
        .and_then(|email| email.message_id.clone())
        .unwrap_or_else(|| {
            message::mint_message_id(
                facts.event_id.unwrap_or(EventId(0)),
                request.user.map_or(UserId(0), |u| u.id),
                fastrand::u64(..),
                &config.site.domain,
            )
        });
    let composed = compose::event_email(
        &renderer,
        config,
        kind,
        facts.ticket_id,
        &facts.data,
        &facts.actor,
        &reason,
        facts.thread_root.clone(),
    )?;
    let addressing = compose::addressing(config, 0, &to, Some(&message_id), facts.ticket_id);
    let message = message::build(&addressing, &composed.prepared)?;
    let to = addressing.to.to_string();
    Ok(Preview {
        composed,
        message,
        to,
        message_id,
        notes,
    })
}

/// The facts an email is rendered from.
struct Facts {
    ticket_id: TicketId,
    data: EventData,
    /// The actor's username.
    actor: String,
    actor_id: UserId,
    /// The event the facts are from, if they are an event's.
    event_id: Option<EventId>,
    thread_root: Option<String>,
}

/// The ticket's latest event of `kind`, else the ticket as it stands.
fn ticket_facts(
    conn: &dyn Db,
    kind: EventKind,
    ticket: &Ticket,
    notes: &mut Vec<String>,
) -> Result<Facts> {
    let thread_root = threads::root(conn, ticket.id)?;
    let latest = events::of_ticket(conn, ticket.id)?
        .into_iter()
        .rev()
        .find(|event| event.kind == kind.into());
    if let Some(event) = latest {
        notes.push(format!(
            "the {} event #{} of ticket #{}",
            kind.as_str(),
            event.id,
            ticket.id
        ));
        return Ok(Facts {
            ticket_id: ticket.id,
            data: EventData::from_json(&event.data)?,
            actor: event.actor,
            actor_id: event.actor_id,
            event_id: Some(event.id),
            thread_root,
        });
    }
    notes.push(format!(
        "ticket #{} has no {} event: the ticket as it stands, by its creator",
        ticket.id,
        kind.as_str()
    ));
    let creator = users::by_id(conn, ticket.created_by)?;
    let creator_name = creator
        .as_ref()
        .map_or(ticket.created_by_name.clone(), |c| {
            display_name(c).to_string()
        });
    let mut data = EventData::of(ticket);
    data.actor_name = Some(creator_name.clone());
    data.opened_by = Some(creator_name);
    match kind {
        EventKind::Comment => data.comment = Some(sample_comment().to_string()),
        EventKind::Assign => {
            let to = match &ticket.assignee {
                Some((id, _)) => users::by_id(conn, *id)?.map(|u| Person::of(&u)),
                None => None,
            };
            data.assignment = Some(Assignment { from: None, to });
        }
        EventKind::New | EventKind::Update => {}
    }
    Ok(Facts {
        ticket_id: ticket.id,
        data,
        actor: ticket.created_by_name.clone(),
        actor_id: ticket.created_by,
        event_id: None,
        thread_root,
    })
}

/// The audience that would give `user` this event's email now, by `RULES`.
fn audience_now(
    conn: &dyn Db,
    config: &Config,
    ticket: &Ticket,
    kind: EventKind,
    facts: &Facts,
    user: &User,
) -> Result<Option<Audience>> {
    let creator = users::by_id(conn, ticket.created_by)?;
    let (people, _) = fanout::people(conn, config, ticket, kind, &facts.data, creator.as_ref())?;
    Ok(recipients::resolve(rule(kind), &people, facts.actor_id)
        .into_iter()
        .find(|r| r.user.id == user.id)
        .and_then(|r| r.reason(Channel::Email)))
}

/// The first audience `kind`'s rule gives email, as the sample's footer reason.
fn sample_reason(kind: EventKind) -> &'static str {
    rule(kind)
        .audiences
        .iter()
        .find(|(_, channels)| channels.contains(&Channel::Email))
        .map_or(content::UNKNOWN_REASON, |(audience, _)| audience.reason())
}

fn sample_comment() -> &'static str {
    "Thanks, I can see the problem too. I will have a fix by Friday."
}

/// A sample ticket's facts for `kind`.
fn sample_facts(config: &Config, kind: EventKind) -> Facts {
    let mut data = EventData {
        purpose: Purpose::App,
        priority: Priority::Medium,
        status: Status::Ready,
        description: "The printer on the second floor jams on every page.".into(),
        changes: Vec::new(),
        comment: None,
        assignment: None,
        actor_name: Some(SAMPLE_ACTOR.into()),
        opened_by: Some(SAMPLE_OPENER.into()),
    };
    match kind {
        EventKind::New => data.actor_name = Some(SAMPLE_OPENER.into()),
        EventKind::Update => {
            data.status = Status::InProgress;
            data.changes = vec![Change {
                field: "Status".into(),
                from: Status::Ready.display().into(),
                to: Status::InProgress.display().into(),
            }];
        }
        EventKind::Comment => data.comment = Some(sample_comment().into()),
        EventKind::Assign => {
            data.assignment = Some(Assignment {
                from: None,
                to: Some(Person {
                    id: UserId(0),
                    name: SAMPLE_ACTOR.into(),
                }),
            });
        }
    }
    Facts {
        ticket_id: SAMPLE_TICKET,
        data,
        actor: "sample".into(),
        actor_id: UserId(0),
        event_id: None,
        thread_root: Some(message::mint_thread_root(
            SAMPLE_TICKET,
            &config.site.domain,
        )),
    }
}
