//! The PostgreSQL backend (SPEC §8): reaching the server (`connect`), its
//! schema steps (`migrate`), and `PgStore`, the one connection a command
//! holds, with its prepared statements. The store's queries are the shared
//! ones (`db.rs`); what is PostgreSQL's alone lives here.

pub mod connect;
pub mod migrate;

use std::cell::RefCell;

use super::db::{Backend, Db, Param, PgDb, Row, StatementCache};
use super::{Access, Result, StoreError};

/// How many times a transaction that lost a deadlock or a serialization
/// conflict runs again before the error reaches the user.
const TRANSACTION_TRIES: u32 = 5;

/// A moment's wait before a transaction that lost a race runs again.
fn backoff() {
    std::thread::sleep(std::time::Duration::from_millis(fastrand::u64(5..50)));
}

/// An open help desk on a PostgreSQL server.
pub struct PgStore {
    /// The client and its prepared statements, borrowed per statement (or
    /// for a whole transaction), so `conn(&self)` can hand out a `&dyn Db`.
    session: RefCell<(postgres::Client, StatementCache)>,
}

impl PgStore {
    /// Connects, and brings the schema up to date (with `create`, makes it
    /// in an empty database). Refuses another program's database, a newer
    /// schema, and (without `create`) a database with no help desk in it.
    pub fn open(url: &str, access: &Access<'_>, create: bool) -> Result<PgStore> {
        let target =
            connect::parse(url, access.env).map_err(|e| StoreError::Server(e.to_string()))?;
        let home = access.env.get("HOME").map(std::path::Path::new);
        let password = connect::password(&target, access.env, home);
        let mut client =
            connect::connect(&target, password, access.timeout).map_err(|e| match e {
                connect::ConnectError::Timeout { .. }
                | connect::ConnectError::Unreachable { .. } => {
                    StoreError::Unreachable(e.to_string())
                }
                other => StoreError::Server(other.to_string()),
            })?;
        let offset = crate::clock::offset_ms();
        if offset != 0 {
            // A test build running its clock ahead moves the server's too.
            client.batch_execute(&format!("SET helpdesk.clock_offset = '{offset}'"))?;
        }
        let found = match migrate::current(&mut client) {
            Some(version) => migrate::Found::Version(version),
            None => migrate::migrate(&mut client, create)?,
        };
        match found {
            migrate::Found::Version(v) if v > migrate::known() => Err(StoreError::TooNew {
                path: url.into(),
                found: v,
                known: migrate::known(),
            }),
            migrate::Found::Version(_) => Ok(PgStore {
                session: RefCell::new((client, StatementCache::new())),
            }),
            migrate::Found::Empty => Err(StoreError::NoSchema {
                database: url.to_string(),
            }),
            migrate::Found::Foreign => Err(StoreError::NotADatabase {
                path: url.into(),
                reason: "it holds the tables of another program".into(),
            }),
        }
    }

    pub fn conn(&self) -> &dyn Db {
        self
    }

    /// Runs `work` in one transaction (READ COMMITTED, rows locked as the
    /// work touches them); a deadlock or serialization failure runs it again.
    /// BEGIN is sent just before the work's first statement (work that
    /// sends none costs nothing), and work whose only statement is
    /// `Db::execute_last` runs it alone, without BEGIN and COMMIT.
    pub fn in_tx<T, E>(&mut self, mut work: impl FnMut(&dyn Db) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let session = self.session.get_mut();
        let (client, cache) = (&mut session.0, &mut session.1);
        let mut tries = 0;
        loop {
            tries += 1;
            let db = PgDb::transaction(client, cache);
            let outcome = work(&db);
            let lost = db.lost_a_race();
            let outcome = match outcome {
                Ok(value) => db.end(true).map(|()| value),
                Err(_) if lost && tries < TRANSACTION_TRIES => {
                    db.end(false)?;
                    backoff();
                    continue;
                }
                Err(err) => {
                    db.end(false)?;
                    return Err(err);
                }
            };
            match outcome {
                Err(StoreError::Busy { .. }) if tries < TRANSACTION_TRIES => backoff(),
                other => return other.map_err(E::from),
            }
        }
    }

    /// Outcomes of a flush are committed without waiting for the server's
    /// disk: a crash of the server may roll back the last ones, which makes
    /// those emails due again (resent, never lost).
    pub fn relax_durability(&mut self) -> Result<()> {
        self.execute_batch("SET synchronous_commit = off")
    }
}

impl PgStore {
    /// The client, outside any transaction, as a `Db` for one call.
    fn with_db<T>(&self, call: impl FnOnce(&PgDb<'_>) -> Result<T>) -> Result<T> {
        let mut session = self.session.borrow_mut();
        let (client, cache) = &mut *session;
        call(&PgDb::new(client, cache))
    }
}

impl Db for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn each_row(
        &self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&Row<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        self.with_db(|db| db.each_row(sql, params, each))
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        self.with_db(|db| db.execute(sql, params))
    }

    fn execute_batch(&self, sql: &str) -> Result<()> {
        Ok(self.session.borrow_mut().0.batch_execute(sql)?)
    }
}

/// For unit tests: fresh databases on the test cluster (`tests/pg/cluster.sh`,
/// found through `HELPDESK_TEST_PG`), dropped afterwards.
#[cfg(test)]
pub mod testing {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::connect::{self, Target};

