//! Notifications: who hears about a ticket event, on which channels, with
//! what content, and how queued email is delivered.
//!
//! The whole fan-out reads from one table, [`RULES`]: event → recipient
//! groups → channels. `recipients` turns a rule and the people in the
//! database into one entry per user (pure, no I/O); `content` gives each
//! event its title, in-app body and email templates; `fanout` writes the
//! notifications (in the caller's transaction); `message` builds an email
//! and mints its Message-ID; `policy` says when a deferred email is retried
//! and when it is given up; `flush` claims due email and hands it to a
//! `transport`, the only code that speaks SMTP.

pub mod content;
pub mod event;
pub mod fanout;
pub mod flush;
pub mod message;
pub mod policy;
pub mod recipients;
pub mod ticket_events;
pub mod transport;

use crate::model::Channel;

pub use event::EventKind;

/// A group of people an event can notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Active users whose address is in the configured `admins` list.
    Developers,
    /// Active users holding `delete_helpdeskticket`, directly or through a group.
    Managers,
    /// The user who opened the ticket, if active.
    Creator,
}

/// Who hears about one kind of event, and how.
pub struct Rule {
    pub kind: EventKind,
    pub audiences: &'static [(Audience, &'static [Channel])],
    /// Whether the user who caused the event is left out.
    pub skip_actor: bool,
}

const APP: &[Channel] = &[Channel::App];
const APP_AND_EMAIL: &[Channel] = &[Channel::App, Channel::Email];

/// The permission that makes a user a manager.
pub const MANAGER_PERMISSION: &str = "delete_helpdeskticket";

/// Every event and who hears about it. Adding an event means adding a row
/// here, its title and body in `content.rs`, and its templates.
pub const RULES: &[Rule] = &[
    // A NEW ticket notifies everyone its rules name, its creator included.
    Rule {
        kind: EventKind::New,
        audiences: &[
            (Audience::Developers, APP_AND_EMAIL),
            (Audience::Managers, APP),
        ],
        skip_actor: false,
    },
    Rule {
        kind: EventKind::Update,
        audiences: &[
            (Audience::Creator, APP_AND_EMAIL),
            (Audience::Developers, APP_AND_EMAIL),
            (Audience::Managers, APP),
        ],
        skip_actor: true,
    },
    Rule {
        kind: EventKind::Comment,
        audiences: &[
            (Audience::Creator, APP_AND_EMAIL),
            (Audience::Developers, APP_AND_EMAIL),
            (Audience::Managers, APP),
        ],
        skip_actor: true,
    },
];

/// The rule for an event kind.
pub fn rule(kind: EventKind) -> &'static Rule {
    RULES
        .iter()
        .find(|rule| rule.kind == kind)
        .expect("every EventKind has a row in RULES (checked by a unit test)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_has_exactly_one_rule() {
        for kind in EventKind::ALL {
            assert_eq!(
                RULES.iter().filter(|r| r.kind == *kind).count(),
                1,
                "{kind:?}"
            );
        }
    }
}
