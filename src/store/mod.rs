//! The store: the only code that speaks SQL, on either backend: a SQLite
//! file (`sqlite.rs`) or a PostgreSQL server (`postgres/`), chosen by the
//! `database` value (`Database`). The query functions in the submodules are
//! written once, as free functions over `&dyn Db` (`db.rs`), so the same
//! function runs on either backend, inside or outside a transaction: callers
//! decide the transaction. What differs (claims, schema steps, opening) is
//! each backend's own. `Store::open` opens an existing help desk only;
//! `Store::create` is the one entry point that makes one (`init`, `demo`, a
//! copy's target). Errors come out as `StoreError` cases that callers act
//! on, in words that do not depend on the backend.

pub mod copy;
pub mod db;
pub mod digests;
pub mod events;
pub mod groups;
mod location;
mod migrations;
pub mod notifications;
pub mod postgres;
pub mod preferences;
pub mod reasons;
pub mod received;
mod sqlite;
pub mod suppressions;
pub mod threads;
pub mod tickets;
pub mod users;
pub mod watchers;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub use db::Db;
pub use location::Database;

/// How long a writer waits for another (cron and a person may write at once).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong in the store, in the cases callers act on. The wording
/// is the backend's business, so a second backend says the same things;
/// callers add the database's name and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    /// The database file is not there (only `Store::create` makes one).
    #[error("database `{}` does not exist", .path.display())]
    Missing { path: PathBuf },
    /// The server's database holds no help desk yet (only `init` makes one).
    #[error("database `{database}` holds no help desk yet")]
    NoSchema { database: String },
    /// The server cannot be reached now: worth trying again later.
    #[error("{0}")]
    Unreachable(String),
    /// The server refused us (password, TLS, no such database): a setup problem.
    #[error("{0}")]
    Server(String),
    /// The database path names a folder.
    #[error("database `{}` is a folder, not a database file", .path.display())]
    Folder { path: PathBuf },
    /// A database file another local user could read, write or swap.
    #[error("database file `{}` is not safe to use: {reason}", .path.display())]
    Untrusted { path: PathBuf, reason: String },
    #[error(
        "database `{}` was written by a newer version of helpdesk (schema version {found}, this one knows {known}); upgrade helpdesk", .path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("`{}` is not a helpdesk database ({reason}); it was left untouched", .path.display())]
    NotADatabase { path: PathBuf, reason: String },
    #[error("database `{}` could not be opened: {reason}", .path.display())]
    Open { path: PathBuf, reason: String },
    /// Another process held the lock longer than the store waits.
    #[error("the database is locked: another process held it longer than helpdesk waits ({} s)", .waited.as_secs())]
    Busy { waited: Duration },
    #[error("the database is read-only")]
    ReadOnly,
    #[error("the disk is full")]
    Full,
    /// The file is damaged; the backend's words say how.
    #[error("the database is damaged ({0})")]
    Corrupt(String),
    /// Reading or writing the file failed below the database.
    #[error("the database could not be read or written ({0})")]
    Io(String),
    /// Anything else the backend raised, in its own words.
    #[error("{0}")]
    Other(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy {
                waited: BUSY_TIMEOUT,
            },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
            Some(ErrorCode::DiskFull) => StoreError::Full,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Corrupt(sqlite::describe(&err))
            }
            Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => {
                StoreError::Io(sqlite::describe(&err))
            }
            _ => StoreError::Other(sqlite::describe(&err)),
        }
    }
}

impl From<::postgres::Error> for StoreError {
    fn from(err: ::postgres::Error) -> StoreError {
        use ::postgres::error::SqlState;
        let Some(db) = err.as_db_error() else {
            return if err.is_closed() {
                StoreError::Io("the connection to the server was lost".into())
            } else {
                StoreError::Other(err.to_string())
            };
        };
        match db.code() {
            c if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
            {
                StoreError::Busy {
                    waited: Duration::ZERO,
                }
            }
            c if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::ReadOnly,
            c if *c == SqlState::DISK_FULL => StoreError::Full,
            c if *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED => {
                StoreError::Corrupt(db.message().to_string())
            }
            _ => StoreError::Other(db.message().to_string()),
        }
    }
}

