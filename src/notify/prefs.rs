//! Preferences: how each user wants to hear about each kind of event, and
//! what that makes of a channel the rules gave them. Pure: `store::preferences`
//! reads and writes the choices; the fan-out asks `status_for`.

use std::collections::HashMap;

use crate::model::{Channel, EmailMode, NotificationStatus, UserId};
use crate::notify::EventKind;
use crate::store::preferences::Stored;

/// One user's choice for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pref {
    pub email: EmailMode,
    pub app: bool,
}

/// What nobody chose: email at once, in-app on.
pub const DEFAULT: Pref = Pref {
    email: EmailMode::Immediate,
    app: true,
};

impl Pref {
    /// A stored row, read leniently: a value this version does not know is
    /// the default, so a damaged row never silences anyone.
    pub fn of(stored: &Stored) -> Pref {
        Pref {
            email: stored.email,
            app: stored.app,
        }
    }

    /// The status a notification on `channel` is written with, or None when
    /// this preference means none is written.
    pub fn status_for(self, channel: Channel) -> Option<NotificationStatus> {
        match channel {
            Channel::App => self.app.then_some(NotificationStatus::Sent),
            Channel::Email => match self.email {
                EmailMode::Immediate => Some(NotificationStatus::Pending),
                EmailMode::Digest => Some(NotificationStatus::Held),
                EmailMode::Off => None,
            },
        }
    }

    /// How `notify why` names the preference behind a channel.
    pub fn describe(self, channel: Channel, kind: EventKind, chosen: bool) -> String {
        let source = if chosen {
            "their choice"
        } else {
            "the default"
        };
        match channel {
            Channel::App => format!(
                "in-app {} for {} events ({source})",
                if self.app { "on" } else { "off" },
                kind.as_str()
            ),
            Channel::Email => format!(
                "email {} for {} events ({source})",
                self.email.as_str(),
                kind.as_str()
            ),
        }
    }
}

/// Users' stored choices for one event, by user ID.
pub fn by_user(stored: &[Stored]) -> HashMap<UserId, Pref> {
    stored.iter().map(|s| (s.user_id, Pref::of(s))).collect()
}

/// A user's choice for every event, defaults filled in, in `EventKind::ALL` order.
pub fn all_events(stored: &[Stored]) -> Vec<(EventKind, Pref)> {
    EventKind::ALL
        .iter()
        .map(|kind| {
            let pref = stored
                .iter()
                .find(|s| s.event == *kind)
                .map_or(DEFAULT, Pref::of);
            (*kind, pref)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_choice_shapes_its_channel() {
        let digest = Pref {
            email: EmailMode::Digest,
            app: false,
        };
        assert_eq!(
            digest.status_for(Channel::Email),
            Some(NotificationStatus::Held)
        );
        assert_eq!(digest.status_for(Channel::App), None);
        assert_eq!(
            DEFAULT.status_for(Channel::Email),
            Some(NotificationStatus::Pending)
        );
        assert_eq!(
            DEFAULT.status_for(Channel::App),
            Some(NotificationStatus::Sent)
        );
        let off = Pref {
            email: EmailMode::Off,
            app: true,
        };
        assert_eq!(off.status_for(Channel::Email), None);
    }
}
