//! SQL for groups, their permissions and their members.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: i64,
    pub name: String,
}

/// Inserts a group; `Conflict` when the name is taken.
pub fn insert(conn: &Connection, name: &str) -> Result<Group> {
    if by_name(conn, name)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "a group named `{name}` already exists"
        )));
    }
    conn.prepare_cached("INSERT INTO groups (name) VALUES (?1)")?
        .execute([name])?;
    Ok(Group {
        id: conn.last_insert_rowid(),
        name: name.to_string(),
    })
}

pub fn by_name(conn: &Connection, name: &str) -> Result<Option<Group>> {
    Ok(conn
        .prepare_cached("SELECT id, name FROM groups WHERE name = ?1")?
        .query_row([name], |row| {
            Ok(Group {
                id: row.get(0)?,
                name: row.get(1)?,
            })
        })
        .optional()?)
}

/// Every group, by name.
pub fn all(conn: &Connection) -> Result<Vec<Group>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM groups ORDER BY name")?;
    let rows = stmt.query_map([], |row| {
        Ok(Group {
            id: row.get(0)?,
            name: row.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Grants a permission to a group; false when it already had it.
pub fn grant(conn: &Connection, group_id: i64, permission: &str) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO group_permissions (permission, group_id) VALUES (?1, ?2)",
        )?
        .execute(params![permission, group_id])?;
    Ok(changed > 0)
}

/// Revokes a permission from a group; false when it did not have it.
pub fn revoke(conn: &Connection, group_id: i64, permission: &str) -> Result<bool> {
    let changed = conn
        .prepare_cached("DELETE FROM group_permissions WHERE permission = ?1 AND group_id = ?2")?
        .execute(params![permission, group_id])?;
    Ok(changed > 0)
}

/// Adds a member; false when the user already was one.
pub fn add_member(conn: &Connection, group_id: i64, user_id: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached("INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)")?
        .execute(params![group_id, user_id])?;
    Ok(changed > 0)
}

/// Removes a member; false when the user was not one.
pub fn remove_member(conn: &Connection, group_id: i64, user_id: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2")?
        .execute(params![group_id, user_id])?;
    Ok(changed > 0)
}

/// A group's permissions, sorted.
pub fn permissions(conn: &Connection, group_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT permission FROM group_permissions WHERE group_id = ?1 ORDER BY permission",
    )?;
    let rows = stmt.query_map([group_id], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A group's members' usernames, sorted.
pub fn member_names(conn: &Connection, group_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.username FROM group_members m JOIN users u ON u.id = m.user_id
          WHERE m.group_id = ?1 ORDER BY u.username",
    )?;
    let rows = stmt.query_map([group_id], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The names of the groups a user belongs to, sorted.
pub fn names_of_user(conn: &Connection, user_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id
          WHERE m.user_id = ?1 ORDER BY g.name",
    )?;
    let rows = stmt.query_map([user_id], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The names of the groups a user belongs to that hold `permission`, sorted.
pub fn names_of_user_with_permission(
    conn: &Connection,
    user_id: i64,
    permission: &str,
) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.name FROM group_members m
           JOIN groups g ON g.id = m.group_id
           JOIN group_permissions p ON p.group_id = g.id
          WHERE m.user_id = ?1 AND p.permission = ?2 ORDER BY g.name",
    )?;
    let rows = stmt.query_map(params![user_id, permission], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
