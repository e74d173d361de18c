//! The domain's value types: ticket fields, channels, notification states,
//! event kinds and what received mail became, each with its stored name (also
//! its JSON value), its display name and the spellings the command line
//! accepts; and the IDs of tickets, users, groups, events and notifications,
//! each its own type. Storage and rendering both use these; neither defines
//! its own copy (`store::db` binds them and reads them back by type).

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// Declares a closed set of values stored and printed by their snake_case name.
macro_rules! value_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $stored:literal / $display:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[value(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        // Not every type uses every helper; the macro gives each the same set.
        #[allow(dead_code)]
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the database and used in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $stored),+ }
            }

            /// The name people read.
            pub fn display(self) -> &'static str {
                match self { $($name::$variant => $display),+ }
            }

            /// Parses a stored name; `None` for anything else.
            pub fn from_stored(text: &str) -> Option<$name> {
                match text { $($stored => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.display())
            }
        }
    };
}

/// Declares the ID of one kind of row: a number that cannot be passed where
/// another kind's ID is expected. JSON and `Display` show the bare number
/// (the `#N` people read is written where it is shown).
macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident;)+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        // Not every type uses every helper; the macro gives each the same set.
        #[allow(dead_code)]
        impl $name {
            /// The number itself, for arithmetic and for keys that are not typed.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }
    )+};
}

id_type! {
    /// A ticket's number (`tickets.id`).
    TicketId;
    /// A user's ID (`users.id`).
    UserId;
    /// A group's ID (`groups.id`).
    GroupId;
    /// An event's ID (`events.id`).
    EventId;
    /// A notification's ID (`notifications.id`), in-app or email.
    NotificationId;
}

value_enum! {
    /// What a ticket is about.
    Purpose {
        App = "app" / "App",
        #[value(alias = "comp")]
        Company = "company" / "Company",
    }
}

value_enum! {
    /// How urgent a ticket is.
    Priority {
        Low = "low" / "Low",
        #[value(alias = "med")]
        Medium = "medium" / "Medium",
        High = "high" / "High",
        #[value(alias = "urge")]
        Urgent = "urgent" / "Urgent",
    }
}

value_enum! {
    /// Where a ticket stands.
    Status {
        #[value(alias = "read")]
        Ready = "ready" / "Ready",
        #[value(alias = "in-progress", alias = "prog")]
        InProgress = "in_progress" / "In Progress",
        Done = "done" / "Done",
    }
}

value_enum! {
    /// How a notification reaches its user.
    Channel {
        App = "app" / "In-app",
        Email = "email" / "Email",
    }
}

value_enum! {
    /// The life of a notification: see SPEC §1 "Notification states".
    NotificationStatus {
        Pending = "pending" / "Pending",
        Processing = "processing" / "Processing",
        Sent = "sent" / "Sent",
        Errored = "errored" / "Errored",
        Failed = "failed" / "Failed",
        /// An email kept for the user's next digest (SPEC §7).
        Held = "held" / "Held",
    }
}

value_enum! {
    /// How a user wants email about an event (SPEC §7).
    EmailMode {
        Immediate = "immediate" / "immediate",
        Digest = "digest" / "digest",
        Off = "off" / "off",
    }
}

value_enum! {
    /// Whether a user wants in-app notifications about an event.
    Switch {
        On = "on" / "on",
        Off = "off" / "off",
    }
}

value_enum! {
    /// How urgent a notification is; a flush sends high before medium before low.
    NotificationPriority {
        Low = "low" / "Low",
        Medium = "medium" / "Medium",
        High = "high" / "High",
    }
}

value_enum! {
    /// What happened to a ticket: each kind has its rule (`notify::RULES`),
    /// its templates (`ticket_<name>.html`) and its preferences.
    EventKind {
        New = "new" / "new",
        Update = "update" / "update",
        Comment = "comment" / "comment",
        Assign = "assign" / "assign",
    }
}

/// What an `events` row records: an event on a ticket, or the digest that
/// gathered a user's held email (SPEC §7), stored as `digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordedKind {
    Ticket(EventKind),
    Digest,
}

impl RecordedKind {
    /// The name stored in `events.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordedKind::Ticket(kind) => kind.as_str(),
            RecordedKind::Digest => "digest",
        }
    }

    /// The ticket event, or None for a digest.
    pub fn ticket_event(self) -> Option<EventKind> {
        match self {
            RecordedKind::Ticket(kind) => Some(kind),
            RecordedKind::Digest => None,
        }
    }

    /// Parses a stored name; `None` for anything else.
    pub fn from_stored(text: &str) -> Option<RecordedKind> {
        match text {
            "digest" => Some(RecordedKind::Digest),
            _ => EventKind::from_stored(text).map(RecordedKind::Ticket),
        }
    }
}

