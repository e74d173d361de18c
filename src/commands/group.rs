//! `helpdesk group …`: groups, their permissions and their members.

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Exit, user_named};
use crate::app::App;
use crate::cli::{GroupCommand, GroupMemberArgs, GroupPermArgs};
use crate::output::{Table, View, cell};
use crate::store::groups::{self, Group};
use crate::store::{Db, StoreError};

pub fn run(app: &mut App, command: GroupCommand) -> Result<Exit> {
    match command {
        GroupCommand::Add(args) => {
            // Taken as written, like every name and address typed.
            let name = args.name.clone();
            crate::address::check_name("the group name", &name, true)?;
            if name.trim() != name {
                bail!(
                    "the group name `{}` has spaces around it: write it without them",
                    cell(&name, 60)
                );
            }
            let perms: Vec<&str> = args.perms.iter().map(|p| p.as_str()).collect();
            let group = app.store.in_tx(|tx| {
                let group = groups::insert(tx, &name).map_err(|e| match e {
                    StoreError::Conflict(message) => anyhow::anyhow!(message),
                    other => other.into(),
                })?;
                for perm in &perms {
                    groups::grant(tx, group.id, perm)?;
                }
                Ok::<_, anyhow::Error>(group)
            })?;
            show(app, &group, format!("added group `{}`", group.name))
        }
        GroupCommand::List => {
            let conn = app.store.conn();
            let views = groups::all(conn)?
                .iter()
                .map(|g| GroupView::of(conn, g, String::new()))
                .collect::<Result<Vec<_>>>()?;
            app.out.show(&GroupList { groups: views })?;
            Ok(Exit::Done)
        }
        GroupCommand::Grant(args) => permission(app, &args, true),
        GroupCommand::Revoke(args) => permission(app, &args, false),
        GroupCommand::AddUser(args) => membership(app, &args, true),
        GroupCommand::RemoveUser(args) => membership(app, &args, false),
    }
}

#[derive(Serialize)]
struct GroupView {
    name: String,
    permissions: Vec<String>,
    members: Vec<String>,
    #[serde(skip)]
    message: String,
}

impl GroupView {
    fn of(conn: &dyn Db, group: &Group, message: String) -> Result<GroupView> {
        Ok(GroupView {
            name: group.name.clone(),
            permissions: groups::permissions(conn, group.id)?,
            members: groups::member_names(conn, group.id)?,
            message,
        })
    }
}

impl View for GroupView {
    fn human(&self) -> String {
        // Messages quote names, which are user input.
        cell(&self.message, 1000)
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct GroupList {
    groups: Vec<GroupView>,
}

impl View for GroupList {
    fn table(&self) -> Option<Table> {
        let mut table = Table::new(&["GROUP", "PERMISSIONS", "MEMBERS"]).text_columns(&[
            "GROUP",
            "PERMISSIONS",
            "MEMBERS",
        ]);
        for g in &self.groups {
            table.row(vec![
                g.name.clone(),
                g.permissions.join(", "),
                g.members.join(", "),
            ]);
        }
        Some(table)
    }

    fn human(&self) -> String {
        if self.groups.is_empty() {
            "no groups yet: add one with `helpdesk group add`".into()
        } else {
            String::new()
        }
    }
}

fn show(app: &App, group: &Group, message: String) -> Result<Exit> {
    app.out
        .show(&GroupView::of(app.store.conn(), group, message)?)?;
    Ok(Exit::Done)
}

fn find(app: &App, name: &str) -> Result<Group> {
    groups::by_name(app.store.conn(), name)?.ok_or_else(|| {
        crate::error::hinted(
            format!("no group named `{}`", cell(name, 60)),
            "list groups with `helpdesk group list`",
        )
    })
}

fn permission(app: &mut App, args: &GroupPermArgs, grant: bool) -> Result<Exit> {
    let group = find(app, &args.name)?;
    let permission = args.permission.as_str();
    let changed = app.store.in_tx(|tx| {
        if grant {
            groups::grant(tx, group.id, permission)
        } else {
            groups::revoke(tx, group.id, permission)
        }
    })?;
    let message = match (grant, changed) {
        (true, true) => format!("granted `{permission}` to group `{}`", group.name),
        (true, false) => format!("group `{}` already had `{permission}`", group.name),
        (false, true) => format!("revoked `{permission}` from group `{}`", group.name),
        (false, false) => format!("group `{}` did not have `{permission}`", group.name),
    };
    show(app, &group, message)
}

fn membership(app: &mut App, args: &GroupMemberArgs, add: bool) -> Result<Exit> {
    let group = find(app, &args.name)?;
    let user = user_named(app.store.conn(), &args.username)?;
    let changed = app.store.in_tx(|tx| {
        if add {
            groups::add_member(tx, group.id, user.id)
        } else {
            groups::remove_member(tx, group.id, user.id)
        }
    })?;
    let message = match (add, changed) {
        (true, true) => format!("added `{}` to group `{}`", user.username, group.name),
        (true, false) => format!("`{}` was already in group `{}`", user.username, group.name),
        (false, true) => format!("removed `{}` from group `{}`", user.username, group.name),
        (false, false) => format!("`{}` was not in group `{}`", user.username, group.name),
    };
    show(app, &group, message)
}