    /// The test cluster, or None (said on stderr) outside CI; under
    /// `CI=true` a missing cluster fails the test.
    pub fn cluster() -> Option<Target> {
        match std::env::var("HELPDESK_TEST_PG") {
            Ok(url) => Some(
                connect::parse(&url, &HashMap::new()).expect("HELPDESK_TEST_PG is a valid URL"),
            ),
            Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("HELPDESK_TEST_PG is not set: .ci/run starts a cluster and sets it")
            }
            Err(_) => {
                eprintln!("NOT RUN: set HELPDESK_TEST_PG (see tests/pg/cluster.sh)");
                None
            }
        }
    }

    pub fn client(target: &Target) -> postgres::Client {
        connect::connect(target, None, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("the test cluster: {e}"))
    }

    /// A new, empty database, dropped when the guard goes.
    pub struct FreshDatabase {
        pub target: Target,
        admin: Target,
    }

    impl FreshDatabase {
        pub fn new() -> Option<FreshDatabase> {
            let admin = cluster()?;
            let name = format!("hd_unit_{:016x}", fastrand::u64(..));
            client(&admin)
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("create a test database");
            let target = Target {
                dbname: name,
                ..admin.clone()
            };
            Some(FreshDatabase { target, admin })
        }

        /// Its URL, without TLS (the unit tests' own connection).
        pub fn url(&self) -> String {
            let t = &self.target;
            format!(
                "postgresql://{}@{}:{}/{}?sslmode=disable",
                t.user, t.host, t.port, t.dbname
            )
        }
    }

    impl Drop for FreshDatabase {
        fn drop(&mut self) {
            let _ = client(&self.admin).batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.target.dbname
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::FreshDatabase;
    use super::*;
    use std::collections::HashMap;

    fn open(fresh: &FreshDatabase) -> PgStore {
        let env = HashMap::new();
        let access = Access {
            env: &env,
            timeout: std::time::Duration::from_secs(10),
        };
        PgStore::open(&fresh.url(), &access, true).unwrap()
    }

    fn names(store: &PgStore) -> Vec<String> {
        store
            .conn()
            .query("SELECT name FROM users ORDER BY id", &[], |row| row.text(0))
            .unwrap()
    }

    #[test]
    fn a_statement_answers_alike_on_its_first_second_and_later_runs() {
        let Some(fresh) = FreshDatabase::new() else {
            return;
        };
        let store = open(&fresh);
        let db = store.conn();
        for (i, who) in ["ann", "bob"].iter().enumerate() {
            db.execute(
                "INSERT INTO users (username, email, created_at) VALUES ($1, $2, $3)",
                &[who, &format!("{who}@example.org"), &(i as i64)],
            )
            .unwrap();
        }
        // Run 1 sends its types (NULL untyped), run 2 prepares, runs 3 and 4 reuse.
        for run in 0..4_i64 {
            let given = (run % 2 == 0).then_some(run);
            let got = db
                .query_one(
                    "SELECT coalesce($1, CAST(-1 AS BIGINT)), $2 || '!', NOT $3, $4",
                    &[&given, &"hi", &true, &None::<String>],
                    |row| Ok((row.int(0)?, row.text(1)?, row.bool(2)?, row.opt_text(3)?)),
                )
                .unwrap();
            assert_eq!(got, (given.unwrap_or(-1), "hi!".to_string(), false, None));
            let changed = db
                .execute("UPDATE users SET name = $1 WHERE id > $2", &[&"x", &0_i64])
                .unwrap();
            assert_eq!(changed, 2, "run {run}");
        }
    }

    #[test]
    fn a_transaction_of_one_last_statement_runs_it_alone_and_nothing_may_follow() {
        let Some(fresh) = FreshDatabase::new() else {
            return;
        };
        let mut store = open(&fresh);
        store
            .conn()
            .execute(
                "INSERT INTO users (username, email, created_at) VALUES ('ann', 'a@example.org', 0)",
                &[],
            )
            .unwrap();
        let set = "UPDATE users SET name = $1";
        let changed = store.in_tx(|tx| tx.execute_last(set, &[&"alone"])).unwrap();
        assert_eq!((changed, names(&store)), (1, vec!["alone".to_string()]));

        let err = store
            .in_tx(|tx| {
                tx.execute_last(set, &[&"last"])?;
                tx.execute(set, &[&"after"])
            })
            .unwrap_err();
        assert!(
            err.to_string().contains("after the last statement"),
            "{err}"
        );

        // After other statements it is one of the transaction's, rolled back with it.
        let err = store
            .in_tx(|tx| {
                tx.execute(set, &[&"first"])?;
                tx.execute_last(set, &[&"second"])?;
                Err::<(), _>(StoreError::Other("changed my mind".into()))
            })
            .unwrap_err();
        assert!(err.to_string().contains("changed my mind"), "{err}");
        assert_eq!(names(&store), vec!["last".to_string()]);

        // A failed statement rolls back what came before it.
        let err = store
            .in_tx(|tx| {
                tx.execute(set, &[&"kept?"])?;
                tx.execute("UPDATE users SET created_at = $1", &[&"not a number"])
            })
            .unwrap_err();
        assert!(!err.to_string().is_empty());
        assert_eq!(names(&store), vec!["last".to_string()]);
        let both = store
            .in_tx(|tx| {
                tx.execute(set, &[&"one"])?;
                tx.execute_last(set, &[&"two"])
            })
            .unwrap();
        assert_eq!((both, names(&store)), (1, vec!["two".to_string()]));
    }
}
