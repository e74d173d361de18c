//! Fan-out: recording an event and writing its notifications (inside the
//! caller's transaction, so a ticket never exists without them), and who
//! the developers are. How queued email is retried is `policy`'s.

use crate::store::Db;
use anyhow::Result;

use crate::config::Config;
use crate::model::{
    Channel, EventKind, NotificationId, NotificationPriority, NotificationStatus, UserId,
};
use crate::notify::event::{EventData, display_name};
use crate::notify::recipients::{self, People};
use crate::notify::{Audience, MANAGER_PERMISSION, content, mentions, message, prefs, rule};
use crate::store::events::{self, Wording};
use crate::store::notifications::{self, NewNotification};
use crate::store::tickets::Ticket;
use crate::store::users::{self, User};
use crate::store::{now_ms, preferences, threads, watchers};

/// One notification written for an event.
#[derive(Debug, Clone)]
pub struct Written {
    pub id: NotificationId,
    pub username: String,
    pub channel: Channel,
    pub status: NotificationStatus,
}

/// What recording an event did.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub notifications: Vec<Written>,
    /// Things the operator should hear about (an admin with no account).
    pub warnings: Vec<String>,
}

/// Records an event on `ticket` (as it stands after the event) and writes a
/// notification per recipient and channel, as `RULES` and each recipient's
/// preferences say: in-app ones delivered at once (or none when the user
/// turned them off), email ones `pending` (`held` for a digest, none when
/// off), addressed to `development_email` in debug mode; each with the
/// audience that chose its user. Runs in the caller's transaction.
pub fn record_event(
    conn: &dyn Db,
    config: &Config,
    ticket: &Ticket,
    kind: EventKind,
    actor: &User,
    data: &EventData,
) -> Result<Recorded> {
    let rule = rule(kind);
    let creator = users::by_id(conn, ticket.created_by)?;
    let (people, warnings) = people(conn, config, ticket, kind, data, creator.as_ref())?;
    // Email names people by name; the facts are kept with the event.
    let data = EventData {
        actor_name: Some(display_name(actor).to_string()),
        opened_by: creator.as_ref().map(|c| display_name(c).to_string()),
        ..data.clone()
    };
    let title = content::title(kind, ticket.id, &data);
    let body = content::app_body(kind, &data, &actor.username);
    let url = content::ticket_path(ticket.id);
    let wording = Wording {
        title: &title,
        body: &body,
        url: &url,
    };
    let now = now_ms();
    let event = events::insert(
        conn,
        ticket.id,
        kind.into(),
        actor.id,
        &data.to_json(),
        &wording,
        now,
    )?;
    // Every email about the ticket refers to its thread root (SPEC §6).
    threads::ensure(
        conn,
        ticket.id,
        &message::mint_thread_root(ticket.id, &config.site.domain),
    )?;
    let recipients = recipients::resolve(rule, &people, actor.id);
    let ids: Vec<UserId> = recipients.iter().map(|r| r.user.id).collect();
    let chosen = prefs::by_user(&preferences::for_users(conn, kind, &ids)?);
    let priority = NotificationPriority::from(data.priority);
    let message_ids = message::MessageIds::new(event.id, fastrand::u64(..), &config.site.domain);
    // Every notification of the event is written at once (one statement on
    // PostgreSQL, however many recipients), each with the audience that
    // chose its user (`notify why`, the email's footer).
    let mut rows = Vec::new();
    for recipient in &recipients {
        let pref = chosen
            .get(&recipient.user.id)
            .copied()
            .unwrap_or(prefs::DEFAULT);
        for channel in &recipient.channels {
            let channel = *channel;
            let Some(status) = pref.status_for(channel) else {
                continue;
            };
            let (to_addr, message_id, delivered_at) = match channel {
                Channel::App => (None, None, Some(now)),
                Channel::Email => {
                    let to = config.delivery_address(&recipient.user.email);
                    (Some(to), Some(message_ids.mint(recipient.user.id)), None)
                }
            };
            let reason = recipient.reason(channel).map(|a| a.as_str());
            rows.push((
                recipient,
                channel,
                status,
                to_addr,
                message_id,
                delivered_at,
                reason,
            ));
        }
    }
    let new: Vec<NewNotification<'_>> = rows
        .iter()
        .map(
            |(recipient, channel, status, to_addr, message_id, delivered_at, reason)| {
                NewNotification {
                    event_id: event.id,
                    ticket_id: ticket.id,
                    user_id: recipient.user.id,
                    channel: *channel,
                    priority,
                    status: *status,
                    to_addr: *to_addr,
                    message_id: message_id.as_deref(),
                    created_at: now,
                    delivered_at: *delivered_at,
                    reason: *reason,
                }
            },
        )
        .collect();
    let ids = notifications::insert_all(conn, &new)?;
    let written = rows
        .iter()
        .zip(ids)
        .map(|((recipient, channel, status, ..), id)| Written {
            id,
            username: recipient.user.username.clone(),
            channel: *channel,
            status: *status,
        })
        .collect();
    Ok(Recorded {
        notifications: written,
        warnings,
    })
}

