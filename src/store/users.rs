//! SQL for users and their direct permissions, and the two questions the
//! fan-out asks: which active users have these addresses, and which active
//! users hold a permission (directly or through any group).

use super::db::{Backend, Db, Row};
use super::{Result, StoreError};
use crate::model::UserId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub created_at: i64,
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
}

/// The columns `from_row` reads, in its order.
macro_rules! columns {
    () => {
        "id, username, email, name, active, created_at"
    };
}

/// Reads a user from the first six columns (`columns!()`'s order).
pub(super) fn from_row(row: &Row<'_, '_>) -> Result<User> {
    Ok(User {
        id: row.parse(0)?,
        username: row.text(1)?,
        email: row.text(2)?,
        name: row.text(3)?,
        active: row.bool(4)?,
        created_at: row.int(5)?,
    })
}

/// Inserts a user created at `now`; `Conflict` when the username or the
/// address is taken.
pub fn insert(conn: &dyn Db, new: &NewUser<'_>, now: i64) -> Result<User> {
    if let Some(other) = by_username(conn, new.username)? {
        return Err(StoreError::Conflict(format!(
            "a user named `{}` already exists",
            other.username
        )));
    }
    if let Some(other) = by_email(conn, new.email)? {
        return Err(StoreError::Conflict(format!(
            "the address `{}` already belongs to user `{}`",
            new.email, other.username
        )));
    }
    let id = conn.query_one(
        "INSERT INTO users (username, email, name, active, created_at)
         VALUES ($1, $2, $3, TRUE, $4) RETURNING id",
        &[&new.username, &new.email, &new.name, &now],
        |row| row.parse(0),
    )?;
    Ok(User {
        id,
        username: new.username.to_string(),
        email: new.email.to_string(),
        name: new.name.to_string(),
        active: true,
        created_at: now,
    })
}

/// The user with this username, active or not.
pub fn by_username(conn: &dyn Db, username: &str) -> Result<Option<User>> {
    conn.query_opt(
        concat!("SELECT ", columns!(), " FROM users WHERE username = $1"),
        &[&username],
        from_row,
    )
}

/// The user with this address (case-insensitive), active or not.
pub fn by_email(conn: &dyn Db, email: &str) -> Result<Option<User>> {
    // Each backend's case-insensitive match, as its index on the address has it.
    let sql = match conn.backend() {
        Backend::Sqlite => concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE email = $1 COLLATE NOCASE"
        ),
        Backend::Postgres => concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE lower(email) = lower($1)"
        ),
    };
    conn.query_opt(sql, &[&email], from_row)
}

/// The users with these addresses (case-insensitive), active or not, in one
/// statement (the addresses travel as one JSON array).
pub fn by_emails(conn: &dyn Db, emails: &[&str]) -> Result<Vec<User>> {
    if emails.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(emails).map_err(|e| StoreError::Other(e.to_string()))?;
    let sql = match conn.backend() {
        Backend::Sqlite => concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE email COLLATE NOCASE IN (SELECT value FROM json_each($1))"
        ),
        Backend::Postgres => concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE lower(email) IN
                (SELECT lower(value) FROM json_array_elements_text(CAST($1 AS JSON)))"
        ),
    };
    conn.query(sql, &[&list], from_row)
}

pub fn by_id(conn: &dyn Db, id: UserId) -> Result<Option<User>> {
    conn.query_opt(
        concat!("SELECT ", columns!(), " FROM users WHERE id = $1"),
        &[&id],
        from_row,
    )
}

/// Every user, by username.
pub fn all(conn: &dyn Db) -> Result<Vec<User>> {
    conn.query(
        concat!("SELECT ", columns!(), " FROM users ORDER BY username"),
        &[],
        from_row,
    )
}

/// Sets a user's active flag; false when it was already so.
pub fn set_active(conn: &dyn Db, id: UserId, active: bool) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE users SET active = $2 WHERE id = $1 AND active <> $2",
        &[&id, &active],
    )?;
    Ok(changed > 0)
}

/// Grants a permission directly; false when the user already had it.
pub fn grant(conn: &dyn Db, user_id: UserId, permission: &str) -> Result<bool> {
    let changed = conn.execute(
        "INSERT INTO user_permissions (permission, user_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
        &[&permission, &user_id],
    )?;
    Ok(changed > 0)
}

/// Revokes a direct permission; false when the user did not have it directly.
pub fn revoke(conn: &dyn Db, user_id: UserId, permission: &str) -> Result<bool> {
    let changed = conn.execute(
        "DELETE FROM user_permissions WHERE permission = $1 AND user_id = $2",
        &[&permission, &user_id],
    )?;
    Ok(changed > 0)
}

/// A user's direct permissions, sorted.
pub fn direct_permissions(conn: &dyn Db, user_id: UserId) -> Result<Vec<String>> {
    conn.query(
        "SELECT permission FROM user_permissions WHERE user_id = $1 ORDER BY permission",
        &[&user_id],
        |row| row.text(0),
    )
}

/// The active users holding `permission` directly or through any of their
/// groups, each once, by id.
pub fn active_with_permission(conn: &dyn Db, permission: &str) -> Result<Vec<User>> {
    conn.query(
        concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE active AND id IN (
                 SELECT user_id FROM user_permissions WHERE permission = $1
                 UNION
                 SELECT m.user_id FROM group_permissions p
                   JOIN group_members m ON m.group_id = p.group_id
                  WHERE p.permission = $1)
             ORDER BY id"
        ),
        &[&permission],
        from_row,
    )
}
