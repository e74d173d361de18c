//! Errors as a user reads them: `error: <what failed>`, then `caused by:`
//! lines, then `hint:` when there is something to do. `Hint` rides along an
//! anyhow error so the place that knows the fix can name it.

use std::fmt;

/// An error message with the fix attached.
#[derive(Debug)]
pub struct Hint {
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hint {}

/// Shorthand for an error with a hint.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hint {
        message: message.into(),
        hint: hint.into(),
    }
    .into()
}

/// Prints an error the way the user reads it.
pub fn report(err: &anyhow::Error) {
    eprintln!("error: {err}");
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    if !causes.is_empty() {
        eprintln!("caused by:");
        for cause in causes {
            eprintln!("  {cause}");
        }
    }
    for hint in err.chain().filter_map(|c| c.downcast_ref::<Hint>()) {
        eprintln!("hint: {}", hint.hint);
    }
}

/// Says what to do about the store's errors, naming the database (`database`
/// is the open one, when a command ran on it).
pub fn explain_store_error(
    err: anyhow::Error,
    database: Option<&std::path::Path>,
) -> anyhow::Error {
    use crate::store::StoreError;
    let Some(store_error) = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<StoreError>())
    else {
        return err;
    };
    let named = |what: &str| match database {
        Some(path) => format!(
            "{}{}",
            store_error.naming(path),
            what.strip_prefix(&store_error.to_string()).unwrap_or("")
        ),
        None => what.to_string(),
    };
    let (message, hint) = match store_error {
        StoreError::Missing { path } => (
            store_error.to_string(),
            format!(
                "create it with `helpdesk init`, or name an existing database with `--config` or `--db` (looked for `{}`)",
                path.display()
            ),
        ),
        StoreError::Folder { .. } => (
            store_error.to_string(),
            "name the database file itself with `--db` or `database` in the configuration".into(),
        ),
        StoreError::Busy { .. } => (
            named(&store_error.to_string()),
            "run the command again; if the lock stays, look for a stuck process using the file (`fuser`)".into(),
        ),
        StoreError::ReadOnly => (
            named(&store_error.to_string()),
            "check the permissions of the file and of its folder (SQLite writes `-wal` and `-shm` files beside it)".into(),
        ),
        StoreError::Full => (
            named(&store_error.to_string()),
            "free some space and run the command again".into(),
        ),
        StoreError::Corrupt(_) => (
            named(&format!("{store_error}; it was left as it is")),
            "restore it from a backup: helpdesk never repairs a database".into(),
        ),
        StoreError::Io(_) => (
            named(&store_error.to_string()),
            "check the disk and the file's permissions".into(),
        ),
        _ => return err,
    };
    crate::error::hinted(message, hint)
}
