//! `helpdesk user …`: add, list, show, activate, deactivate, grant, revoke.

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Exit, user_named};
use crate::app::App;
use crate::cli::{AddUserArgs, UserCommand, UserPermArgs};
use crate::notify::MANAGER_PERMISSION;
use crate::output::{Table, Time, View, cell};
use crate::store::users::{self, NewUser, User};
use crate::store::{Db, StoreError, groups};

pub fn run(app: &mut App, command: UserCommand) -> Result<Exit> {
    match command {
        UserCommand::Add(args) => add(app, &args),
        UserCommand::List => list(app),
        UserCommand::Show(args) => {
            let user = find(app, &args.username)?;
            let view = UserView::of(app, &user)?;
            app.out.show(&view)?;
            Ok(Exit::Done)
        }
        UserCommand::Activate(args) => set_active(app, &args.username, true),
        UserCommand::Deactivate(args) => set_active(app, &args.username, false),
        UserCommand::Grant(args) => permission(app, &args, true),
        UserCommand::Revoke(args) => permission(app, &args, false),
        UserCommand::Prefs(args) => super::prefs::run(app, &args),
    }
}

/// A user as JSON shows them everywhere.
#[derive(Serialize)]
struct UserFields {
    username: String,
    email: String,
    name: String,
    active: bool,
    created_at: Time,
    groups: Vec<String>,
    /// Permissions granted to the user directly (not through groups).
    permissions: Vec<String>,
}

impl UserFields {
    fn of(conn: &dyn Db, user: &User) -> Result<UserFields> {
        Ok(UserFields {
            username: user.username.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            active: user.active,
            created_at: Time(user.created_at),
            groups: groups::names_of_user(conn, user.id)?,
            permissions: users::direct_permissions(conn, user.id)?,
        })
    }
}

/// Why a user is a developer or a manager (SPEC §1), for `user show`.
#[derive(Serialize)]
struct Roles {
    /// The `admins` entry that makes the user a developer.
    developer: Option<String>,
    /// What makes the user a manager: the permission held directly, and the
    /// groups that give it.
    manager: Vec<String>,
}

impl Roles {
    fn of(app: &App, user: &User) -> Result<Roles> {
        let developer = app
            .config
            .admins
            .iter()
            .find(|admin| admin.email.eq_ignore_ascii_case(&user.email))
            .map(|admin| format!("{} <{}>", admin.name, admin.email));
        let conn = app.store.conn();
        let mut manager = Vec::new();
        if users::direct_permissions(conn, user.id)?
            .iter()
            .any(|p| p == MANAGER_PERMISSION)
        {
            manager.push(format!("holds `{MANAGER_PERMISSION}` directly"));
        }
        for group in groups::names_of_user_with_permission(conn, user.id, MANAGER_PERMISSION)? {
            manager.push(format!(
                "holds `{MANAGER_PERMISSION}` through group `{}`",
                cell(&group, 200)
            ));
        }
        Ok(Roles { developer, manager })
    }
}

/// Everything about one user, with what makes them a developer or a manager.
#[derive(Serialize)]
struct UserView {
    #[serde(flatten)]
    user: UserFields,
    roles: Roles,
}

impl UserView {
    fn of(app: &App, user: &User) -> Result<UserView> {
        Ok(UserView {
            user: UserFields::of(app.store.conn(), user)?,
            roles: Roles::of(app, user)?,
        })
    }
}

