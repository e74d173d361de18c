//! What each event says: the title (also the email subject), the in-app body,
//! the ticket's URL, and the email's HTML and text parts, rendered through
//! `render.rs` from `templates/email/ticket_<event>.{html,txt}`.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::config::Site;
use crate::model::{EventKind, TicketId};
use crate::notify::event::{Change, EventData};
use crate::render::Renderer;

/// How many characters of a comment the in-app body quotes.
const COMMENT_PREVIEW_CHARS: usize = 140;

/// The title of an event's notifications, on every channel.
pub fn title(kind: EventKind, ticket_id: TicketId, data: &EventData) -> String {
    match kind {
        EventKind::New => "A new help desk ticket has been created".to_string(),
        EventKind::Update => format!("Help desk ticket #{ticket_id} has been updated"),
        EventKind::Comment => format!("New comment on help desk ticket #{ticket_id}"),
        EventKind::Assign => match data.assignment.as_ref().and_then(|a| a.to.as_ref()) {
            Some(to) => format!("Help desk ticket #{ticket_id} was assigned to {}", to.name),
            None => format!("Help desk ticket #{ticket_id} is no longer assigned"),
        },
    }
}

/// The subject of an event's email: its title, with the ticket tag in front
/// where the title lacks it (SPEC §6), so a reply names its ticket.
pub fn subject(kind: EventKind, ticket_id: TicketId, data: &EventData) -> String {
    match kind {
        EventKind::New => format!("[#{ticket_id}] {}", title(kind, ticket_id, data)),
        EventKind::Update | EventKind::Comment | EventKind::Assign => title(kind, ticket_id, data),
    }
}

/// The in-app body of an event's notifications.
pub fn app_body(kind: EventKind, data: &EventData, actor: &str) -> String {
    match kind {
        EventKind::New => format!("Priority: {} - Purpose: {}", data.priority, data.purpose),
        EventKind::Update => data
            .changes
            .iter()
            .map(|c| format!("{}: {} → {}", c.field, c.from, c.to))
            .collect::<Vec<_>>()
            .join(", "),
        EventKind::Comment => {
            let comment = data.comment.as_deref().unwrap_or_default();
            let mut preview: String = comment.chars().take(COMMENT_PREVIEW_CHARS).collect();
            if preview.len() < comment.len() {
                preview.push('…');
            }
            format!("{actor}: {preview}")
        }
        EventKind::Assign => {
            let name = |p: Option<&crate::notify::event::Person>| {
                p.map_or_else(|| "nobody".to_string(), |p| p.name.clone())
            };
            let assignment = data.assignment.as_ref();
            format!(
                "Assignee: {} → {} (by {actor})",
                name(assignment.and_then(|a| a.from.as_ref())),
                name(assignment.and_then(|a| a.to.as_ref()))
            )
        }
    }
}

/// The ticket's page, relative to the site (in-app notifications carry this).
pub fn ticket_path(ticket_id: TicketId) -> String {
    format!("/help_desk/page/{ticket_id}/detail/")
}

/// An email's subject and both bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailContent {
    pub subject: String,
    pub html: String,
    pub text: String,
}

#[derive(Serialize)]
struct TicketFacts<'a> {
    id: TicketId,
    purpose: &'static str,
    priority: &'static str,
    status: &'static str,
    description: &'a str,
}

/// What the email templates see.
#[derive(Serialize)]
struct EmailContext<'a> {
    title: &'a str,
    ticket: TicketFacts<'a>,
    /// The absolute URL of the ticket.
    url: String,
    /// Who caused the event, by name.
    actor: &'a str,
    /// Who opened the ticket, by name.
    opened_by: &'a str,
    changes: &'a [Change],
    comment: Option<&'a str>,
    /// A reply to the email adds a comment (`email.inbound.address` is set).
    reply_by_email: bool,
    /// For an assignment: the names before and after (`nobody` for none).
    assigned_from: String,
    assigned_to: String,
    /// Why this recipient gets the email, in `notify why`'s words.
    reason: &'a str,
}

/// The footer's words for an email whose reason was not recorded (queued
/// before reasons were).
pub const UNKNOWN_REASON: &str = "of your help desk notification settings";

