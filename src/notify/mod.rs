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

pub mod compose;
pub mod content;
pub mod digest;
pub mod event;
pub mod fanout;
pub mod flush;
pub mod mentions;
pub mod message;
pub mod policy;
pub mod prefs;
pub mod preview;
pub mod recipients;
pub mod ticket_events;
pub mod transport;
pub mod why;

use crate::model::Channel;
pub use crate::model::EventKind;

/// A group of people an event can notify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Active users whose address is in the configured `admins` list.
    Developers,
    /// Active users holding `delete_helpdeskticket`, directly or through a group.
    Managers,
    /// The user who opened the ticket, if active.
    Creator,
    /// The user the ticket is assigned to (after the event), if any.
    Assignee,
    /// The user an assignment took the ticket from, if any.
    PreviousAssignee,
    /// The users watching the ticket.
    Watchers,
    /// The active users a comment names as `@username`.
    Mentioned,
    /// The developers, while nobody is assigned to the ticket.
    DevelopersWhileUnassigned,
}

impl Audience {
    pub const ALL: &'static [Audience] = &[
        Audience::Developers,
        Audience::Managers,
        Audience::Creator,
        Audience::Assignee,
        Audience::PreviousAssignee,
        Audience::Watchers,
        Audience::Mentioned,
        Audience::DevelopersWhileUnassigned,
    ];

    /// The name stored with each notification (`notifications.reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Developers => "developers",
            Audience::Managers => "managers",
            Audience::Creator => "creator",
            Audience::Assignee => "assignee",
            Audience::PreviousAssignee => "previous_assignee",
            Audience::Watchers => "watchers",
            Audience::Mentioned => "mentioned",
            Audience::DevelopersWhileUnassigned => "developers_while_unassigned",
        }
    }

    pub fn from_stored(text: &str) -> Option<Audience> {
        Audience::ALL.iter().copied().find(|a| a.as_str() == text)
    }

    /// Why a user in this audience hears about the event, as every email's
    /// footer ("You receive this because …") and `notify why` say it.
    pub fn reason(self) -> &'static str {
        match self {
            Audience::Creator => "you opened this ticket",
            Audience::Assignee => "you are assigned to it",
            Audience::PreviousAssignee => "you were assigned to it",
            Audience::Watchers => "you watch it",
            Audience::Mentioned => "you were mentioned",
            Audience::Developers | Audience::DevelopersWhileUnassigned => {
                "you are on the help desk team (admins)"
            }
            Audience::Managers => "you manage the help desk",
        }
    }
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
/// here, its title and body in `content.rs`, and its templates. A user named
/// by several audiences is notified once per channel; each notification
/// records the first audience (in the row's order) that gave that channel,
/// so list the most specific first.
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
            (Audience::Assignee, APP_AND_EMAIL),
            (Audience::Creator, APP_AND_EMAIL),
            (Audience::Watchers, APP_AND_EMAIL),
            (Audience::DevelopersWhileUnassigned, APP_AND_EMAIL),
            (Audience::Managers, APP),
        ],
        skip_actor: true,
    },
    Rule {
        kind: EventKind::Comment,
        audiences: &[
            (Audience::Assignee, APP_AND_EMAIL),
            (Audience::Creator, APP_AND_EMAIL),
            (Audience::Mentioned, APP_AND_EMAIL),
            (Audience::Watchers, APP_AND_EMAIL),
            (Audience::DevelopersWhileUnassigned, APP_AND_EMAIL),
            (Audience::Managers, APP),
        ],
        skip_actor: true,
    },
    // SPEC §7: the new assignee by both channels, the previous one in-app,
    // the watchers as for any change; never the actor.
    Rule {
        kind: EventKind::Assign,
        audiences: &[
            (Audience::Assignee, APP_AND_EMAIL),
            (Audience::PreviousAssignee, APP),
            (Audience::Watchers, APP_AND_EMAIL),
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
