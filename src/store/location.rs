//! Where the help desk keeps its data: a SQLite file on this host, or a
//! PostgreSQL server (SPEC §8), told apart by the `database` value itself.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A SQLite file, or a PostgreSQL server named by its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    File(PathBuf),
    /// `postgresql://…` or `postgres://…`; never holds a password (refused
    /// when the server is reached).
    Server(String),
}

impl Database {
    /// The `database` value as written: a URL names a server; anything else
    /// is a file, relative to `base`.
    pub fn from_text(text: &Path, base: &Path) -> Database {
        match text.to_str() {
            Some(url) if super::postgres::connect::is_url(url) => Database::Server(url.to_string()),
            _ => Database::File(base.join(text)),
        }
    }

    /// The file, for a SQLite database.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Database::File(path) => Some(path),
            Database::Server(_) => None,
        }
    }

    /// Whether this is a SQLite file that is not there yet: one a command
    /// creates, and removes again (`remove_new_file`) when it then fails.
    pub fn is_new_file(&self) -> bool {
        self.file().is_some_and(|file| !file.exists())
    }

    /// Removes the SQLite file a failed command created, with its `-wal`
    /// and `-shm`, so nothing is left behind (nothing for a server).
    pub fn remove_new_file(&self) {
        let Some(file) = self.file() else {
            return;
        };
        for suffix in ["", "-wal", "-shm"] {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(name));
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::File(path) => write!(f, "{}", path.display()),
            Database::Server(url) => f.write_str(url),
        }
    }
}

impl Serialize for Database {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_servers_and_the_rest_files() {
        let base = Path::new("/etc/helpdesk");
        assert_eq!(
            Database::from_text(Path::new("postgresql://hd@db/helpdesk"), base),
            Database::Server("postgresql://hd@db/helpdesk".into())
        );
        assert_eq!(
            Database::from_text(Path::new("postgres://db"), base).to_string(),
            "postgres://db"
        );
        assert_eq!(
            Database::from_text(Path::new("data/hd.db"), base),
            Database::File(PathBuf::from("/etc/helpdesk/data/hd.db"))
        );
    }

    #[test]
    fn a_new_file_is_removed_with_its_wal_and_shm_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::File(dir.path().join("hd.db"));
        assert!(db.is_new_file());
        for name in ["hd.db", "hd.db-wal", "hd.db-shm", "hd.dbx"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        assert!(!db.is_new_file());
        db.remove_new_file();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["hd.dbx"]);
        let server = Database::Server("postgresql://db/hd".into());
        assert!(!server.is_new_file());
        server.remove_new_file();
    }
}
