//! The test harness: a `Sandbox` is a temporary folder with a helpdesk.toml,
//! its own database (a SQLite file, or on the PostgreSQL run a fresh database
//! on the test cluster: `pg`) and a real SMTP server on 127.0.0.1; `run`
//! drives the real binary there with a clean environment.
#![allow(dead_code)]

pub mod certs;
pub mod pg;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
pub use smtp::{ServerOptions, SmtpServer};

/// The configuration most tests start from; `{port}` is the SMTP server's.
pub const BASE_CONFIG: &str = r#"database = "helpdesk.db"
admins = [["Dev One", "dev@example.org"], ["Dev Two", "DEV2@Example.org"]]
default_from_email = "Helpdesk <helpdesk@example.org>"

[email.smtp]
host = "127.0.0.1"
port = {port}
timeout_secs = 5
"#;

/// For a test about SQLite's own files (its path, modes, locks, damage):
/// true, with a note, on the PostgreSQL run, where the test stops at once;
/// the SQLite run of the same suite covers it.
pub fn sqlite_only() -> bool {
    let postgres = pg::on_postgres();
    if postgres {
        eprintln!("about SQLite's files: covered by the SQLite run of the suite");
    }
    postgres
}

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub smtp: SmtpServer,
    /// On the PostgreSQL run: this sandbox's database.
    pub pg: Option<pg::FreshDatabase>,
}

impl Sandbox {
    /// A sandbox with `BASE_CONFIG` and an SMTP server that accepts everything.
    pub fn new() -> Sandbox {
        Sandbox::with(ServerOptions::default(), BASE_CONFIG)
    }

    /// A sandbox with this server and configuration (`{port}` and `{dir}` are
    /// filled in), and its database created by `helpdesk init` (when the
    /// configuration is valid: a test of a broken one gets no database).
    pub fn with(options: ServerOptions, config: &str) -> Sandbox {
        let sb = Sandbox::without_database(options, config);
        sb.run(["init"]);
        sb
    }

    /// A sandbox with this server and configuration, and no database yet.
    pub fn without_database(options: ServerOptions, config: &str) -> Sandbox {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let smtp = SmtpServer::start_with(options);
        let pg = pg::on_postgres().then(pg::FreshDatabase::new);
        let sb = Sandbox { dir, smtp, pg };
        sb.write_config(config);
        sb
    }

    /// `Sandbox::new` without the database.
    pub fn empty() -> Sandbox {
        Sandbox::without_database(ServerOptions::default(), BASE_CONFIG)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn db(&self) -> PathBuf {
        self.path("helpdesk.db")
    }

    /// Rewrites helpdesk.toml (placeholders filled in).
    pub fn write_config(&self, config: &str) {
        let mut text = config
            .replace("{port}", &self.smtp.port().to_string())
            .replace("{dir}", &self.dir.path().display().to_string());
        if let Some(pg) = &self.pg {
            text = text.replace(
                "database = \"helpdesk.db\"",
                &format!("database = \"{}\"", pg.url),
            );
        }
        std::fs::write(self.path("helpdesk.toml"), text).expect("write helpdesk.toml");
    }

    /// The binary, in the sandbox folder, with no HELPDESK_* from the caller.
    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_helpdesk"));
        cmd.current_dir(self.dir.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("HELPDESK_") || key == "XDG_CONFIG_HOME" {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", self.dir.path());
        cmd.stdin(std::process::Stdio::null());
        cmd
    }

    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        Run::from(cmd.output().expect("the helpdesk binary runs"))
    }

    pub fn run_env<I, S>(&self, args: I, env: &[(&str, &str)]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command();
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("the helpdesk binary runs"))
    }

    /// Runs with `input` on standard input.
    pub fn run_stdin<I, S>(&self, args: I, input: &[u8]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        use std::io::Write;
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("the helpdesk binary runs");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let output = child
            .wait_with_output()
            .expect("the helpdesk binary finishes");
        let _ = writer.join();
        Run::from(output)
    }

    /// Adds a user (asserting success).
    pub fn user(&self, username: &str, email: &str) {
        self.run(["user", "add", username, "--email", email])
            .success();
    }

