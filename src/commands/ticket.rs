//! `helpdesk ticket …`: create, list, show, update, comment. Each event is
//! written with its notifications in one transaction (`notify::fanout`).

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Status, active_user, read_text};
use crate::app::App;
use crate::cli::{
    CommentTicketArgs, CreateTicketArgs, ListTicketsArgs, TicketCommand, UpdateTicketArgs,
};
use crate::model::{Channel, NotificationStatus};
use crate::notify::event::{Change, EventData, EventKind};
use crate::notify::fanout::{self, Recorded};
use crate::output::{View, block, cell};
use crate::store::tickets::{self, NewTicket, Ticket};
use crate::store::{Conn, events, notifications, rfc3339};

pub fn run(app: &mut App, command: TicketCommand) -> Result<Status> {
    match command {
        TicketCommand::Create(args) => create(app, &args),
        TicketCommand::List(args) => list(app, &args),
        TicketCommand::Show(args) => {
            let ticket = find(app.store.conn(), args.id)?;
            let view = TicketView::full(app.store.conn(), &ticket)?;
            app.out.show(&view)?;
            Ok(Status::Done)
        }
        TicketCommand::Update(args) => update(app, &args),
        TicketCommand::Comment(args) => comment(app, &args),
    }
}

#[derive(Serialize)]
struct NotificationRef {
    id: i64,
    user: String,
    channel: Channel,
    status: NotificationStatus,
}

#[derive(Serialize)]
struct CommentView {
    id: i64,
    author: String,
    body: String,
    created_at: String,
}

#[derive(Serialize)]
struct HistoryEntry {
    at: String,
    by: String,
    action: &'static str,
    changes: Vec<Change>,
}

#[derive(Serialize)]
struct TicketView {
    id: i64,
    created_by: String,
    purpose: crate::model::Purpose,
    priority: crate::model::Priority,
    status: crate::model::Status,
    description: String,
    created_at: String,
    notifications: Vec<NotificationRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comments: Option<Vec<CommentView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<HistoryEntry>>,
    /// What the command did, for people (create, update, comment).
    #[serde(skip)]
    headline: Option<String>,
}

impl TicketView {
    fn base(ticket: &Ticket, notifications: Vec<NotificationRef>) -> TicketView {
        TicketView {
            id: ticket.id,
            created_by: ticket.created_by_name.clone(),
            purpose: ticket.purpose,
            priority: ticket.priority,
            status: ticket.status,
            description: ticket.description.clone(),
            created_at: rfc3339(ticket.created_at),
            notifications,
            comments: None,
            history: None,
            headline: None,
        }
    }

    /// The result of an event: the ticket and the notifications that event wrote.
    fn after_event(ticket: &Ticket, recorded: &Recorded, headline: String) -> TicketView {
        let notifications = recorded
            .notifications
            .iter()
            .map(|n| NotificationRef {
                id: n.id,
                user: n.username.clone(),
                channel: n.channel,
                status: n.status,
            })
            .collect();
        TicketView {
            headline: Some(headline),
            ..TicketView::base(ticket, notifications)
        }
    }

    /// Everything about a ticket: all its notifications, comments and history.
    fn full(conn: &Conn, ticket: &Ticket) -> Result<TicketView> {
        let notifications = notifications::of_ticket(conn, ticket.id)?
            .into_iter()
            .map(|n| NotificationRef {
                id: n.id,
                user: n.username,
                channel: n.channel,
                status: n.status,
            })
            .collect();
        let mut comments = Vec::new();
        let mut history = Vec::new();
        for event in events::of_ticket(conn, ticket.id)? {
            let data = EventData::from_json(&event.data)?;
            match EventKind::from_stored(&event.kind) {
                Some(EventKind::Comment) => comments.push(CommentView {
                    id: event.id,
                    author: event.actor,
                    body: data.comment.unwrap_or_default(),
                    created_at: rfc3339(event.created_at),
                }),
                Some(EventKind::New) => history.push(HistoryEntry {
                    at: rfc3339(event.created_at),
                    by: event.actor,
                    action: "created",
                    changes: Vec::new(),
                }),
                Some(EventKind::Update) => history.push(HistoryEntry {
                    at: rfc3339(event.created_at),
                    by: event.actor,
                    action: "updated",
                    changes: data.changes,
                }),
                None => {}
            }
        }
        Ok(TicketView {
            comments: Some(comments),
            history: Some(history),
            ..TicketView::base(ticket, notifications)
        })
    }
}

