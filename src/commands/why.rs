//! `helpdesk notify why ID`: why a notification exists (`notify::why`).

use anyhow::Result;
use serde::Serialize;

use super::Exit;
use crate::app::App;
use crate::model::{EventId, NotificationId, TicketId};
use crate::notify::why::{self, Why};
use crate::output::{Time, View, cell};
use crate::store::reasons;

#[derive(Serialize)]
struct WhyView {
    id: NotificationId,
    user: String,
    channel: String,
    status: String,
    ticket_id: TicketId,
    event_id: EventId,
    actor: String,
    event_at: Time,
    #[serde(flatten)]
    why: Why,
}

impl View for WhyView {
    fn human(&self) -> String {
        let audience = self.why.audience.as_deref().unwrap_or("not recorded");
        [
            format!(
                "notification #{} ({} to {}, {})",
                self.id,
                self.channel,
                cell(&self.user, 60),
                self.status
            ),
            format!(
                "event:       {} on ticket #{} by {} at {}",
                self.why.event,
                self.ticket_id,
                cell(&self.actor, 60),
                self.event_at
            ),
            format!("rule:        {}, audience {audience}", self.why.event),
            format!("because:     {}", self.why.reason),
            format!("that is:     {}", cell(&self.why.detail, 300)),
            format!("preference:  {}", self.why.preference),
        ]
        .join("\n")
    }
}

pub(super) fn run(app: &mut App, id: NotificationId) -> Result<Exit> {
    let conn = app.store.conn();
    let origin = reasons::origin(conn, id)?.ok_or_else(|| {
        crate::error::hinted(
            format!("notification #{id} does not exist"),
            "list notifications with `helpdesk notify list`",
        )
    })?;
    let why = why::explain(conn, &app.config, &origin)?;
    app.out.show(&WhyView {
        id: origin.id,
        user: origin.username.clone(),
        channel: origin.channel.as_str().to_string(),
        status: origin.status.as_str().to_string(),
        ticket_id: origin.ticket_id,
        event_id: origin.event_id,
        actor: origin.actor.clone(),
        event_at: Time(origin.event_at),
        why,
    })?;
    Ok(Exit::Done)
}