impl View for UserView {
    fn human(&self) -> String {
        let u = &self.user;
        let none = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                cell(&v.join(", "), 1000)
            }
        };
        let inactive = if u.active {
            ""
        } else {
            " (deactivated: not notified)"
        };
        let developer = match &self.roles.developer {
            Some(admin) => format!("yes{inactive}: `admins` lists {}", cell(admin, 300)),
            None => "no: no `admins` entry has this address".to_string(),
        };
        let manager = if self.roles.manager.is_empty() {
            format!("no: does not hold `{MANAGER_PERMISSION}`, directly or through a group")
        } else {
            format!("yes{inactive}: {}", self.roles.manager.join("; "))
        };
        [
            format!("username:     {}", cell(&u.username, 200)),
            format!("email:        {}", cell(&u.email, 200)),
            format!("name:         {}", cell(&u.name, 200)),
            format!("active:       {}", if u.active { "yes" } else { "no" }),
            format!("developer:    {developer}"),
            format!("manager:      {manager}"),
            format!("groups:       {}", none(&u.groups)),
            format!("permissions:  {}", none(&u.permissions)),
            format!("created:      {}", u.created_at),
        ]
        .join("\n")
    }
}

/// A change to a user: the user as JSON, what changed for people.
#[derive(Serialize)]
struct UserChange {
    #[serde(flatten)]
    user: UserFields,
    #[serde(skip)]
    message: String,
}

impl UserChange {
    fn of(conn: &dyn Db, user: &User, message: String) -> Result<UserChange> {
        Ok(UserChange {
            user: UserFields::of(conn, user)?,
            message,
        })
    }
}

impl View for UserChange {
    fn human(&self) -> String {
        // Messages quote names, which are user input.
        cell(&self.message, 1000)
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct UserList {
    users: Vec<UserFields>,
}

impl View for UserList {
    fn table(&self) -> Option<Table> {
        let mut table = Table::new(&["USERNAME", "EMAIL", "NAME", "ACTIVE", "GROUPS"])
            .text_columns(&["USERNAME", "EMAIL", "NAME", "GROUPS"]);
        for u in &self.users {
            table.row(vec![
                u.username.clone(),
                u.email.clone(),
                u.name.clone(),
                (if u.active { "yes" } else { "no" }).to_string(),
                u.groups.join(", "),
            ]);
        }
        Some(table)
    }

    fn human(&self) -> String {
        if self.users.is_empty() {
            "no users yet: add one with `helpdesk user add`".into()
        } else {
            String::new()
        }
    }
}

fn add(app: &mut App, args: &AddUserArgs) -> Result<Exit> {
    check_username(&args.username)?;
    let email = check_email(&args.email)?;
    let name = args.name.clone().unwrap_or_default();
    crate::address::check_name("`--name`", &name, false)?;
    let user = app.store.in_tx(|tx| {
        users::insert(
            tx,
            &NewUser {
                username: &args.username,
                email: &email,
                name: &name,
            },
            crate::clock::now_ms(),
        )
        .map_err(|e| match e {
            StoreError::Conflict(message) => anyhow::anyhow!(message),
            other => other.into(),
        })
    })?;
    let view = UserChange::of(
        app.store.conn(),
        &user,
        format!("added user `{}` <{}>", user.username, user.email),
    )?;
    app.out.show(&view)?;
    Ok(Exit::Done)
}

fn list(app: &mut App) -> Result<Exit> {
    let conn = app.store.conn();
    let users = users::all(conn)?
        .iter()
        .map(|u| UserFields::of(conn, u))
        .collect::<Result<Vec<_>>>()?;
    app.out.show(&UserList { users })?;
    Ok(Exit::Done)
}

fn set_active(app: &mut App, username: &str, active: bool) -> Result<Exit> {
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
        .show(&UserChange::of(app.store.conn(), &user, message)?)?;
    Ok(Exit::Done)
}

fn permission(app: &mut App, args: &UserPermArgs, grant: bool) -> Result<Exit> {
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
        .show(&UserChange::of(app.store.conn(), &user, message)?)?;
    Ok(Exit::Done)
}

fn find(app: &App, username: &str) -> Result<User> {
    user_named(app.store.conn(), username)
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
/// the input rule (`address::parse_input`).
fn check_email(email: &str) -> Result<String> {
    Ok(crate::address::parse_input("`--email`", email)?.to_string())
}