impl View for TicketView {
    fn human(&self) -> String {
        let mut out = Vec::new();
        if let Some(headline) = &self.headline {
            out.push(headline.clone());
            let who = |channel: Channel| {
                let names: Vec<&str> = self
                    .notifications
                    .iter()
                    .filter(|n| n.channel == channel)
                    .map(|n| n.user.as_str())
                    .collect();
                // A manager group can be hundreds strong: name the first few.
                const NAMED: usize = 8;
                match names.len() {
                    0 => "nobody".to_string(),
                    n if n <= NAMED => format!("{n} ({})", names.join(", ")),
                    n => format!(
                        "{n} ({}, and {} more)",
                        names[..NAMED].join(", "),
                        n - NAMED
                    ),
                }
            };
            out.push(format!("in-app:          {}", who(Channel::App)));
            out.push(format!("email (queued):  {}", who(Channel::Email)));
            return out.join("\n");
        }
        out.push(format!("ticket #{}", self.id));
        out.push(format!("status:      {}", self.status));
        out.push(format!("priority:    {}", self.priority));
        out.push(format!("purpose:     {}", self.purpose));
        out.push(format!("created by:  {}", self.created_by));
        out.push(format!("created:     {}", self.created_at));
        out.push(String::new());
        out.push(block(&self.description));
        if let Some(history) = &self.history {
            out.push(String::new());
            out.push("history:".into());
            for h in history {
                let changes: Vec<String> = h
                    .changes
                    .iter()
                    .map(|c| format!("{}: {} → {}", c.field, c.from, c.to))
                    .collect();
                let what = if changes.is_empty() {
                    h.action.to_string()
                } else {
                    changes.join(", ")
                };
                out.push(format!("  {}  {}  {}", h.at, h.by, what));
            }
        }
        if let Some(comments) = self.comments.as_ref().filter(|c| !c.is_empty()) {
            out.push(String::new());
            out.push("comments:".into());
            for c in comments {
                out.push(format!("  {}  {}:", c.created_at, c.author));
                for line in block(&c.body).lines() {
                    out.push(format!("    {line}"));
                }
            }
        }
        let sent = self
            .notifications
            .iter()
            .filter(|n| n.status == NotificationStatus::Sent)
            .count();
        out.push(String::new());
        out.push(format!(
            "notifications: {} ({} delivered)",
            self.notifications.len(),
            sent
        ));
        out.join("\n")
    }
}

fn find(conn: &Conn, id: i64) -> Result<Ticket> {
    tickets::by_id(conn, id)?.ok_or_else(|| {
        crate::error::hinted(
            format!("ticket #{id} does not exist"),
            "list tickets with `helpdesk ticket list`",
        )
    })
}

fn create(app: &mut App, args: &CreateTicketArgs) -> Result<Status> {
    let description = read_text("description", &args.description)?;
    let creator = active_user(app, &args.created_by)?;
    let config = &app.config;
    let (ticket, recorded) = app.store.in_tx(|tx| {
        let id = tickets::insert(
            tx,
            &NewTicket {
                created_by: creator.id,
                purpose: args.purpose,
                priority: args.priority,
                description: &description,
            },
        )?;
        let ticket = find(tx, id)?;
        let recorded = fanout::record_event(
            tx,
            config,
            &ticket,
            EventKind::New,
            &creator,
            &EventData::of(&ticket),
        )?;
        Ok::<_, anyhow::Error>((ticket, recorded))
    })?;
    let headline = format!(
        "ticket #{} created ({} priority, {})",
        ticket.id, ticket.priority, ticket.purpose
    );
    report(app, &ticket, &recorded, headline)
}

