//! `helpdesk ticket assign`, `watch` and `unwatch` (SPEC §7): who owns a
//! ticket and who follows it. Printed as `ticket update` prints an event.

use anyhow::{Result, bail};

use super::ticket::{EventView, find, report};
use super::{Exit, active_user, user_named};
use crate::app::App;
use crate::cli::{AssignTicketArgs, WatchTicketArgs};
use crate::model::{EventKind, TicketId};
use crate::notify::event::{Assignment, EventData, Person};
use crate::notify::fanout::{self, Recorded};
use crate::output::cell;
use crate::store::{tickets, users, watchers};

pub(super) fn assign(app: &mut App, args: &AssignTicketArgs) -> Result<Exit> {
    let actor = active_user(app, &args.by)?;
    let to = match &args.to {
        Some(name) => Some(assignable(app, args.id, name)?),
        None => None,
    };
    let config = &app.config;
    let (ticket, recorded) = app.store.in_tx(|tx| {
        let before = find(tx, args.id)?;
        let before_id = before.assignee.as_ref().map(|(id, _)| *id);
        match (&before.assignee, &to) {
            (Some((id, name)), Some(user)) if *id == user.id => bail!(
                "ticket #{} is already assigned to `{}`: nothing to change",
                before.id,
                cell(name, 60)
            ),
            (None, None) => bail!(
                "ticket #{} is not assigned to anyone: nothing to change",
                before.id
            ),
            _ => {}
        }
        let from = match before_id {
            Some(id) => users::by_id(tx, id)?.map(|u| Person::of(&u)),
            None => None,
        };
        tickets::set_assignee(
            tx,
            before.id,
            to.as_ref().map(|u| u.id),
            crate::clock::now_ms(),
        )?;
        let ticket = find(tx, before.id)?;
        let data = EventData {
            assignment: Some(Assignment {
                from,
                to: to.as_ref().map(Person::of),
            }),
            ..EventData::of(&ticket)
        };
        let recorded = fanout::record_event(tx, config, &ticket, EventKind::Assign, &actor, &data)?;
        Ok((ticket, recorded))
    })?;
    let headline = match &ticket.assignee {
        Some((_, name)) => format!("ticket #{} assigned to {}", ticket.id, cell(name, 60)),
        None => format!("ticket #{} is no longer assigned", ticket.id),
    };
    report(app, &ticket, recorded, headline)
}

/// The user a ticket may be assigned to: an existing, active one.
fn assignable(app: &App, ticket_id: TicketId, username: &str) -> Result<users::User> {
    let user = user_named(app.store.conn(), username)?;
    if !user.active {
        let username = cell(username, 60);
        return Err(crate::error::hinted(
            format!("cannot assign ticket #{ticket_id} to `{username}`: the user is deactivated"),
            format!(
                "only an active user can be assigned; activate them with `helpdesk user activate {username}`"
            ),
        ));
    }
    Ok(user)
}

/// `ticket watch` (`on`) and `ticket unwatch`.
pub(super) fn watch(app: &mut App, args: &WatchTicketArgs, on: bool) -> Result<Exit> {
    let user = if on {
        active_user(app, &args.user)?
    } else {
        user_named(app.store.conn(), &args.user)?
    };
    let (ticket, changed) = app.store.in_tx(|tx| {
        let ticket = find(tx, args.id)?;
        let changed = if on {
            watchers::add(tx, ticket.id, user.id, crate::clock::now_ms())?
        } else {
            watchers::remove(tx, ticket.id, user.id)?
        };
        Ok::<_, anyhow::Error>((ticket, changed))
    })?;
    let name = cell(&user.username, 60);
    let headline = match (on, changed) {
        (true, true) => format!("`{name}` now watches ticket #{}", ticket.id),
        (true, false) => {
            let line = format!(
                "`{name}` already watches ticket #{}: nothing changed",
                ticket.id
            );
            // JSON on stdout cannot say it: stderr does.
            if app.out.json() {
                app.out.note(&line);
            }
            line
        }
        (false, true) => format!("`{name}` no longer watches ticket #{}", ticket.id),
        (false, false) => bail!(
            "`{name}` does not watch ticket #{}: nothing to change",
            ticket.id
        ),
    };
    let none = Recorded {
        notifications: Vec::new(),
        warnings: Vec::new(),
    };
    app.out.show(&EventView::of(&ticket, none, headline))?;
    Ok(Exit::Done)
}
