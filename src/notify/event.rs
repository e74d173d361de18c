//! Ticket events and the facts recorded with each: the ticket as it stood
//! right after the event, what changed, and the comment. Notifications are
//! rendered from these facts, so an email sent an hour later still describes
//! the event, not whatever the ticket has become since.

use serde::{Deserialize, Serialize};

use crate::model::{Priority, Purpose, Status, UserId};
use crate::store::tickets::Ticket;

/// The facts stored with an event (as JSON in `events.data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    pub purpose: Purpose,
    pub priority: Priority,
    pub status: Status,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// An assignment: who had the ticket and who has it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,
    /// The actor's name as email shows it (set by the fan-out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    /// The creator's name as email shows it (set by the fan-out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_by: Option<String>,
}

/// A person as an event names them: their ID (for routing) and the name
/// people read (their full name, else their username).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: UserId,
    pub name: String,
}

impl Person {
    pub fn of(user: &crate::store::users::User) -> Person {
        Person {
            id: user.id,
            name: display_name(user).to_string(),
        }
    }
}

/// The name people read: the full name, or the username when there is none.
pub fn display_name(user: &crate::store::users::User) -> &str {
    if user.name.trim().is_empty() {
        &user.username
    } else {
        &user.name
    }
}

/// Who had a ticket before an assignment, and who has it after (None: nobody).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub from: Option<Person>,
    pub to: Option<Person>,
}

/// One field that an update changed, with display names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
}

impl EventData {
    /// The facts of a ticket as it stands now.
    pub fn of(ticket: &Ticket) -> EventData {
        EventData {
            purpose: ticket.purpose,
            priority: ticket.priority,
            status: ticket.status,
            description: ticket.description.clone(),
            changes: Vec::new(),
            comment: None,
            assignment: None,
            actor_name: None,
            opened_by: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .expect("EventData holds only strings and enums, which always serialize")
    }

    pub fn from_json(text: &str) -> anyhow::Result<EventData> {
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("damaged event record: {e}"))
    }
}
