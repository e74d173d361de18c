//! The SQLite backend: one file on this host, opened (or, by `create`,
//! made) with its `-wal` and `-shm` files checked, migrated in one
//! transaction, in WAL mode with a busy timeout. Its queries are the store's
//! shared ones (`db.rs`); what is SQLite's alone lives here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::db::Db;
use super::{BUSY_TIMEOUT, Result, StoreError, migrations};

/// Prepared statements kept per connection.
const STATEMENTS_KEPT: usize = 128;

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens the existing database at `path` and runs the pending migrations
    /// in one transaction. A missing file is `Missing`: nothing is created
    /// (no file, no folder). Files another local user could read, write or
    /// swap are `Untrusted`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing {
                    path: path.to_path_buf(),
                });
            }
            // A dangling symlink reads as missing too: there is no database.
            Ok(meta) if meta.file_type().is_symlink() && !path.exists() => {
                return Err(StoreError::Missing {
                    path: path.to_path_buf(),
                });
            }
            _ => {}
        }
        SqliteStore::open_existing(path)
    }

    /// Opens the database at `path`, creating it (mode 0600) and its folder
    /// when missing: the entry point of the commands that make a database
    /// (`init`, `demo`). An existing database is opened as by `open`.
    pub fn create(path: &Path) -> Result<SqliteStore> {
        if let Ok(meta) = std::fs::symlink_metadata(path)
            && meta.file_type().is_symlink()
            && !path.exists()
        {
            return Err(StoreError::Open {
                path: path.to_path_buf(),
                reason: "it is a symbolic link to a file that does not exist; remove the link or point it at a database".into(),
            });
        }
        if path.exists() {
            return SqliteStore::open_existing(path);
        }
        if path.is_dir() {
            return Err(StoreError::Folder {
                path: path.to_path_buf(),
            });
        }
        // Another user's `-wal` or `-shm` waiting beside it is refused first.
        check_files(path)?;
        let created = create_private_file(path).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            reason: io_words(&e),
        })?;
        SqliteStore::open_existing(path).inspect_err(|_| {
            if created {
                // What could not become a database is not left behind.
                let _ = std::fs::remove_file(path);
            }
        })
    }

    fn open_existing(path: &Path) -> Result<SqliteStore> {
        let open_error = |reason: String| StoreError::Open {
            path: path.to_path_buf(),
            reason,
        };
        if path.is_dir() {
            return Err(StoreError::Folder {
                path: path.to_path_buf(),
            });
        }
        check_files(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| open_error(describe(&e)))?;
        // Room for every statement a long run repeats: with rusqlite's
        // default of 16, `mail receive --maildir`'s pushed each other out,
        // and preparing them again took a third of its instructions.
        conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
        let mut store = SqliteStore {
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
                result => {
                    result?;
                    // SQLite made `-wal` and `-shm` now if they were not there.
                    check_files(path)?;
                    return Ok(store);
                }
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
    pub fn open_in_memory() -> SqliteStore {
        let conn = Connection::open_in_memory().expect("in-memory SQLite always opens");
        let mut store = SqliteStore {
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
    pub fn in_tx<T, E>(&mut self, mut work: impl FnMut(&dyn Db) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        // BEGIN and COMMIT are kept prepared, like the statements between
        // them (a flush runs one transaction per message).
        self.conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut begin| begin.execute([]))
            .map_err(StoreError::from)?;
        // Rolls back unless committed: on an error, or a panic in `work`.
        struct Open<'c>(&'c Connection);
        impl Drop for Open<'_> {
            fn drop(&mut self) {
                if !self.0.is_autocommit() {
                    let _ = self.0.execute_batch("ROLLBACK");
                }
            }
        }
        let open = Open(&self.conn);
        let value = work(open.0)?;
        open.0
            .prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]))
            .map_err(StoreError::from)?;
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

    /// Turns SQLite's errors while opening into messages naming the file.
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
            _ => StoreError::from(err),
        }
    }
}

/// Refuses the database and its `-wal` and `-shm` files when another local
/// user could read, write or swap them (SPEC §4).
fn check_files(path: &Path) -> Result<()> {
    let mut names = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        names.push(PathBuf::from(name));
    }
    for name in names {
        if let Some(reason) = crate::trust::check(&name, crate::trust::Use::Private) {
            return Err(StoreError::Untrusted { path: name, reason });
        }
    }
    Ok(())
}

/// The operating system's words for an I/O error, without `(os error N)`.
fn io_words(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text,
    }
}

/// SQLite's own words for an error, without Rust's debug formatting.
pub(super) fn describe(err: &rusqlite::Error) -> String {
    match err {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        // SQLite's text for the code, as a phrase: not "Error code 11: …".
        rusqlite::Error::SqliteFailure(e, None) => {
            let text = rusqlite::ffi::code_to_str(e.extended_code);
            let mut chars = text.chars();
            chars
                .next()
                .map(|first| first.to_lowercase().chain(chars).collect())
                .unwrap_or_default()
        }
        other => other.to_string(),
    }
}

