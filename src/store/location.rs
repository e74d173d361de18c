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
}
