//! `helpdesk ticket …`: create, list, show, update, comment. Each event is
//! written with its notifications in one transaction (`notify::fanout`).

use std::io::IsTerminal;

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Exit, active_user, read_text};
use crate::app::App;
use crate::cli::{
    CommentTicketArgs, CreateTicketArgs, ListTicketsArgs, TicketCommand, UpdateTicketArgs,
};
use crate::model::{
    Channel, EventId, EventKind, NotificationId, NotificationStatus, Priority, Purpose, Status,
    TicketId,
};
use crate::notify::event::{Change, EventData};
use crate::notify::fanout::{self, Recorded};
use crate::notify::ticket_events;
use crate::output::{Table, Time, View, block, cell};
use crate::store::tickets::{self, Ticket};
use crate::store::{Db, events, notifications};

pub fn run(app: &mut App, command: TicketCommand) -> Result<Exit> {
    match command {
        TicketCommand::Create(args) => create(app, &args),
        TicketCommand::List(args) => list(app, &args),
        TicketCommand::Show(args) => {
            let ticket = find(app.store.conn(), args.id)?;
            let view = TicketView::of(app.store.conn(), &ticket)?;
            app.out.show(&view)?;
            Ok(Exit::Done)
        }
        TicketCommand::Update(args) => update(app, &args),
        TicketCommand::Comment(args) => comment(app, &args),
        TicketCommand::Assign(args) => super::ownership::assign(app, &args),
        TicketCommand::Watch(args) => super::ownership::watch(app, &args, true),
        TicketCommand::Unwatch(args) => super::ownership::watch(app, &args, false),
    }
}

#[derive(Serialize)]
struct NotificationRef {
    id: NotificationId,
    user: String,
    channel: Channel,
    status: NotificationStatus,
}

#[derive(Serialize)]
struct CommentView {
    id: EventId,
    author: String,
    body: String,
    created_at: Time,
}

#[derive(Serialize)]
struct HistoryEntry {
    at: Time,
    by: String,
    action: &'static str,
    changes: Vec<Change>,
}

/// A ticket's own fields, as every ticket view shows them.
#[derive(Serialize)]
pub(super) struct TicketFields {
    id: TicketId,
    created_by: String,
    /// Who the ticket is assigned to (`null`: nobody).
    assignee: Option<String>,
    purpose: Purpose,
    priority: Priority,
    status: Status,
    description: String,
    created_at: Time,
}

impl TicketFields {
    fn of(ticket: &Ticket) -> TicketFields {
        TicketFields {
            id: ticket.id,
            created_by: ticket.created_by_name.clone(),
            assignee: ticket.assignee.as_ref().map(|(_, name)| name.clone()),
            purpose: ticket.purpose,
            priority: ticket.priority,
            status: ticket.status,
            description: ticket.description.clone(),
            created_at: Time(ticket.created_at),
        }
    }
}

/// What an event (create, update, comment) did: the ticket, the
/// notifications that event wrote, and for people a headline and who was told.
#[derive(Serialize)]
pub(super) struct EventView {
    #[serde(flatten)]
    ticket: TicketFields,
    notifications: Vec<NotificationRef>,
    #[serde(skip)]
    headline: String,
}

impl EventView {
    pub(super) fn of(ticket: &Ticket, recorded: Recorded, headline: String) -> EventView {
        let notifications = recorded
            .notifications
            .into_iter()
            .map(|n| NotificationRef {
                id: n.id,
                user: n.username,
                channel: n.channel,
                status: n.status,
            })
            .collect();
        EventView {
            ticket: TicketFields::of(ticket),
            notifications,
            headline,
        }
    }

    /// Who was told on a channel: a count and the first few names.
    fn told(&self, channel: Channel) -> String {
        // A manager group can be hundreds strong: name the first few (and
        // lay out only those).
        const NAMED: usize = 8;
        let told = || self.notifications.iter().filter(|n| n.channel == channel);
        let names: Vec<String> = told().take(NAMED).map(|n| cell(&n.user, 60)).collect();
        match told().count() {
            0 => "nobody".to_string(),
            n if n <= NAMED => format!("{n} ({})", names.join(", ")),
            n => format!("{n} ({}, and {} more)", names.join(", "), n - NAMED),
        }
    }
}

