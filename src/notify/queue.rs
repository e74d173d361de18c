//! Queue policy: recording an event and writing its notifications (inside
//! the caller's transaction, so a ticket never exists without them), and how
//! long a deferred email waits before its next attempt.

use anyhow::Result;
use rusqlite::Connection;

use crate::config::Config;
use crate::model::{Channel, NotificationPriority, NotificationStatus};
use crate::notify::event::{EventData, EventKind};
use crate::notify::recipients::{self, People};
use crate::notify::{Audience, MANAGER_PERMISSION, content, rule};
use crate::store::events::{self, Wording};
use crate::store::notifications::{self, NewNotification};
use crate::store::now_ms;
use crate::store::tickets::Ticket;
use crate::store::users::{self, User};

/// Longest wait between two attempts, before jitter.
const MAX_BACKOFF_SECS: u64 = 3600;

/// One notification written for an event.
#[derive(Debug, Clone)]
pub struct Written {
    pub id: i64,
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
/// notification per recipient and channel: in-app ones delivered at once,
/// email ones `pending`, addressed to `development_email` in debug mode.
/// Runs in the caller's transaction.
pub fn record_event(
    conn: &Connection,
    config: &Config,
    ticket: &Ticket,
    kind: EventKind,
    actor: &User,
    data: &EventData,
) -> Result<Recorded> {
    let title = content::title(kind, ticket.id);
    let body = content::app_body(kind, data, &actor.username);
    let url = content::ticket_path(ticket.id);
    let wording = Wording {
        title: &title,
        body: &body,
        url: &url,
    };
    let event = events::insert(
        conn,
        ticket.id,
        kind.as_str(),
        actor.id,
        &data.to_json(),
        &wording,
        now_ms(),
    )?;
    let rule = rule(kind);
    let mut people = People::default();
    let mut warnings = Vec::new();
    for (audience, _) in rule.audiences {
        match audience {
            Audience::Developers => {
                let (developers, missing) = developers(conn, config)?;
                people.developers = developers;
                warnings = missing;
            }
            Audience::Managers => {
                people.managers = users::active_with_permission(conn, MANAGER_PERMISSION)?
            }
            Audience::Creator => people.creator = users::by_id(conn, ticket.created_by)?,
        }
    }
    let priority = NotificationPriority::from(data.priority);
    let now = now_ms();
    let nonce = fastrand::u64(..);
    let mut written = Vec::new();
    for recipient in recipients::resolve(rule, &people, actor.id) {
        for channel in recipient.channels {
            let (status, to_addr, message_id, delivered_at) = match channel {
                Channel::App => (NotificationStatus::Sent, None, None, Some(now)),
                Channel::Email => {
                    let to = if config.debug {
                        config.development_email.clone().unwrap_or_default()
                    } else {
                        recipient.user.email.clone()
                    };
                    // One Message-ID per notification, kept across resends.
                    let id = format!(
                        "<{}.{}.{nonce:016x}@{}>",
                        event.id, recipient.user.id, config.site.domain
                    );
                    (NotificationStatus::Pending, Some(to), Some(id), None)
                }
            };
            let id = notifications::insert(
                conn,
                &NewNotification {
                    event_id: event.id,
                    ticket_id: ticket.id,
                    user_id: recipient.user.id,
                    channel,
                    priority,
                    status,
                    to_addr: to_addr.as_deref(),
                    message_id: message_id.as_deref(),
                    created_at: now,
                    delivered_at,
                },
            )?;
            written.push(Written {
                id,
                username: recipient.user.username.clone(),
                channel,
                status,
            });
        }
    }
    Ok(Recorded {
        notifications: written,
        warnings,
    })
}

/// The developers: active or not, the users whose address is in `admins`
/// (case-insensitive), each once; and a warning for every admin address no
/// user has.
pub fn developers(conn: &Connection, config: &Config) -> Result<(Vec<User>, Vec<String>)> {
    let mut found: Vec<User> = Vec::new();
    let mut warnings = Vec::new();
    for admin in &config.admins {
        match users::by_email(conn, &admin.email)? {
            Some(user) => {
                if !found.iter().any(|u| u.id == user.id) {
                    found.push(user);
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

/// How long to wait after the `attempts`-th failed attempt:
/// `retry_backoff_secs × 2^(attempts−1)`, at most an hour, plus up to 10 %
/// jitter so that a crowd of deferred emails does not retry in lockstep.
pub fn backoff_ms(retry_backoff_secs: u64, attempts: i64) -> i64 {
    let exponent = attempts.clamp(1, 32) as u32 - 1;
    let base = retry_backoff_secs
        .saturating_mul(1u64 << exponent)
        .min(MAX_BACKOFF_SECS)
        * 1000;
    let jitter = if base >= 10 {
        fastrand::u64(0..=base / 10)
    } else {
        0
    };
    (base + jitter) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        for (attempts, base) in [
            (1, 60_000),
            (2, 120_000),
            (3, 240_000),
            (7, 3_600_000),
            (40, 3_600_000),
        ] {
            for _ in 0..50 {
                let wait = backoff_ms(60, attempts);
                assert!(
                    wait >= base && wait <= base + base / 10,
                    "attempt {attempts}: {wait}"
                );
            }
        }
        assert_eq!(backoff_ms(0, 3), 0);
    }
}