/// Says what an event did: its warnings on stderr, the ticket and who was told on stdout.
fn report(app: &App, ticket: &Ticket, recorded: &Recorded, headline: String) -> Result<Status> {
    for warning in &recorded.warnings {
        app.out.warn(warning);
    }
    app.out
        .show(&TicketView::after_event(ticket, recorded, headline))?;
    Ok(Status::Done)
}

fn update(app: &mut App, args: &UpdateTicketArgs) -> Result<Status> {
    let actor = active_user(app, &args.by)?;
    let config = &app.config;
    let (ticket, recorded) = app.store.in_tx(|tx| {
        let before = find(tx, args.id)?;
        let mut changes = Vec::new();
        let status = args.status.unwrap_or(before.status);
        let priority = args.priority.unwrap_or(before.priority);
        if status != before.status {
            changes.push(Change {
                field: "Status".into(),
                from: before.status.to_string(),
                to: status.to_string(),
            });
        }
        if priority != before.priority {
            changes.push(Change {
                field: "Priority".into(),
                from: before.priority.to_string(),
                to: priority.to_string(),
            });
        }
        if changes.is_empty() {
            bail!(
                "ticket #{} already has status {} and priority {}: nothing to change",
                before.id,
                before.status,
                before.priority
            );
        }
        tickets::update(tx, before.id, status, priority)?;
        let ticket = find(tx, before.id)?;
        let data = EventData {
            changes,
            ..EventData::of(&ticket)
        };
        let recorded = fanout::record_event(tx, config, &ticket, EventKind::Update, &actor, &data)?;
        Ok((ticket, recorded))
    })?;
    let headline = format!(
        "ticket #{} updated: status {}, priority {}",
        ticket.id, ticket.status, ticket.priority
    );
    report(app, &ticket, &recorded, headline)
}

fn comment(app: &mut App, args: &CommentTicketArgs) -> Result<Status> {
    let body = read_text("comment", &args.body)?;
    let actor = active_user(app, &args.by)?;
    let config = &app.config;
    let (ticket, recorded) = app.store.in_tx(|tx| {
        let ticket = find(tx, args.id)?;
        let data = EventData {
            comment: Some(body.clone()),
            ..EventData::of(&ticket)
        };
        let recorded =
            fanout::record_event(tx, config, &ticket, EventKind::Comment, &actor, &data)?;
        Ok::<_, anyhow::Error>((ticket, recorded))
    })?;
    let headline = format!("comment added to ticket #{}", ticket.id);
    report(app, &ticket, &recorded, headline)
}

#[derive(Serialize)]
#[serde(transparent)]
struct TicketList {
    tickets: Vec<TicketView>,
    #[serde(skip)]
    table: String,
}

impl View for TicketList {
    fn human(&self) -> String {
        self.table.clone()
    }
}

fn list(app: &mut App, args: &ListTicketsArgs) -> Result<Status> {
    let tickets = tickets::list(app.store.conn(), args.status, args.priority)?;
    let mut table = app.out.table(&[
        "ID",
        "STATUS",
        "PRIORITY",
        "PURPOSE",
        "BY",
        "CREATED",
        "DESCRIPTION",
    ]);
    for t in &tickets {
        table.add_row(vec![
            format!("#{}", t.id),
            t.status.to_string(),
            t.priority.to_string(),
            t.purpose.to_string(),
            cell(&t.created_by_name, 20),
            rfc3339(t.created_at)[..10].to_string(),
            cell(&t.description, 40),
        ]);
    }
    let table = if tickets.is_empty() {
        "no tickets".to_string()
    } else {
        table.to_string()
    };
    let views = tickets
        .iter()
        .map(|t| TicketView::base(t, Vec::new()))
        .collect();
    app.out.show(&TicketList {
        tickets: views,
        table,
    })?;
    Ok(Status::Done)
}