    /// Adds a manager: a user in a group holding delete_helpdeskticket.
    pub fn manager(&self, username: &str, email: &str) {
        self.user(username, email);
        let _ = self.run([
            "group",
            "add",
            "managers",
            "--perm",
            "delete_helpdeskticket",
        ]);
        self.run(["group", "add-user", "managers", username])
            .success();
    }

    /// Creates a ticket and returns its JSON.
    pub fn ticket(&self, by: &str, priority: &str, description: &str) -> Value {
        self.run([
            "ticket",
            "create",
            "--created-by",
            by,
            "--purpose",
            "app",
            "--priority",
            priority,
            "--description",
            description,
            "--format",
            "json",
        ])
        .success()
        .json()
    }

    /// One value from the database, read directly (for "nothing was written" checks).
    pub fn sql_i64(&self, query: &str) -> i64 {
        if let Some(pg) = &self.pg {
            return pg.sql_i64(query);
        }
        let conn = rusqlite::Connection::open(self.db()).expect("open the test database");
        conn.query_row(query, [], |row| row.get(0))
            .expect("query the test database")
    }

    /// Waits (bounded) until a running flush with leases of `lease_secs` has
    /// renewed the lease on every email it holds at least half a lease after
    /// taking it, and returns a `HELPDESK_NOW` value that puts another
    /// command's clock a tenth of a second past the lease the flush first took
    /// (real time only adds to that), so only the renewals can keep that
    /// command from taking the email over. Waiting for half a lease leaves the
    /// command half a lease, less the renewal period of a third, to start. The
    /// wait is for a state of the database, not for an amount of time.
    pub fn past_the_first_lease(&self, lease_secs: i64) -> String {
        let oldest = "SELECT COALESCE(MIN(lease_until), 0) FROM notifications \
                      WHERE status = 'processing'";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut first = 0;
        loop {
            let lease = self.sql_i64(oldest);
            if first == 0 {
                first = lease;
            } else if lease >= first + lease_secs * 500 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no flush renewed its lease within 20 s (first lease {first}, now {lease})"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let real_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is past 1970")
            .as_millis() as i64;
        let ahead = first + 100 - real_now;
        assert!(
            ahead > 0,
            "the first lease {first} already ended at {real_now}"
        );
        format!("+{ahead}ms")
    }

    /// Runs statements directly on the database, as an operator would.
    pub fn sql_exec(&self, sql: &str) {
        if let Some(pg) = &self.pg {
            return pg.sql_exec(sql);
        }
        rusqlite::Connection::open(self.db())
            .and_then(|conn| conn.execute_batch(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Rows of text columns, read directly (cast other columns to TEXT).
    pub fn sql_texts(&self, query: &str) -> Vec<Vec<Option<String>>> {
        if let Some(pg) = &self.pg {
            return pg.sql_texts(query);
        }
        let conn = rusqlite::Connection::open(self.db()).expect("open the test database");
        let mut stmt = conn
            .prepare(query)
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let columns = stmt.column_count();
        stmt.query_map([], |row| (0..columns).map(|i| row.get(i)).collect())
            .and_then(|rows| rows.collect())
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    /// Whether this sandbox's help desk is on PostgreSQL (the PostgreSQL run
    /// of the suite). A test about SQLite's files says so and stops there:
    /// the SQLite run covers it.
    pub fn on_postgres(&self) -> bool {
        self.pg.is_some()
    }

    pub fn exists(&self, name: &str) -> bool {
        Path::new(&self.path(name)).exists()
    }
}

/// A finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn success(self) -> Run {
        self.code(0)
    }

    #[track_caller]
    pub fn code(self, expected: i32) -> Run {
        assert_eq!(
            self.code, expected,
            "exit status {} (expected {expected})\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// Asserts stderr is exactly this (after trimming the final newline).
    #[track_caller]
    pub fn stderr_is(self, expected: &str) -> Run {
        assert_eq!(
            self.stderr.trim_end(),
            expected.trim_end(),
            "stderr differs"
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_is_empty(self) -> Run {
        assert!(
            self.stdout.is_empty(),
            "stdout is not empty:\n{}",
            self.stdout
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }
}