/// Creates an empty file readable by its owner only; false when another
/// process created it first.
#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<bool> {
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
        Ok(_) => Ok(true),
        // Another process created it between our check and now: theirs stands.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<bool> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .open(path)
        .map(|_| true)
}

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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = SqliteStore::open(&path).err().expect("must be refused");
        assert!(matches!(err, StoreError::NotADatabase { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hd.db");
        drop(SqliteStore::create(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).err().expect("must be refused");
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
        drop(SqliteStore::create(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn open_creates_nothing_and_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/hd.db");
        let err = SqliteStore::open(&path).err().expect("must be refused");
        assert_eq!(
            err.to_string(),
            format!("database `{}` does not exist", path.display())
        );
        assert!(!dir.path().join("sub").exists(), "a folder was created");
    }

    #[test]
    fn a_folder_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        for open in [SqliteStore::open, SqliteStore::create] {
            let err = open(dir.path()).err().expect("must be refused");
            assert!(matches!(err, StoreError::Folder { .. }), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn database_files_others_could_read_or_swap_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hd.db");
        drop(SqliteStore::create(&path).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = SqliteStore::open(&path).err().expect("must be refused");
        assert_eq!(
            err.to_string(),
            format!(
                "database file `{0}` is not safe to use: other users can read or write it (mode 644): run `chmod 600 {0}`",
                path.display()
            )
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::hard_link(&path, dir.path().join("copy.db")).unwrap();
        let err = SqliteStore::open(&path).err().expect("must be refused");
        assert!(err.to_string().contains("it has 2 hard links"), "{err}");
    }

    #[test]
    fn sqlite_errors_become_the_cases_callers_act_on() {
        let sqlite = |code: i32| {
            StoreError::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        let db = Path::new("/srv/hd.db");
        let cases = [
            (
                sqlite(rusqlite::ffi::SQLITE_BUSY),
                "database `/srv/hd.db` is locked: another process held it longer than helpdesk waits (30 s)",
            ),
            (
                sqlite(rusqlite::ffi::SQLITE_LOCKED),
                "database `/srv/hd.db` is locked: another process held it longer than helpdesk waits (30 s)",
            ),
            (
                sqlite(rusqlite::ffi::SQLITE_READONLY),
                "database `/srv/hd.db` is read-only",
            ),
            (
                sqlite(rusqlite::ffi::SQLITE_FULL),
                "database `/srv/hd.db`: the disk is full",
            ),
            (
                sqlite(rusqlite::ffi::SQLITE_CORRUPT),
                "database `/srv/hd.db` is damaged (the database disk image is malformed)",
            ),
            (
                sqlite(rusqlite::ffi::SQLITE_IOERR),
                "database `/srv/hd.db` could not be read or written (some kind of disk I/O error occurred)",
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(err.naming(&db.display()), expected);
        }
        assert!(sqlite(rusqlite::ffi::SQLITE_BUSY).is_busy());
        assert!(!sqlite(rusqlite::ffi::SQLITE_FULL).is_busy());
    }

    /// A statement whose undo record outgrows memory inside a transaction
    /// moves it to a temporary file in one write of everything kept so
    /// far; SQLite's Unix file layer writes less than 128 KiB a call (it
    /// masks the size) and reports a larger write as a full disk. The limit
    /// in memory (`SQLITE_STMTJRNL_SPILL`, `.cargo/config.toml`) must stay
    /// under it: at 1 MiB, a `ticket create` that filed the inbox failed.
    #[test]
    fn a_large_statement_undo_record_moves_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hd.db");
        let mut store = SqliteStore::create(&path).unwrap();
        store
            .conn
            .execute_batch(
                "CREATE TABLE big (id INTEGER PRIMARY KEY, body TEXT NOT NULL CHECK (body <> ''));
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                 INSERT INTO big (id, body) SELECT i, printf('%.1000c', 'a') FROM n;",
            )
            .unwrap();
        // Inside a transaction, one statement changing 2,000 rows (about 500
        // pages, 2 MiB of undo record) that could fail half-way (the CHECK).
        let changed = store
            .in_tx(|tx| {
                tx.execute("UPDATE big SET body = 'x' WHERE id = 1", &[])?;
                tx.execute("UPDATE big SET body = body || 'b'", &[])
            })
            .unwrap();
        assert_eq!(changed, 2000);
    }

    /// The options `.cargo/config.toml` gives the bundled SQLite took
    /// effect: a LIBSQLITE3_FLAGS set in the environment replaces them.
    #[test]
    fn sqlite_is_built_with_our_options() {
        let conn = Connection::open_in_memory().unwrap();
        let mut statement = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for wanted in ["STMTJRNL_SPILL=122880", "DEFAULT_MEMSTATUS=0"] {
            assert!(options.iter().any(|o| o == wanted), "{wanted}: {options:?}");
        }
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
    }
}
