//! `helpdesk user …`: add, list, show, activate, deactivate, grant, revoke.

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Status, no_such_user};
use crate::app::App;
use crate::cli::{AddUserArgs, UserCommand, UserPermArgs};
use crate::output::{View, cell};
use crate::store::users::{self, NewUser, User};
use crate::store::{Conn, StoreError, groups, rfc3339};

pub fn run(app: &mut App, command: UserCommand) -> Result<Status> {
    match command {
        UserCommand::Add(args) => add(app, &args),
        UserCommand::List => list(app),
        UserCommand::Show(args) => {
            let user = find(app, &args.username)?;
            let view = UserView::of(app.store.conn(), &user, String::new())?;
            app.out.show(&view)?;
            Ok(Status::Done)
        }
        UserCommand::Activate(args) => set_active(app, &args.username, true),
        UserCommand::Deactivate(args) => set_active(app, &args.username, false),
        UserCommand::Grant(args) => permission(app, &args, true),
        UserCommand::Revoke(args) => permission(app, &args, false),
    }
}

#[derive(Serialize)]
struct UserView {
    username: String,
    email: String,
    name: String,
    active: bool,
    created_at: String,
    groups: Vec<String>,
    /// Permissions granted to the user directly (not through groups).
    permissions: Vec<String>,
    #[serde(skip)]
    message: String,
}

impl UserView {
    fn of(conn: &Conn, user: &User, message: String) -> Result<UserView> {
        Ok(UserView {
            username: user.username.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            active: user.active,
            created_at: rfc3339(user.created_at),
            groups: groups::names_of_user(conn, user.id)?,
            permissions: users::direct_permissions(conn, user.id)?,
            message,
        })
    }
}

impl View for UserView {
    fn human(&self) -> String {
        if !self.message.is_empty() {
            // Messages quote names, which are user input.
            return cell(&self.message, 1000);
        }
        let none = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                cell(&v.join(", "), 1000)
            }
        };
        format!(
            "username:     {}\nemail:        {}\nname:         {}\nactive:       {}\ngroups:       {}\npermissions:  {}\ncreated:      {}",
            cell(&self.username, 200),
            cell(&self.email, 200),
            cell(&self.name, 200),
            if self.active { "yes" } else { "no" },
            none(&self.groups),
            none(&self.permissions),
            self.created_at
        )
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct UserList {
    users: Vec<UserView>,
    #[serde(skip)]
    table: String,
}

impl View for UserList {
    fn human(&self) -> String {
        self.table.clone()
    }
}

fn add(app: &mut App, args: &AddUserArgs) -> Result<Status> {
    check_username(&args.username)?;
    let email = check_email(&args.email)?;
    let name = args.name.clone().unwrap_or_default();
    crate::address::check_no_line_break("the name", &name).map_err(anyhow::Error::msg)?;
    if name.chars().any(char::is_control) || name.chars().count() > 150 {
        bail!("the name must be at most 150 characters, without control characters");
    }
    let user = app.store.in_tx(|tx| {
        users::insert(
            tx,
            &NewUser {
                username: &args.username,
                email: &email,
                name: &name,
            },
        )
        .map_err(|e| match e {
            StoreError::Conflict(message) => anyhow::anyhow!(message),
            other => other.into(),
        })
    })?;
    let view = UserView::of(
        app.store.conn(),
        &user,
        format!("added user `{}` <{}>", user.username, user.email),
    )?;
    app.out.show(&view)?;
    Ok(Status::Done)
}

fn list(app: &mut App) -> Result<Status> {
    let conn = app.store.conn();
    let users = users::all(conn)?
        .iter()
        .map(|u| UserView::of(conn, u, String::new()))
        .collect::<Result<Vec<_>>>()?;
    let mut table = app
        .out
        .table(&["USERNAME", "EMAIL", "NAME", "ACTIVE", "GROUPS"]);
    for u in &users {
        table.add_row(vec![
            cell(&u.username, 40),
            cell(&u.email, 60),
            cell(&u.name, 40),
            (if u.active { "yes" } else { "no" }).to_string(),
            cell(&u.groups.join(", "), 40),
        ]);
    }
    let table = if users.is_empty() {
        "no users yet: add one with `helpdesk user add`".into()
    } else {
        table.to_string()
    };
    app.out.show(&UserList { users, table })?;
    Ok(Status::Done)
}

fn set_active(app: &mut App, username: &str, active: bool) -> Result<Status> {
    let user = find(app, username)?;
    let changed = app
        .store
        .in_tx(|tx| users::set_active(tx, user.id, active))?;
    let word = if active { "active" } else { "deactivated" };
    let message = if changed {
        format!("user `{username}` is now {word}")
    } else {
        format!("user `{username}` was already {word}")
    };
    let user = find(app, username)?;
    app.out
        .show(&UserView::of(app.store.conn(), &user, message)?)?;
    Ok(Status::Done)
}

fn permission(app: &mut App, args: &UserPermArgs, grant: bool) -> Result<Status> {
    let user = find(app, &args.username)?;
    let permission = args.permission.as_str();
    let changed = app.store.in_tx(|tx| {
        if grant {
            users::grant(tx, user.id, permission)
        } else {
            users::revoke(tx, user.id, permission)
        }
    })?;
    let message = match (grant, changed) {
        (true, true) => format!("granted `{permission}` to `{}`", user.username),
        (true, false) => format!("`{}` already had `{permission}`", user.username),
        (false, true) => format!("revoked `{permission}` from `{}`", user.username),
        (false, false) => format!("`{}` did not hold `{permission}` directly", user.username),
    };
    app.out
        .show(&UserView::of(app.store.conn(), &user, message)?)?;
    Ok(Status::Done)
}

fn find(app: &App, username: &str) -> Result<User> {
    users::by_username(app.store.conn(), username)?.ok_or_else(|| no_such_user(username))
}

/// Django's rule: 1 to 150 of letters, digits and `@ . + - _`.
fn check_username(username: &str) -> Result<()> {
    let ok = !username.is_empty()
        && username.chars().count() <= 150
        && username
            .chars()
            .all(|c| c.is_alphanumeric() || "@.+-_".contains(c));
    if !ok {
        bail!(
            "invalid username `{}`: use 1 to 150 letters, digits and @ . + - _",
            cell(username, 60)
        );
    }
    Ok(())
}

/// A plain address (`user@example.org`), as it will go into the envelope:
/// the sender's rule (`address::parse`).
fn check_email(email: &str) -> Result<String> {
    crate::address::check_no_line_break("the email address", email).map_err(anyhow::Error::msg)?;
    let address = crate::address::parse(email.trim()).map_err(|reason| {
        anyhow::anyhow!(
            "invalid email address `{}`: {reason}",
            cell(email.trim(), 100)
        )
    })?;
    Ok(address.to_string())
}