/// Renders the email for an event; the same for every recipient with the
/// same `reason` (the footer's "You receive this because …").
/// `reply_by_email`: the footer says a reply adds a comment.
#[allow(clippy::too_many_arguments)]
pub fn email(
    renderer: &Renderer,
    site: &Site,
    kind: EventKind,
    ticket_id: TicketId,
    data: &EventData,
    actor: &str,
    reply_by_email: bool,
    reason: &str,
) -> Result<EmailContent> {
    let title = title(kind, ticket_id, data);
    let subject = subject(kind, ticket_id, data);
    let assignment = data.assignment.as_ref();
    let name = |p: Option<&crate::notify::event::Person>| {
        p.map_or_else(|| "nobody".to_string(), |p| p.name.clone())
    };
    let actor = data.actor_name.as_deref().unwrap_or(actor);
    let context = EmailContext {
        title: &title,
        ticket: TicketFacts {
            id: ticket_id,
            purpose: data.purpose.display(),
            priority: data.priority.display(),
            status: data.status.display(),
            description: &data.description,
        },
        url: site.absolute(&ticket_path(ticket_id)),
        actor,
        opened_by: data.opened_by.as_deref().unwrap_or(actor),
        changes: &data.changes,
        comment: data.comment.as_deref(),
        reply_by_email,
        assigned_from: name(assignment.and_then(|a| a.from.as_ref())),
        assigned_to: name(assignment.and_then(|a| a.to.as_ref())),
        reason,
    };
    let html = renderer.render(&format!("email/ticket_{}.html", kind.as_str()), &context)?;
    let text = renderer.render(&format!("email/ticket_{}.txt", kind.as_str()), &context)?;
    Ok(EmailContent {
        subject,
        html,
        text,
    })
}

/// The content of `notify test`'s email to `to`.
pub fn test_email(renderer: &Renderer, site: &Site, to: &str) -> Result<EmailContent> {
    #[derive(Serialize)]
    struct Context<'a> {
        to: &'a str,
        site: String,
    }
    let context = Context {
        to,
        site: site.absolute("/"),
    };
    Ok(EmailContent {
        subject: "helpdesk test email".into(),
        html: renderer.render("email/test.html", &context)?,
        text: renderer.render("email/test.txt", &context)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Priority, Purpose, Status};

    fn data() -> EventData {
        EventData {
            purpose: Purpose::App,
            priority: Priority::High,
            status: Status::Ready,
            description: "Line one\n<script>alert(1)</script>".into(),
            changes: vec![],
            comment: None,
            assignment: None,
            actor_name: None,
            opened_by: None,
        }
    }

    #[test]
    fn new_ticket_content_matches_the_spec() {
        assert_eq!(
            title(EventKind::New, TicketId(7), &data()),
            "A new help desk ticket has been created"
        );
        assert_eq!(
            app_body(EventKind::New, &data(), "ann"),
            "Priority: High - Purpose: App"
        );
        assert_eq!(ticket_path(TicketId(7)), "/help_desk/page/7/detail/");
    }

    #[test]
    fn email_escapes_html_keeps_line_breaks_and_links_absolutely() {
        let renderer = Renderer::new(None).unwrap();
        let mail = email(
            &renderer,
            &Site::default(),
            EventKind::New,
            TicketId(7),
            &data(),
            "ann",
            false,
            UNKNOWN_REASON,
        )
        .unwrap();
        assert!(mail.html.contains("#7"));
        assert!(
            mail.html
                .contains("Line one<br>\n&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            mail.html
        );
        assert!(!mail.html.contains("<script>"));
        assert!(
            mail.html
                .contains("https://example.com/help_desk/page/7/detail/")
        );
        assert!(
            mail.text.contains("<script>alert(1)</script>"),
            "the text part is not HTML"
        );
        assert!(mail.text.contains("Priority:  High"));
    }

    #[test]
    fn comment_preview_is_cut_at_140_characters() {
        let mut d = data();
        d.comment = Some("é".repeat(200));
        let body = app_body(EventKind::Comment, &d, "bo");
        assert_eq!(body.chars().count(), "bo: ".len() + 140 + 1);
        let mut d = data();
        d.changes = vec![Change {
            field: "Status".into(),
            from: "Ready".into(),
            to: "In Progress".into(),
        }];
        assert_eq!(
            app_body(EventKind::Update, &d, "bo"),
            "Status: Ready → In Progress"
        );
    }
}
