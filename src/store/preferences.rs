//! SQL for users' notification preferences: per event, how email comes
//! (`immediate`, `digest`, `off`) and whether in-app notifications are
//! written. Only choices a user made are stored; no row means the default
//! (immediate, on), which `notify::prefs` owns.

use super::Result;
use super::db::{Backend, Db};
use crate::model::{EmailMode, EventKind, UserId};

/// One stored choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub user_id: UserId,
    pub event: EventKind,
    pub email: EmailMode,
    pub app: bool,
}

/// Sets a user's choice for one event; `None` keeps what was there (or the
/// default). The caller decides the transaction.
pub fn set(
    conn: &dyn Db,
    user_id: UserId,
    event: EventKind,
    email: Option<EmailMode>,
    app: Option<bool>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO preferences (user_id, event, email, app)
         VALUES ($1, $2, COALESCE(CAST($3 AS TEXT), 'immediate'), COALESCE(CAST($4 AS BOOLEAN), TRUE))
         ON CONFLICT (user_id, event) DO UPDATE
            SET email = COALESCE(CAST($3 AS TEXT), preferences.email),
                app = COALESCE(CAST($4 AS BOOLEAN), preferences.app)",
        &[&user_id, &event, &email, &app],
    )?;
    Ok(())
}

/// A user's stored choices.
pub fn of_user(conn: &dyn Db, user_id: UserId) -> Result<Vec<Stored>> {
    conn.query(
        "SELECT user_id, event, email, app FROM preferences WHERE user_id = $1",
        &[&user_id],
        from_row,
    )
}

/// The stored choices of these users for one event: one query serves all of
/// an event's recipients (the IDs travel as one JSON array).
pub fn for_users(conn: &dyn Db, event: EventKind, user_ids: &[UserId]) -> Result<Vec<Stored>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids =
        serde_json::to_string(user_ids).map_err(|e| super::StoreError::Other(e.to_string()))?;
    let sql = match conn.backend() {
        Backend::Sqlite => {
            "SELECT user_id, event, email, app FROM preferences
              WHERE event = $1 AND user_id IN (SELECT value FROM json_each($2))"
        }
        Backend::Postgres => {
            "SELECT user_id, event, email, app FROM preferences
              WHERE event = $1 AND user_id IN
                    (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST($2 AS JSON)))"
        }
    };
    conn.query(sql, &[&event, &ids], from_row)
}

fn from_row(row: &super::db::Row<'_, '_>) -> Result<Stored> {
    Ok(Stored {
        user_id: row.parse(0)?,
        event: row.parse(1)?,
        email: row.parse(2)?,
        app: row.bool(3)?,
    })
}
