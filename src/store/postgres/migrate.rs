//! PostgreSQL's schema steps, applied once however many hosts start at the
//! same moment. The number applied lives in the one-row table
//! `helpdesk_schema`; the steps only ever get appended. Every step runs with
//! the version check in one transaction holding a transaction-level advisory
//! lock, so a second host waits for the first and then finds the work done.

use postgres::GenericClient;

/// Every step, oldest first; a database whose version is past the end comes
/// from a newer helpdesk and is refused.
const STEPS: &[&str] = &[
    // 1: the first schema, as on SQLite.
    include_str!("schema/001_initial.sql"),
    // 2: the inbox names of SQLite's step 2, as views over the per-user indexes.
    include_str!("schema/002_inbox.sql"),
    // 3: conversations by email, as on SQLite.
    include_str!("schema/003_mail.sql"),
    // 4: ownership (SPEC §7): assignees, watchers, preferences, `held`, reasons.
    include_str!("schema/004_ownership.sql"),
    // 5: one foreign key from a notification to its event and ticket, and an index of
    // claims (PostgreSQL only).
    include_str!("schema/005_keys.sql"),
    // 6: no index of Message-IDs, as on SQLite.
    include_str!("schema/006_message_ids.sql"),
];

/// The advisory lock key that serialises migrations (any fixed number; this
/// one spells "helpdesk" in ASCII, truncated).
const LOCK_KEY: i64 = 0x6865_6c70_6465_736b;

/// What the database holds, before anything changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No tables at all: `init` may create the schema.
    Empty,
    /// Tables, but no `helpdesk_schema`: another program's database.
    Foreign,
    /// A helpdesk schema at this version.
    Version(i64),
}

pub fn known() -> i64 {
    STEPS.len() as i64
}

/// Looks at the database without changing it.
pub fn inspect(client: &mut impl GenericClient) -> Result<Found, postgres::Error> {
    let row = client.query_one(
        "SELECT to_regclass('helpdesk_schema') IS NOT NULL,
                (SELECT count(*) FROM pg_catalog.pg_tables
                  WHERE schemaname = current_schema())",
        &[],
    )?;
    let (ours, tables): (bool, i64) = (row.get(0), row.get(1));
    if ours {
        let version: i64 = client
            .query_one("SELECT version FROM helpdesk_schema", &[])?
            .get(0);
        Ok(Found::Version(version))
    } else if tables == 0 {
        Ok(Found::Empty)
    } else {
        Ok(Found::Foreign)
    }
}

/// The schema version, when the database has one that is current: one
/// statement (one round trip: not prepared) and no lock, the path of every
/// command once migrated. None sends the caller to `migrate`.
pub fn current(client: &mut postgres::Client) -> Option<i64> {
    let version: i64 = client
        .query_typed_one("SELECT version FROM helpdesk_schema", &[])
        .ok()?
        .get(0);
    (version == known()).then_some(version)
}

/// Brings the schema up to date under the advisory lock; with `create`, an
/// empty database gets the whole schema. Returns what it found under the
/// lock (after another host's work), so the caller can refuse a foreign,
/// missing or newer schema.
pub fn migrate(client: &mut postgres::Client, create: bool) -> Result<Found, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])?;
    let found = inspect(&mut tx)?;
    let from = match found {
        Found::Version(v) if v < known() => v,
        Found::Empty if create => {
            tx.batch_execute(
                "CREATE TABLE helpdesk_schema (version BIGINT NOT NULL);
                              INSERT INTO helpdesk_schema VALUES (0);",
            )?;
            0
        }
        other => return Ok(other),
    };
    for step in &STEPS[from as usize..] {
        tx.batch_execute(step)?;
    }
    tx.execute("UPDATE helpdesk_schema SET version = $1", &[&known()])?;
    tx.commit()?;
    Ok(Found::Version(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testing::{FreshDatabase, client};

    #[test]
    fn many_hosts_starting_at_once_migrate_exactly_once() {
        let Some(db) = FreshDatabase::new() else {
            return;
        };
        let results: Vec<Found> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| migrate(&mut client(&db.target), true).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // One of them created the schema (from version 0); the others found it done.
        assert_eq!(
            results.iter().filter(|f| **f == Found::Version(0)).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .all(|f| *f == Found::Version(0) || *f == Found::Version(known())),
            "{results:?}"
        );
        assert_eq!(
            inspect(&mut client(&db.target)).unwrap(),
            Found::Version(known())
        );
    }

    #[test]
    fn only_init_creates_and_another_programs_database_is_left_alone() {
        let Some(db) = FreshDatabase::new() else {
            return;
        };
        let mut c = client(&db.target);
        assert_eq!(migrate(&mut c, false).unwrap(), Found::Empty);
        assert_eq!(
            inspect(&mut c).unwrap(),
            Found::Empty,
            "nothing was created"
        );
        c.batch_execute("CREATE TABLE orders (id int)").unwrap();
        assert_eq!(migrate(&mut c, true).unwrap(), Found::Foreign);
        assert!(
            c.query_opt("SELECT to_regclass('users')::text", &[])
                .unwrap()
                .and_then(|r| r.get::<_, Option<String>>(0))
                .is_none(),
            "no helpdesk table in another program's database"
        );
    }

    #[test]
    fn a_newer_schema_is_reported_as_found() {
        let Some(db) = FreshDatabase::new() else {
            return;
        };
        let mut c = client(&db.target);
        migrate(&mut c, true).unwrap();
        c.execute("UPDATE helpdesk_schema SET version = 99", &[])
            .unwrap();
        assert_eq!(migrate(&mut c, false).unwrap(), Found::Version(99));
    }
}