impl StoreError {
    /// The message with the database named (`database` known to the
    /// caller: the cases that carry their own path already name it).
    pub fn naming(&self, database: &dyn std::fmt::Display) -> String {
        let name = format!("database `{database}`");
        match self {
            StoreError::Full => format!("{name}: the disk is full"),
            StoreError::Busy { .. }
            | StoreError::ReadOnly
            | StoreError::Corrupt(_)
            | StoreError::Io(_) => self.to_string().replacen("the database", &name, 1),
            _ => self.to_string(),
        }
    }

    /// Whether another connection held the lock.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What reaching a database server needs beyond its URL: the environment
/// (`PGPASSWORD`, `PGPASSFILE`, `HOME`) and how long to wait for an answer.
pub struct Access<'a> {
    pub env: &'a HashMap<String, String>,
    pub timeout: Duration,
}

/// The open database, of either backend.
pub struct Store {
    inner: Inner,
}

enum Inner {
    Sqlite(sqlite::SqliteStore),
    Postgres(Box<postgres::PgStore>),
}

impl Store {
    /// Opens an existing help desk and brings its schema up to date. A
    /// missing SQLite file is `Missing`, a server database without the
    /// schema `NoSchema`: nothing is created.
    pub fn open(database: &Database, access: &Access<'_>) -> Result<Store> {
        Store::connect(database, access, false)
    }

    /// Opens the help desk, making it when it is not there: a SQLite file
    /// (0600, with its folder), or the schema in an existing, empty
    /// PostgreSQL database. For `init`, `demo` and a copy's target.
    pub fn create(database: &Database, access: &Access<'_>) -> Result<Store> {
        Store::connect(database, access, true)
    }

    fn connect(database: &Database, access: &Access<'_>, create: bool) -> Result<Store> {
        let inner = match database {
            Database::File(path) if create => Inner::Sqlite(sqlite::SqliteStore::create(path)?),
            Database::File(path) => Inner::Sqlite(sqlite::SqliteStore::open(path)?),
            Database::Server(url) => {
                Inner::Postgres(Box::new(postgres::PgStore::open(url, access, create)?))
            }
        };
        Ok(Store { inner })
    }

    /// An in-memory SQLite database with the whole schema, for unit tests.
    #[cfg(test)]
    pub fn open_in_memory() -> Store {
        Store {
            inner: Inner::Sqlite(sqlite::SqliteStore::open_in_memory()),
        }
    }

    /// The SQLite connection itself, for unit tests that look under the store.
    #[cfg(test)]
    pub fn sqlite(&self) -> &rusqlite::Connection {
        match &self.inner {
            Inner::Sqlite(store) => store.conn(),
            Inner::Postgres(_) => panic!("a SQLite store was expected"),
        }
    }

    /// The connection, outside any transaction (each statement commits).
    pub fn conn(&self) -> &dyn Db {
        match &self.inner {
            Inner::Sqlite(store) => store.conn(),
            Inner::Postgres(store) => store.conn(),
        }
    }

    /// Runs `work` in one transaction that takes the write lock at its start
    /// (SQLite's IMMEDIATE; PostgreSQL's row locks as the work goes), commits
    /// when `work` returns Ok and rolls back otherwise. On PostgreSQL a
    /// deadlock or serialization failure runs `work` again, a few times.
    pub fn in_tx<T, E>(&mut self, work: impl FnMut(&dyn Db) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        match &mut self.inner {
            Inner::Sqlite(store) => store.in_tx(work),
            Inner::Postgres(store) => store.in_tx(work),
        }
    }

    /// For the flush: outcomes are committed without waiting for the disk,
    /// so a crash may roll back the last ones (making them due again, never
    /// lost): SQLite's `synchronous = NORMAL`, PostgreSQL's
    /// `synchronous_commit = off`.
    pub fn relax_durability(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Sqlite(store) => store.relax_durability(),
            Inner::Postgres(store) => store.relax_durability(),
        }
    }
}

pub use crate::clock::now_ms;
