//! Who hears about an event: a rule and the people in each audience in, one
//! entry per user with the union of their channels out. Pure: no database,
//! no configuration; `queue` gathers the people and writes the result.

use std::collections::HashMap;

use crate::model::{Channel, UserId};
use crate::notify::{Audience, Rule};
use crate::store::users::User;

/// The people in each audience, as the database has them (active users only).
#[derive(Debug, Default)]
pub struct People {
    pub developers: Vec<User>,
    pub managers: Vec<User>,
    pub creator: Option<User>,
    pub assignee: Option<User>,
    pub previous_assignee: Option<User>,
    pub watchers: Vec<User>,
    pub mentioned: Vec<User>,
}

impl People {
    fn of(&self, audience: Audience) -> &[User] {
        match audience {
            Audience::Developers => &self.developers,
            Audience::Managers => &self.managers,
            Audience::Creator => self.creator.as_slice(),
            Audience::Assignee => self.assignee.as_slice(),
            Audience::PreviousAssignee => self.previous_assignee.as_slice(),
            Audience::Watchers => &self.watchers,
            Audience::Mentioned => &self.mentioned,
            Audience::DevelopersWhileUnassigned => {
                if self.assignee.is_some() {
                    &[]
                } else {
                    &self.developers
                }
            }
        }
    }
}

/// One user to notify, on each of these channels once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient<'p> {
    pub user: &'p User,
    pub channels: Vec<Channel>,
    /// For each channel, the first audience that gave it: why they hear.
    pub reasons: Vec<(Channel, Audience)>,
}

impl Recipient<'_> {
    /// The audience that gave this channel.
    pub fn reason(&self, channel: Channel) -> Option<Audience> {
        self.reasons
            .iter()
            .find(|(c, _)| *c == channel)
            .map(|(_, a)| *a)
    }
}

