//! The ordered schema steps. The number applied lives in SQLite's
//! `user_version`; steps only ever get appended, never edited once shipped.

use rusqlite_migration::{M, Migrations};

/// Every step, oldest first. A database whose `user_version` is past the end
/// comes from a newer helpdesk and is refused by `Store::open`.
pub fn all() -> Migrations<'static> {
    Migrations::new(steps())
}

/// How many steps there are: the `user_version` of an up-to-date database.
pub fn count() -> i64 {
    steps().len() as i64
}

fn steps() -> Vec<M<'static>> {
    vec![
        // 1: the first schema: people and permissions, tickets and their events,
        // notifications with their delivery state, and a log of every attempt.
        M::up(include_str!("schema/001_initial.sql")),
        // 4: ownership (SPEC §7): assignees, watchers, preferences, and the held
        // status and per-notification reason that preferences and digests need.
        // (Steps 2 and 3 are other branches'; the lead orders them at merge.)
        M::up(include_str!("schema/004_ownership.sql")),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::all().validate().unwrap();
    }
}