impl View for EventView {
    fn human(&self) -> String {
        [
            self.headline.clone(),
            format!("in-app:          {}", self.told(Channel::App)),
            format!("email (queued):  {}", self.told(Channel::Email)),
        ]
        .join("\n")
    }
}

/// Everything about a ticket: all its notifications, comments and history.
#[derive(Serialize)]
struct TicketView {
    #[serde(flatten)]
    ticket: TicketFields,
    notifications: Vec<NotificationRef>,
    /// Who watches the ticket (usernames), longest-standing first.
    watchers: Vec<String>,
    comments: Vec<CommentView>,
    history: Vec<HistoryEntry>,
}

impl TicketView {
    fn of(conn: &dyn Db, ticket: &Ticket) -> Result<TicketView> {
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
            // A digest is recorded on its newest update's ticket; its data
            // is the digest's own, and its email is among the notifications.
            let Some(kind) = event.kind.ticket_event() else {
                continue;
            };
            let data = EventData::from_json(&event.data)?;
            let at = Time(event.created_at);
            match kind {
                EventKind::Comment => comments.push(CommentView {
                    id: event.id,
                    author: event.actor,
                    body: data.comment.unwrap_or_default(),
                    created_at: at,
                }),
                EventKind::New => history.push(HistoryEntry {
                    at,
                    by: event.actor,
                    action: "created",
                    changes: Vec::new(),
                }),
                EventKind::Update => history.push(HistoryEntry {
                    at,
                    by: event.actor,
                    action: "updated",
                    changes: data.changes,
                }),
                EventKind::Assign => {
                    let name = |p: Option<crate::notify::event::Person>| {
                        p.map_or_else(|| "nobody".to_string(), |p| p.name)
                    };
                    let assignment = data.assignment;
                    let (from, to) = match assignment {
                        Some(a) => (name(a.from), name(a.to)),
                        None => (name(None), name(None)),
                    };
                    history.push(HistoryEntry {
                        at,
                        by: event.actor,
                        action: "assigned",
                        changes: vec![Change {
                            field: "Assignee".into(),
                            from,
                            to,
                        }],
                    })
                }
            }
        }
        let watchers = crate::store::watchers::of_ticket(conn, ticket.id)?
            .into_iter()
            .map(|(user, _)| user.username)
            .collect();
        Ok(TicketView {
            ticket: TicketFields::of(ticket),
            notifications,
            watchers,
            comments,
            history,
        })
    }
}

