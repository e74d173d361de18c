//! The PostgreSQL half of the harness. With `HELPDESK_TEST_BACKEND=postgres`
//! every `Sandbox` gets a fresh database of its own on the test cluster
//! named by `HELPDESK_TEST_PG` (see `tests/pg/cluster.sh`), dropped when the
//! sandbox goes, and its `helpdesk.toml` points there instead of at
//! `helpdesk.db`. `.ci/run` runs the whole suite once on each backend.

use std::time::Duration;

/// Whether this run of the suite is the PostgreSQL one.
pub fn on_postgres() -> bool {
    std::env::var("HELPDESK_TEST_BACKEND").is_ok_and(|v| v == "postgres")
}

/// The test cluster's URL (for its administrator): required on the
/// PostgreSQL run; elsewhere None, said once on stderr by the caller, and
/// under `CI=true` a missing cluster fails the test.
pub fn cluster() -> Option<String> {
    match std::env::var("HELPDESK_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") || on_postgres() => {
            panic!(
                "HELPDESK_TEST_PG is not set: start a cluster with tests/pg/cluster.sh (.ci/run does)"
            )
        }
        _ => None,
    }
}

/// Connects to a URL of the test cluster (trusted, no password).
pub fn client(url: &str) -> postgres::Client {
    let mut config: postgres::Config = url.parse().expect("a valid test URL");
    config.connect_timeout(Duration::from_secs(10));
    config
        .connect(postgres::NoTls)
        .unwrap_or_else(|e| panic!("the test cluster at {url}: {e}"))
}

/// A fresh database on the test cluster, dropped on drop.
pub struct FreshDatabase {
    pub name: String,
    /// The URL the help desk is given (no TLS: the suite is about the help
    /// desk, TLS has tests of its own).
    pub url: String,
    admin: String,
}

impl FreshDatabase {
    pub fn new() -> FreshDatabase {
        let admin = cluster().expect("the PostgreSQL run has a cluster");
        let name = format!("hd_{:016x}", fastrand::u64(..));
        client(&admin)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        let base = admin
            .rsplit_once('/')
            .map(|(base, _)| base.to_string())
            .expect("a URL with a database");
        FreshDatabase {
            url: format!("{base}/{name}?sslmode=disable"),
            name,
            admin,
        }
    }

    /// One value from the database, read directly.
    pub fn sql_i64(&self, query: &str) -> i64 {
        let row = client(&self.url.replace("?sslmode=disable", ""))
            .query_one(query, &[])
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        if let Ok(v) = row.try_get::<_, i64>(0) {
            return v;
        }
        if let Ok(v) = row.try_get::<_, Option<i64>>(0) {
            return v.unwrap_or(0);
        }
        if let Ok(v) = row.try_get::<_, i32>(0) {
            return i64::from(v);
        }
        if let Ok(v) = row.try_get::<_, bool>(0) {
            return i64::from(v);
        }
        panic!("{query}: the first column is not a number")
    }
}

impl FreshDatabase {
    /// Runs statements directly.
    pub fn sql_exec(&self, sql: &str) {
        client(&self.url.replace("?sslmode=disable", ""))
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Rows of text columns (cast other columns to TEXT in the query).
    pub fn sql_texts(&self, query: &str) -> Vec<Vec<Option<String>>> {
        client(&self.url.replace("?sslmode=disable", ""))
            .query(query, &[])
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .iter()
            .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
            .collect()
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let _ = client(&self.admin).batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
