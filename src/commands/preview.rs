//! `helpdesk notify preview`: prints an event's email as it would be sent
//! (`notify::preview`), or only its text or HTML part. Sends and writes nothing.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use super::Exit;
use crate::app::App;
use crate::cli::PreviewArgs;
use crate::notify::preview::{self, Request};
use crate::notify::ticket_events;

pub(super) fn run(app: &mut App, args: &PreviewArgs) -> Result<Exit> {
    let conn = app.store.conn();
    let ticket = match args.ticket {
        Some(id) => Some(ticket_events::find(conn, id)?),
        None => None,
    };
    let user = match &args.user {
        Some(name) => Some(super::user_named(conn, name)?),
        None => None,
    };
    let preview = preview::preview(
        conn,
        &app.config,
        &Request {
            kind: args.event,
            ticket: ticket.as_ref(),
            user: user.as_ref(),
        },
    )?;
    for note in &preview.notes {
        app.out.note(&format!("note: {note}"));
    }
    if app.out.json() {
        app.out.show(&PreviewView {
            subject: &preview.composed.content.subject,
            to: &preview.to,
            message_id: &preview.message_id,
            text: &preview.composed.content.text,
            html: &preview.composed.content.html,
            raw: String::from_utf8_lossy(&preview.message.raw).into_owned(),
        })?;
        return Ok(Exit::Done);
    }
    let bytes: &[u8] = if args.text {
        preview.composed.content.text.as_bytes()
    } else if args.html {
        preview.composed.content.html.as_bytes()
    } else {
        &preview.message.raw
    };
    write_stdout(bytes)?;
    Ok(Exit::Done)
}

/// `--format json`: the email's parts, and the whole message as it would be sent.
#[derive(Serialize)]
struct PreviewView<'a> {
    subject: &'a str,
    to: &'a str,
    message_id: &'a str,
    text: &'a str,
    html: &'a str,
    raw: String,
}

impl crate::output::View for PreviewView<'_> {
    fn human(&self) -> String {
        self.raw.clone()
    }
}

/// Writes `bytes` as they are, with a line break after the last line if it
/// has none; a closed pipe (`| head`) ends the output quietly.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let end: &[u8] = if bytes.ends_with(b"\n") { b"" } else { b"\n" };
    match stdout
        .write_all(bytes)
        .and_then(|()| stdout.write_all(end))
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