impl View for TicketView {
    fn human(&self) -> String {
        let t = &self.ticket;
        let mut out = vec![
            format!("ticket #{}", t.id),
            format!("status:      {}", t.status),
            format!("priority:    {}", t.priority),
            format!("purpose:     {}", t.purpose),
            format!("created by:  {}", cell(&t.created_by, 200)),
            format!(
                "assignee:    {}",
                t.assignee
                    .as_deref()
                    .map_or("nobody".into(), |a| cell(a, 200))
            ),
            format!(
                "watchers:    {}",
                if self.watchers.is_empty() {
                    "nobody".to_string()
                } else {
                    self.watchers
                        .iter()
                        .map(|w| cell(w, 60))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            format!("created:     {}", t.created_at),
            String::new(),
            block(&t.description),
        ];
        out.push(String::new());
        out.push("history:".into());
        for h in &self.history {
            let changes: Vec<String> = h
                .changes
                .iter()
                .map(|c| format!("{}: {} → {}", c.field, cell(&c.from, 200), cell(&c.to, 200)))
                .collect();
            let what = if changes.is_empty() {
                h.action.to_string()
            } else {
                changes.join(", ")
            };
            out.push(format!("  {}  {}  {}", h.at, cell(&h.by, 200), what));
        }
        if !self.comments.is_empty() {
            out.push(String::new());
            out.push("comments:".into());
            for c in &self.comments {
                out.push(format!("  {}  {}:", c.created_at, cell(&c.author, 200)));
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

pub(super) fn find(conn: &dyn Db, id: TicketId) -> Result<Ticket> {
    ticket_events::find(conn, id)
}

fn create(app: &mut App, args: &CreateTicketArgs) -> Result<Exit> {
    prompt_for_stdin(app, "description", &args.description);
    let description = read_text("description", &args.description)?;
    let creator = active_user(app, &args.created_by)?;
    let config = &app.config;
    let (ticket, recorded) = app.store.in_tx(|tx| {
        ticket_events::open_ticket(
            tx,
            config,
            &creator,
            args.purpose,
            args.priority,
            &description,
        )
    })?;
    let headline = format!(
        "ticket #{} created ({} priority, {})",
        ticket.id, ticket.priority, ticket.purpose
    );
    report(app, &ticket, recorded, headline)
}

/// Tells a person at a terminal that `-` is waiting for them to type the
/// text (a pipe or a file needs no prompt).
fn prompt_for_stdin(app: &App, what: &str, value: &std::ffi::OsStr) {
    if value == "-" && std::io::stdin().is_terminal() {
        app.out.note(&format!(
            "reading the {what} from standard input; end with Ctrl-D"
        ));
    }
}

/// Says what an event did: its warnings on stderr, the ticket and who was told on stdout.
pub(super) fn report(
    app: &App,
    ticket: &Ticket,
    recorded: Recorded,
    headline: String,
) -> Result<Exit> {
    for warning in &recorded.warnings {
        app.out.warn(warning);
    }
    app.out.show(&EventView::of(ticket, recorded, headline))?;
    Ok(Exit::Done)
}

fn update(app: &mut App, args: &UpdateTicketArgs) -> Result<Exit> {
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
        tickets::update(tx, before.id, status, priority, crate::clock::now_ms())?;
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
    report(app, &ticket, recorded, headline)
}

fn comment(app: &mut App, args: &CommentTicketArgs) -> Result<Exit> {
    prompt_for_stdin(app, "comment", &args.body);
    let body = read_text("comment", &args.body)?;
    let actor = active_user(app, &args.by)?;
    let config = &app.config;
    let (ticket, recorded) = app
        .store
        .in_tx(|tx| ticket_events::comment(tx, config, args.id, &actor, &body))?;
    let headline = format!("comment added to ticket #{}", ticket.id);
    report(app, &ticket, recorded, headline)
}

/// One ticket in a listing (SPEC §5): no notifications; who it is assigned
/// to is one of its fields.
#[derive(Serialize)]
struct TicketListItem {
    #[serde(flatten)]
    ticket: TicketFields,
}

#[derive(Serialize)]
#[serde(transparent)]
struct TicketList {
    tickets: Vec<TicketListItem>,
}

impl View for TicketList {
    fn table(&self) -> Option<Table> {
        let mut table = Table::new(&[
            "ID",
            "STATUS",
            "PRIORITY",
            "PURPOSE",
            "BY",
            "ASSIGNEE",
            "CREATED",
            "DESCRIPTION",
        ])
        .text_columns(&["BY", "ASSIGNEE", "DESCRIPTION"]);
        for item in &self.tickets {
            let t = &item.ticket;
            table.row(vec![
                format!("#{}", t.id),
                t.status.to_string(),
                t.priority.to_string(),
                t.purpose.to_string(),
                t.created_by.clone(),
                t.assignee.clone().unwrap_or_default(),
                t.created_at.to_string(),
                t.description.clone(),
            ]);
        }
        Some(table)
    }

    fn human(&self) -> String {
        if self.tickets.is_empty() {
            "no tickets".into()
        } else {
            String::new()
        }
    }
}

fn list(app: &mut App, args: &ListTicketsArgs) -> Result<Exit> {
    let assignee = match args.assignee.as_deref() {
        None => None,
        Some("none") => Some(tickets::AssigneeFilter::Nobody),
        Some(name) => {
            let user = super::user_named(app.store.conn(), name)?;
            Some(tickets::AssigneeFilter::User(user.id))
        }
    };
    let tickets = tickets::list_assigned(app.store.conn(), args.status, args.priority, assignee)?;
    let tickets = tickets
        .iter()
        .map(|t| TicketListItem {
            ticket: TicketFields::of(t),
        })
        .collect();
    app.out.show(&TicketList { tickets })?;
    Ok(Exit::Done)
}
