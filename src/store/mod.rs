//! The store: the only code that speaks SQL. `Store` owns the SQLite
//! connection; the query functions in the submodules are free functions over
//! `&Connection`, so the same function runs inside or outside a transaction
//! (a `Transaction` derefs to `Connection`). Callers decide the transaction.

pub mod events;
pub mod groups;
mod migrations;
pub mod notifications;
// The PostgreSQL backend grows here; until the store is wired to it, only its tests use it.
#[cfg_attr(not(test), allow(dead_code))]
pub mod postgres;
pub mod tickets;
pub mod users;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

pub use rusqlite::Connection as Conn;

/// How long a writer waits for another (cron and a person may write at once).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error(
        "database `{path}` was written by a newer version of helpdesk (schema version {found}, this one knows {known}); upgrade helpdesk"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("`{path}` is not a helpdesk database ({reason}); it was left untouched")]
    NotADatabase { path: PathBuf, reason: String },
    #[error("database `{path}` could not be opened: {reason}")]
    Open { path: PathBuf, reason: String },
    /// SQLite's own words; not a `source`, so a report does not say it twice.
    #[error("{}", describe(.0))]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(err)
    }
}

impl StoreError {
    /// Whether SQLite refused because another connection held the lock.
    pub fn is_busy(&self) -> bool {
        matches!(
            self.sqlite_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }

    /// SQLite's error code, when SQLite raised this.
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            StoreError::Sqlite(err) => err.sqlite_error_code(),
            _ => None,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens the database at `path`, creating it (mode 0600) and its folder
    /// when missing, and runs the pending migrations in one transaction.
    pub fn open(path: &Path) -> Result<Store> {
        let open_error = |reason: String| StoreError::Open {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            create_private_file(path).map_err(|e| open_error(e.to_string()))?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| open_error(describe(&e)))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store
            .conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| store.classify(e))?;
        // SQLite answers "busy" at once, without waiting, when two connections
        // would deadlock (both reading, both wanting to write), as commands
        // creating the same new database do: try again until the busy timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match store.prepare() {
                Err(e) if e.is_busy() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5 + fastrand::u64(0..20)));
                }
                result => return result.map(|()| store),
            }
        }
    }

    /// Migrates, then sets the connection up. What the file is gets checked
    /// before anything in it changes (WAL mode rewrites the header), so
    /// someone else's database is left as it was.
    fn prepare(&mut self) -> Result<()> {
        self.migrate()?;
        self.configure().map_err(|e| self.classify(e))
    }

    /// An in-memory database with the whole schema, for unit tests.
    #[cfg(test)]
    pub fn open_in_memory() -> Store {
        let conn = Connection::open_in_memory().expect("in-memory SQLite always opens");
        let mut store = Store {
            conn,
            path: PathBuf::from(":memory:"),
        };
        store
            .migrate()
            .expect("migrations apply to an empty database");
        store
            .configure()
            .expect("pragmas apply to an in-memory database");
        store
    }

    /// For this connection, commits reach the operating system but are not
    /// flushed to the disk one by one (`synchronous = NORMAL` in WAL mode).
    /// A killed process loses nothing committed; a power cut may lose the
    /// last commits. The flush records outcomes this way: after a power cut
    /// an email whose outcome was lost is due again and resent, never lost.
    pub fn relax_durability(&mut self) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(())
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `work` in one IMMEDIATE transaction: it takes the write lock at
    /// the start (waiting up to the busy timeout), so concurrent writers queue
    /// instead of failing with "database is locked" on a lock upgrade. Commits
    /// when `work` returns Ok, rolls back otherwise.
    pub fn in_tx<T, E>(&mut self, work: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let value = work(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    fn configure(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets readers (inbox) run while a flush writes; FULL makes every
        // recorded delivery survive a power cut, so a sent mail is not resent.
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        let migrations = migrations::all();
        let known = migrations::count();
        let found = self.user_version()?;
        if found > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        if found == known {
            return Ok(());
        }
        if found == 0 {
            // One statement, one snapshot: another command may be creating
            // this database right now.
            let (tables, version): (i64, i64) = self
                .conn
                .query_row(
                    "SELECT (SELECT count(*) FROM sqlite_schema), (SELECT user_version FROM pragma_user_version)",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(|e| self.classify(e))?;
            if version == known {
                return Ok(());
            }
            if tables > 0 {
                return Err(StoreError::NotADatabase {
                    path: self.path.clone(),
                    reason: "it is a SQLite database of another program".into(),
                });
            }
        }
        match migrations.to_latest(&mut self.conn) {
            Ok(()) => Ok(()),
            // Two commands creating the same new database at once: one of them
            // migrates, the other's attempt fails and finds the work done.
            Err(_) if self.user_version()? == known => Ok(()),
            Err(rusqlite_migration::Error::RusqliteError { err, .. }) => Err(self.classify(err)),
            Err(other) => Err(StoreError::Open {
                path: self.path.clone(),
                reason: other.to_string(),
            }),
        }
    }

    fn user_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| self.classify(e))
    }

    /// Turns SQLite's "not a database" into a message naming the file.
    fn classify(&self, err: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                StoreError::NotADatabase {
                    path: self.path.clone(),
                    reason: describe(&err),
                }
            }
            Some(ErrorCode::CannotOpen) => StoreError::Open {
                path: self.path.clone(),
                reason: format!(
                    "{}; SQLite creates `-wal` and `-shm` files beside the database, so its folder must be writable: check the folder's permissions",
                    describe(&err)
                ),
            },
            Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) => StoreError::Open {
                path: self.path.clone(),
                reason: describe(&err),
            },
            _ => StoreError::Sqlite(err),
        }
    }
}

/// SQLite's own words for an error, without Rust's debug formatting.
fn describe(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Another process created it between our check and now: theirs stands.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .open(path)
        .map(|_| ())
}

pub use crate::clock::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.db");
        std::fs::write(
            &path,
            "just some text, not a database at all, long enough to look like a header",
        )
        .unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).err().expect("must be refused");
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hd.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(&path).err().expect("must be refused");
        assert!(
            err.to_string().contains("newer version of helpdesk"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/hd.db");
        drop(Store::open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