/// The people in each audience of `kind`'s rule for an event on `ticket`
/// (as it stands after it, opened by `creator`) with `data`, as the
/// database has them now; and a warning for every admin address no user has.
pub fn people(
    conn: &dyn Db,
    config: &Config,
    ticket: &Ticket,
    kind: EventKind,
    data: &EventData,
    creator: Option<&User>,
) -> Result<(People, Vec<String>)> {
    let rule = rule(kind);
    let mut people = People::default();
    let mut warnings = Vec::new();
    for (audience, _) in rule.audiences {
        match audience {
            Audience::Developers | Audience::DevelopersWhileUnassigned => {
                if people.developers.is_empty() && warnings.is_empty() {
                    let (developers, missing) = developers(conn, config)?;
                    people.developers = developers;
                    warnings = missing;
                }
            }
            Audience::Managers => {
                people.managers = users::active_with_permission(conn, MANAGER_PERMISSION)?
            }
            Audience::Creator => people.creator = creator.cloned(),
            Audience::Assignee => {
                if let Some((id, _)) = &ticket.assignee {
                    people.assignee = users::by_id(conn, *id)?;
                }
            }
            Audience::PreviousAssignee => {
                let before = data.assignment.as_ref().and_then(|a| a.from.as_ref());
                if let Some(person) = before {
                    people.previous_assignee = users::by_id(conn, person.id)?;
                }
            }
            Audience::Watchers => {
                people.watchers = watchers::of_ticket(conn, ticket.id)?
                    .into_iter()
                    .map(|(user, _)| user)
                    .collect()
            }
            Audience::Mentioned => {
                let text = data.comment.as_deref().unwrap_or_default();
                for name in mentions::usernames(text) {
                    if let Some(user) = users::by_username(conn, &name)? {
                        people.mentioned.push(user);
                    }
                }
            }
        }
    }
    Ok((people, warnings))
}

/// The developers: active or not, the users whose address is in `admins`
/// (case-insensitive), each once; and a warning for every admin address no
/// user has.
pub fn developers(conn: &dyn Db, config: &Config) -> Result<(Vec<User>, Vec<String>)> {
    let emails: Vec<&str> = config.admins.iter().map(|a| a.email.as_str()).collect();
    let known = users::by_emails(conn, &emails)?;
    let mut found: Vec<User> = Vec::new();
    let mut warnings = Vec::new();
    for admin in &config.admins {
        let user = known
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(&admin.email));
        match user {
            Some(user) => {
                if !found.iter().any(|u| u.id == user.id) {
                    found.push(user.clone());
                }
            }
            None => warnings.push(format!(
                "admin `{}` has no user account, so nobody is notified for it; add one with `helpdesk user add USERNAME --email {}`",
                admin.email, admin.email
            )),
        }
    }
    Ok((found, warnings))
}
