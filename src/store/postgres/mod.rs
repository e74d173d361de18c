//! The PostgreSQL backend (SPEC §8): reaching the server (`connect`) and its
//! schema steps (`migrate`).

pub mod connect;
pub mod migrate;

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
