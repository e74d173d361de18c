//! `helpdesk inbox`: a user's in-app notifications, and marking them read.

use anyhow::Result;
use serde::Serialize;

use super::{Exit, user_named};
use crate::app::App;
use crate::cli::{InboxArgs, InboxCommand, InboxReadArgs};
use crate::model::{NotificationId, NotificationPriority, TicketId};
use crate::output::{Table, Time, View, cell};
use crate::store::users::User;
use crate::store::{notifications, now_ms};

pub fn run(app: &mut App, args: InboxArgs) -> Result<Exit> {
    match args.command {
        Some(InboxCommand::Read(read_args)) => read(app, &read_args),
        None => show(app, &args),
    }
}

/// One notification as `inbox` shows it: a table row, a JSON object.
#[derive(Serialize)]
struct InboxRow {
    id: NotificationId,
    ticket_id: TicketId,
    title: String,
    body: String,
    url: String,
    priority: NotificationPriority,
    read: bool,
    delivered_at: Option<Time>,
}

#[derive(Serialize)]
struct InboxView {
    user: String,
    unread: i64,
    notifications: Vec<InboxRow>,
}

impl View for InboxView {
    fn table(&self) -> Option<Table> {
        let mut table = Table::new(&["ID", "", "TICKET", "TITLE", "BODY", "DELIVERED"])
            .text_columns(&["TITLE", "BODY"]);
        for n in &self.notifications {
            table.row(vec![
                n.id.to_string(),
                (if n.read { "" } else { "●" }).to_string(),
                format!("#{}", n.ticket_id),
                n.title.clone(),
                n.body.clone(),
                n.delivered_at.map(|t| t.to_string()).unwrap_or_default(),
            ]);
        }
        Some(table)
    }

    fn human(&self) -> String {
        if self.notifications.is_empty() {
            format!(
                "no notifications for `{}`\n{} unread",
                cell(&self.user, 200),
                self.unread
            )
        } else {
            format!("{} unread", self.unread)
        }
    }
}

fn find(app: &App, username: &str) -> Result<User> {
    // Deactivated users can still read what they were sent.
    user_named(app.store.conn(), username)
}

fn show(app: &mut App, args: &InboxArgs) -> Result<Exit> {
    let username = args.user.as_deref().unwrap_or_default();
    let user = find(app, username)?;
    let mut items = notifications::inbox(app.store.conn(), user.id, args.unread, args.limit)?;
    if args.mark_read {
        let now = now_ms();
        let ids: Vec<NotificationId> = items
            .iter()
            .filter(|n| n.read_at.is_none())
            .map(|n| n.id)
            .collect();
        app.store
            .in_tx(|tx| notifications::mark_read(tx, user.id, &ids, now))?;
        for item in items.iter_mut().filter(|n| n.read_at.is_none()) {
            item.read_at = Some(now);
        }
    }
    let unread = notifications::unread_count(app.store.conn(), user.id)?;
    let view = InboxView {
        user: user.username,
        unread,
        notifications: items
            .into_iter()
            .map(|n| InboxRow {
                id: n.id,
                ticket_id: n.ticket_id,
                title: n.title,
                body: n.body,
                url: n.url,
                priority: n.priority,
                read: n.read_at.is_some(),
                delivered_at: n.delivered_at.map(Time),
            })
            .collect(),
    };
    app.out.show(&view)?;
    Ok(Exit::Done)
}

#[derive(Serialize)]
struct ReadView {
    user: String,
    marked: usize,
    unread: i64,
}

impl View for ReadView {
    fn human(&self) -> String {
        format!("marked {} read; {} unread", self.marked, self.unread)
    }
}

fn read(app: &mut App, args: &InboxReadArgs) -> Result<Exit> {
    let user = find(app, &args.user)?;
    let now = now_ms();
    let marked = app.store.in_tx(|tx| {
        if args.all {
            return Ok(notifications::mark_all_read(tx, user.id, now)?);
        }
        let foreign = notifications::not_in_inbox(tx, user.id, &args.ids)?;
        if !foreign.is_empty() {
            let list: Vec<String> = foreign.iter().map(|id| id.to_string()).collect();
            return Err(crate::error::hinted(
                format!(
                    "no notification {} in the inbox of `{}`; nothing was marked",
                    list.join(", "),
                    user.username
                ),
                format!("see the IDs with `helpdesk inbox --user {}`", user.username),
            ));
        }
        Ok(notifications::mark_read(tx, user.id, &args.ids, now)?)
    })?;
    let unread = notifications::unread_count(app.store.conn(), user.id)?;
    app.out.show(&ReadView {
        user: user.username,
        marked,
        unread,
    })?;
    Ok(Exit::Done)
}