impl From<EventKind> for RecordedKind {
    fn from(kind: EventKind) -> RecordedKind {
        RecordedKind::Ticket(kind)
    }
}

impl std::fmt::Display for RecordedKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

value_enum! {
    /// What `mail receive` made of a message (SPEC §6): its JSON `action`,
    /// stored with the message's Message-ID.
    ReceivedAction {
        Bounce = "bounce" / "bounce",
        Ignored = "ignored" / "ignored",
        Refused = "refused" / "refused",
        Comment = "comment" / "comment",
        Ticket = "ticket" / "ticket",
    }
}

impl NotificationPriority {
    /// Sort key for the queue: larger is sent first.
    pub fn rank(self) -> i64 {
        match self {
            NotificationPriority::Low => 1,
            NotificationPriority::Medium => 2,
            NotificationPriority::High => 3,
        }
    }

    pub fn from_rank(rank: i64) -> Option<NotificationPriority> {
        match rank {
            1 => Some(NotificationPriority::Low),
            2 => Some(NotificationPriority::Medium),
            3 => Some(NotificationPriority::High),
            _ => None,
        }
    }
}

impl From<Priority> for NotificationPriority {
    fn from(priority: Priority) -> Self {
        match priority {
            Priority::Low => NotificationPriority::Low,
            Priority::Medium => NotificationPriority::Medium,
            Priority::High | Priority::Urgent => NotificationPriority::High,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_spellings_map_to_stored_values() {
        let cases = [
            ("comp", Purpose::Company.as_str()),
            ("COMPANY", Purpose::Company.as_str()),
            ("App", Purpose::App.as_str()),
        ];
        for (input, stored) in cases {
            assert_eq!(Purpose::from_str(input, true).unwrap().as_str(), stored);
        }
        assert_eq!(Priority::from_str("med", true).unwrap(), Priority::Medium);
        assert_eq!(Priority::from_str("URGE", true).unwrap(), Priority::Urgent);
        assert_eq!(Status::from_str("read", true).unwrap(), Status::Ready);
        assert_eq!(
            Status::from_str("in-progress", true).unwrap(),
            Status::InProgress
        );
        assert_eq!(Status::from_str("prog", true).unwrap(), Status::InProgress);
        assert!(Priority::from_str("critical", true).is_err());
    }

    #[test]
    fn ticket_priority_maps_to_notification_priority() {
        assert_eq!(
            NotificationPriority::from(Priority::Urgent),
            NotificationPriority::High
        );
        assert_eq!(
            NotificationPriority::from(Priority::High),
            NotificationPriority::High
        );
        assert_eq!(
            NotificationPriority::from(Priority::Medium),
            NotificationPriority::Medium
        );
        assert_eq!(
            NotificationPriority::from(Priority::Low),
            NotificationPriority::Low
        );
        for p in NotificationPriority::ALL {
            assert_eq!(NotificationPriority::from_rank(p.rank()), Some(*p));
        }
    }

    #[test]
    fn ids_print_and_serialize_as_the_bare_number() {
        assert_eq!(TicketId(12).to_string(), "12");
        assert_eq!(format!("#{}", TicketId(12)), "#12");
        assert_eq!(format!("{:>4}", UserId(7)), "   7");
        assert_eq!(serde_json::to_string(&NotificationId(-3)).unwrap(), "-3");
        assert_eq!(
            serde_json::to_string(&Some(EventId(5))).unwrap(),
            serde_json::to_string(&Some(5_i64)).unwrap()
        );
        assert_eq!(serde_json::from_str::<GroupId>("9").unwrap(), GroupId(9));
    }

    #[test]
    fn stored_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::from_stored(s.as_str()), Some(*s));
        }
        assert_eq!(Status::InProgress.display(), "In Progress");
        for kind in EventKind::ALL {
            let recorded = RecordedKind::from(*kind);
            assert_eq!(RecordedKind::from_stored(recorded.as_str()), Some(recorded));
        }
        assert_eq!(
            RecordedKind::from_stored("digest"),
            Some(RecordedKind::Digest)
        );
        assert_eq!(RecordedKind::from_stored("lost"), None);
    }
}
