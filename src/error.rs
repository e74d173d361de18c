//! Errors as a user reads them: `error: <what failed>`, then `caused by:`
//! lines, then `hint:` when there is something to do. `Hint` rides along an
//! anyhow error so the place that knows the fix can name it.

use std::fmt;

use crate::store::StoreError;

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

/// Prints an error the way the user reads it (a stderr that cannot be
/// written loses it, but never panics).
pub fn report(err: &anyhow::Error) {
    use crate::output::print_stderr;
    print_stderr(&format!("error: {err}"));
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    if !causes.is_empty() {
        print_stderr("caused by:");
        for cause in causes {
            print_stderr(&format!("  {cause}"));
        }
    }
    for hint in err.chain().filter_map(|c| c.downcast_ref::<Hint>()) {
        print_stderr(&format!("hint: {}", hint.hint));
    }
}

/// Says what to do about the store's errors, naming the database (`database`,
/// when the caller knows which one it opened).
pub fn explain_store_error(
    err: anyhow::Error,
    database: Option<&crate::store::Database>,
) -> anyhow::Error {
    let Some(store_error) = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<StoreError>())
    else {
        return err;
    };
    let message = match database {
        Some(database) => store_error.naming(database),
        None => store_error.to_string(),
    };
    let (message, hint) = match store_error {
        StoreError::Missing { path } => (
            message,
            format!(
                "create it with `helpdesk init`, or name an existing database with `--config` or `--db` (looked for `{}`)",
                path.display()
            ),
        ),
        StoreError::NoSchema { .. } => (
            message,
            "create it with `helpdesk init`, or name an existing database with `--config` or `--db`".into(),
        ),
        StoreError::Unreachable(_) => (
            message,
            "check that the server is running and reachable, then run the command again".into(),
        ),
        StoreError::Folder { .. } => (
            message,
            "name the database file itself with `--db` or `database` in the configuration".into(),
        ),
        StoreError::Busy { .. } => (
            message,
            "run the command again; if the lock stays, look for a stuck process using the file (`fuser`)".into(),
        ),
        StoreError::ReadOnly => (
            message,
            "check the permissions of the file and of its folder (SQLite writes `-wal` and `-shm` files beside it)".into(),
        ),
        StoreError::Full => (
            message,
            "free some space and run the command again".into(),
        ),
        StoreError::Corrupt(_) => (
            format!("{message}; it was left as it is"),
            "restore it from a backup: helpdesk never repairs a database".into(),
        ),
        StoreError::Io(_) => (message, "check the disk and the file's permissions".into()),
        _ => return err,
    };
    hinted(message, hint)
}