/// Resolves a rule: users in the order their first audience lists them,
/// each once, with every channel any of their audiences gives them (once),
/// leaving out the actor when the rule says so.
pub fn resolve<'p>(rule: &Rule, people: &'p People, actor_id: UserId) -> Vec<Recipient<'p>> {
    let mut out: Vec<Recipient<'p>> = Vec::new();
    // user id -> position in `out`; a manager list can hold hundreds of users.
    let mut position: HashMap<UserId, usize> = HashMap::new();
    for (audience, channels) in rule.audiences {
        for user in people.of(*audience) {
            if !user.active || (rule.skip_actor && user.id == actor_id) {
                continue;
            }
            let index = *position.entry(user.id).or_insert_with(|| {
                out.push(Recipient {
                    user,
                    channels: Vec::new(),
                    reasons: Vec::new(),
                });
                out.len() - 1
            });
            let entry = &mut out[index];
            for channel in *channels {
                if !entry.channels.contains(channel) {
                    entry.channels.push(*channel);
                    entry.reasons.push((*channel, *audience));
                }
            }
        }
    }
    for recipient in &mut out {
        recipient.channels.sort();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Audience;
    use crate::notify::{EventKind, rule};

    fn user(id: i64, name: &str) -> User {
        User {
            id: UserId(id),
            username: name.into(),
            email: format!("{name}@example.org"),
            name: String::new(),
            active: true,
            created_at: 0,
        }
    }

    fn summary(recipients: &[Recipient]) -> Vec<(String, Vec<Channel>)> {
        recipients
            .iter()
            .map(|r| (r.user.username.clone(), r.channels.clone()))
            .collect()
    }

    #[test]
    fn new_ticket_reaches_developers_by_both_channels_and_managers_in_app() {
        let people = People {
            developers: vec![user(1, "dev")],
            managers: vec![user(2, "boss")],
            creator: None,
            ..People::default()
        };
        let got = resolve(rule(EventKind::New), &people, UserId(1));
        assert_eq!(
            summary(&got),
            vec![
                ("dev".into(), vec![Channel::App, Channel::Email]),
                ("boss".into(), vec![Channel::App])
            ]
        );
    }

    #[test]
    fn a_developer_who_is_also_a_manager_gets_one_of_each() {
        let both = user(1, "both");
        let people = People {
            developers: vec![both.clone()],
            managers: vec![both.clone(), both],
            creator: None,
            ..People::default()
        };
        let got = resolve(rule(EventKind::New), &people, UserId(99));
        assert_eq!(
            summary(&got),
            vec![("both".into(), vec![Channel::App, Channel::Email])]
        );
    }

    #[test]
    fn updates_skip_the_actor_but_new_tickets_do_not() {
        let dev = user(1, "dev");
        let people = People {
            developers: vec![dev.clone()],
            managers: vec![],
            creator: Some(dev),
            ..People::default()
        };
        assert_eq!(resolve(rule(EventKind::New), &people, UserId(1)).len(), 1);
        assert!(resolve(rule(EventKind::Update), &people, UserId(1)).is_empty());
        assert!(resolve(rule(EventKind::Comment), &people, UserId(1)).is_empty());
    }

    #[test]
    fn a_manager_who_created_the_ticket_gets_email_too_on_updates() {
        let boss = user(2, "boss");
        let people = People {
            developers: vec![],
            managers: vec![boss.clone()],
            creator: Some(boss),
            ..People::default()
        };
        let got = resolve(rule(EventKind::Comment), &people, UserId(7));
        assert_eq!(
            summary(&got),
            vec![("boss".into(), vec![Channel::App, Channel::Email])]
        );
    }

    #[test]
    fn inactive_users_are_left_out() {
        let mut gone = user(1, "gone");
        gone.active = false;
        let people = People {
            developers: vec![gone.clone()],
            managers: vec![gone],
            creator: None,
            ..People::default()
        };
        assert!(resolve(rule(EventKind::New), &people, UserId(9)).is_empty());
    }

    fn reasons(recipients: &[Recipient]) -> Vec<(String, Channel, Audience)> {
        recipients
            .iter()
            .flat_map(|r| {
                r.reasons
                    .iter()
                    .map(|(c, a)| (r.user.username.clone(), *c, *a))
            })
            .collect()
    }

    #[test]
    fn developers_hear_about_changes_only_while_nobody_is_assigned() {
        let mut people = People {
            developers: vec![user(1, "dev")],
            creator: Some(user(2, "rita")),
            ..People::default()
        };
        let got = resolve(rule(EventKind::Update), &people, UserId(9));
        assert_eq!(
            summary(&got),
            vec![
                ("rita".into(), vec![Channel::App, Channel::Email]),
                ("dev".into(), vec![Channel::App, Channel::Email])
            ]
        );
        people.assignee = Some(user(3, "bob"));
        let got = resolve(rule(EventKind::Comment), &people, UserId(9));
        assert_eq!(
            summary(&got),
            vec![
                ("bob".into(), vec![Channel::App, Channel::Email]),
                ("rita".into(), vec![Channel::App, Channel::Email])
            ]
        );
        // A NEW ticket is unchanged: developers hear whoever is assigned.
        assert_eq!(resolve(rule(EventKind::New), &people, UserId(9)).len(), 1);
    }

    #[test]
    fn each_channel_records_the_first_audience_that_gave_it() {
        let both = user(1, "both");
        let people = People {
            managers: vec![both.clone()],
            watchers: vec![both.clone()],
            mentioned: vec![both],
            ..People::default()
        };
        let got = resolve(rule(EventKind::Comment), &people, UserId(9));
        assert_eq!(
            reasons(&got),
            vec![
                ("both".into(), Channel::App, Audience::Mentioned),
                ("both".into(), Channel::Email, Audience::Mentioned)
            ]
        );
        let people = People {
            managers: vec![user(1, "boss")],
            developers: vec![user(1, "boss")],
            ..People::default()
        };
        let got = resolve(rule(EventKind::New), &people, UserId(9));
        assert_eq!(
            reasons(&got),
            vec![
                ("boss".into(), Channel::App, Audience::Developers),
                ("boss".into(), Channel::Email, Audience::Developers)
            ]
        );
    }

    #[test]
    fn an_assignment_tells_the_new_assignee_both_ways_the_previous_in_app_never_the_actor() {
        let people = People {
            assignee: Some(user(1, "new")),
            previous_assignee: Some(user(2, "old")),
            watchers: vec![user(3, "actor")],
            creator: Some(user(4, "rita")),
            developers: vec![user(5, "dev")],
            ..People::default()
        };
        let got = resolve(rule(EventKind::Assign), &people, UserId(3));
        assert_eq!(
            summary(&got),
            vec![
                ("new".into(), vec![Channel::App, Channel::Email]),
                ("old".into(), vec![Channel::App])
            ]
        );
    }
}
