//! SQL for groups, their permissions and their members.

use super::db::{Db, Row};
use super::{Result, StoreError};
use crate::model::{GroupId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
}

fn from_row(row: &Row<'_, '_>) -> Result<Group> {
    Ok(Group {
        id: row.parse(0)?,
        name: row.text(1)?,
    })
}

/// Inserts a group; `Conflict` when the name is taken.
pub fn insert(conn: &dyn Db, name: &str) -> Result<Group> {
    if by_name(conn, name)?.is_some() {
        return Err(StoreError::Conflict(format!(
            "a group named `{name}` already exists"
        )));
    }
    conn.query_one(
        "INSERT INTO groups (name) VALUES ($1) RETURNING id, name",
        &[&name],
        from_row,
    )
}

pub fn by_name(conn: &dyn Db, name: &str) -> Result<Option<Group>> {
    conn.query_opt(
        "SELECT id, name FROM groups WHERE name = $1",
        &[&name],
        from_row,
    )
}

/// Every group, by name.
pub fn all(conn: &dyn Db) -> Result<Vec<Group>> {
    conn.query("SELECT id, name FROM groups ORDER BY name", &[], from_row)
}

/// Grants a permission to a group; false when it already had it.
pub fn grant(conn: &dyn Db, group_id: GroupId, permission: &str) -> Result<bool> {
    let changed = conn.execute(
        "INSERT INTO group_permissions (permission, group_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
        &[&permission, &group_id],
    )?;
    Ok(changed > 0)
}

/// Revokes a permission from a group; false when it did not have it.
pub fn revoke(conn: &dyn Db, group_id: GroupId, permission: &str) -> Result<bool> {
    let changed = conn.execute(
        "DELETE FROM group_permissions WHERE permission = $1 AND group_id = $2",
        &[&permission, &group_id],
    )?;
    Ok(changed > 0)
}

/// Adds a member; false when the user already was one.
pub fn add_member(conn: &dyn Db, group_id: GroupId, user_id: UserId) -> Result<bool> {
    let changed = conn.execute(
        "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&group_id, &user_id],
    )?;
    Ok(changed > 0)
}

/// Removes a member; false when the user was not one.
pub fn remove_member(conn: &dyn Db, group_id: GroupId, user_id: UserId) -> Result<bool> {
    let changed = conn.execute(
        "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
        &[&group_id, &user_id],
    )?;
    Ok(changed > 0)
}

/// A group's permissions, sorted.
pub fn permissions(conn: &dyn Db, group_id: GroupId) -> Result<Vec<String>> {
    conn.query(
        "SELECT permission FROM group_permissions WHERE group_id = $1 ORDER BY permission",
        &[&group_id],
        |row| row.text(0),
    )
}

/// A group's members' usernames, sorted.
pub fn member_names(conn: &dyn Db, group_id: GroupId) -> Result<Vec<String>> {
    conn.query(
        "SELECT u.username FROM group_members m JOIN users u ON u.id = m.user_id
          WHERE m.group_id = $1 ORDER BY u.username",
        &[&group_id],
        |row| row.text(0),
    )
}

/// The names of the groups a user belongs to, sorted.
pub fn names_of_user(conn: &dyn Db, user_id: UserId) -> Result<Vec<String>> {
    conn.query(
        "SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id
          WHERE m.user_id = $1 ORDER BY g.name",
        &[&user_id],
        |row| row.text(0),
    )
}

/// The names of the groups a user belongs to that hold `permission`, sorted.
pub fn names_of_user_with_permission(
    conn: &dyn Db,
    user_id: UserId,
    permission: &str,
) -> Result<Vec<String>> {
    conn.query(
        "SELECT g.name FROM group_members m
           JOIN groups g ON g.id = m.group_id
           JOIN group_permissions p ON p.group_id = g.id
          WHERE m.user_id = $1 AND p.permission = $2 ORDER BY g.name",
        &[&user_id, &permission],
        |row| row.text(0),
    )
}
