//! SQL for users and their direct permissions, and the two questions the
//! fan-out asks: which active users have these addresses, and which active
//! users hold a permission (directly or through any group).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
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

const COLUMNS: &str = "id, username, email, name, active, created_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        email: row.get(2)?,
        name: row.get(3)?,
        active: row.get(4)?,
        created_at: row.get(5)?,
    })
}

/// Inserts a user created at `now`; `Conflict` when the username or the
/// address is taken.
pub fn insert(conn: &Connection, new: &NewUser<'_>, now: i64) -> Result<User> {
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
    conn.prepare_cached(
        "INSERT INTO users (username, email, name, active, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
    )?
    .execute(params![new.username, new.email, new.name, now])?;
    Ok(User {
        id: conn.last_insert_rowid(),
        username: new.username.to_string(),
        email: new.email.to_string(),
        name: new.name.to_string(),
        active: true,
        created_at: now,
    })
}

/// The user with this username, active or not.
pub fn by_username(conn: &Connection, username: &str) -> Result<Option<User>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE username = ?1"))?
        .query_row([username], from_row)
        .optional()?)
}

/// The user with this address (case-insensitive), active or not.
pub fn by_email(conn: &Connection, email: &str) -> Result<Option<User>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM users WHERE email = ?1 COLLATE NOCASE"
        ))?
        .query_row([email], from_row)
        .optional()?)
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<User>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// Every user, by username.
pub fn all(conn: &Connection) -> Result<Vec<User>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users ORDER BY username"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets a user's active flag; false when it was already so.
pub fn set_active(conn: &Connection, id: i64, active: bool) -> Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE users SET active = ?2 WHERE id = ?1 AND active <> ?2")?
        .execute(params![id, active])?;
    Ok(changed > 0)
}

/// Grants a permission directly; false when the user already had it.
pub fn grant(conn: &Connection, user_id: i64, permission: &str) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO user_permissions (permission, user_id) VALUES (?1, ?2)",
        )?
        .execute(params![permission, user_id])?;
    Ok(changed > 0)
}

/// Revokes a direct permission; false when the user did not have it directly.
pub fn revoke(conn: &Connection, user_id: i64, permission: &str) -> Result<bool> {
    let changed = conn
        .prepare_cached("DELETE FROM user_permissions WHERE permission = ?1 AND user_id = ?2")?
        .execute(params![permission, user_id])?;
    Ok(changed > 0)
}

/// A user's direct permissions, sorted.
pub fn direct_permissions(conn: &Connection, user_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT permission FROM user_permissions WHERE user_id = ?1 ORDER BY permission",
    )?;
    let rows = stmt.query_map([user_id], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The active users holding `permission` directly or through any of their
/// groups, each once, by id.
pub fn active_with_permission(conn: &Connection, permission: &str) -> Result<Vec<User>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM users WHERE active = 1 AND id IN (
             SELECT user_id FROM user_permissions WHERE permission = ?1
             UNION
             SELECT m.user_id FROM group_permissions p JOIN group_members m ON m.group_id = p.group_id
              WHERE p.permission = ?1)
         ORDER BY id"
    ))?;
    let rows = stmt.query_map([permission], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
