//! `helpdesk mail …`: receive a message (stdin or a Maildir) and act on it
//! as SPEC §6 says, and list what was received. Classification is
//! `mail::classify`'s; this file reads the input (capped), writes each
//! outcome in one transaction with the received Message-ID, and answers the
//! mail server with a sysexits status.

use std::collections::BinaryHeap;
use std::ffi::OsString;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Exit;
use crate::app::App;
use crate::cli::{GlobalArgs, ListReceivedArgs, MailCommand, ReceiveArgs};
use crate::config::Config;
use crate::error::{explain_store_error, report};
use crate::mail::classify::{self, Action, Ignore, InboundConfig, Outcome, Refusal};
use crate::mail::parse::{self, DEFAULT_MAX_MESSAGE_BYTES, Inbound, NotAMessage};
use crate::notify::ticket_events;
use crate::output::{Output, Stream, Table, Time, View, cell};
use crate::store::received::{self, NewReceived, StoreLookup};
use crate::store::{StoreError, suppressions, users};

/// sysexits: the input is not a mail message.
const EX_DATAERR: u8 = 65;
/// sysexits: try again later (the mail server keeps the message).
const EX_TEMPFAIL: u8 = 75;

pub fn run(global: &GlobalArgs, out: Output, command: MailCommand) -> Result<Exit> {
    match command {
        MailCommand::Receive(args) => Ok(receive(global, out, &args)),
        MailCommand::List(args) => {
            let mut app = App::load(global, out)?;
            let database = app.config.database.clone();
            list(&mut app, &args).map_err(|err| explain_store_error(err, Some(&database)))
        }
    }
}

// ---- receive -------------------------------------------------------------------------------

/// What became of one message: the JSON document a mail script reads.
#[derive(Debug, Serialize)]
struct Handled {
    action: Action,
    ticket_id: Option<classify::TicketId>,
    message_id: Option<String>,
    reason: Option<String>,
}

impl Handled {
    fn line(&self) -> String {
        let mut line = self.action.to_string();
        if let Some(ticket) = self.ticket_id {
            line.push_str(&format!(" (ticket #{ticket})"));
        }
        if let Some(reason) = &self.reason {
            line.push_str(&format!(": {}", cell(reason, 300)));
        }
        line
    }
}

impl View for Handled {
    fn human(&self) -> String {
        self.line()
    }
}

/// Why a message was not handled.
enum Failure {
    /// Not a mail message at all (stdin: exit 65).
    NotAMessage(NotAMessage),
    /// Anything else: the server keeps the message and tries again (75).
    Later(anyhow::Error),
}

/// Runs `mail receive`; every failure becomes the status a mail server reads.
fn receive(global: &GlobalArgs, out: Output, args: &ReceiveArgs) -> Exit {
    let folder = args.maildir.as_deref();
    let mut app = match App::load(global, out) {
        Ok(app) => app,
        Err(err) => return try_again_later(&err, folder),
    };
    let database = app.config.database.clone();
    let later =
        |err: anyhow::Error| try_again_later(&explain_store_error(err, Some(&database)), folder);
    match &args.maildir {
        None => {
            let stdin = std::io::stdin();
            let input = match read_capped(stdin.lock(), None) {
                Ok(input) => input,
                Err(err) => {
                    return later(err.context("could not read the message from standard input"));
                }
            };
            match handle(&mut app, &input) {
                Ok(handled) => match app.out.show(&handled) {
                    Ok(()) => Exit::Done,
                    Err(err) => later(err),
                },
                Err(Failure::NotAMessage(why)) => {
                    report(&anyhow::anyhow!("not a mail message: {why}"));
                    Exit::Sysexit(EX_DATAERR)
                }
                Err(Failure::Later(err)) => later(err),
            }
        }
        Some(dir) => {
            let mut shown = app.out.stream("no new messages");
            let result = maildir(&mut app, dir, &mut shown);
            // What was handled is listed even when a failure stopped the run.
            match result.and(shown.finish()) {
                Ok(()) => Exit::Done,
                Err(err) => later(err),
            }
        }
    }
}

/// Says why the message was not handled now, and who keeps it (status 75,
/// EX_TEMPFAIL): the mail server, which delivers it again, or with
/// `--maildir` the folder, whose next run handles what is left in `new/`.
/// Whoever reads the log knows nothing was lost.
fn try_again_later(err: &anyhow::Error, maildir: Option<&Path>) -> Exit {
    report(err);
    crate::output::print_stderr(&match maildir {
        None => "the message was not handled now: the mail server keeps it and delivers it again later (status 75)".to_string(),
        Some(dir) => format!(
            "what was not handled stays in `{}`: the next `mail receive --maildir` handles it (status 75)",
            crate::output::cell(&dir.join("new").display().to_string(), 200)
        ),
    });
    Exit::Sysexit(EX_TEMPFAIL)
}

/// A message as read: at most the cap, and whether there was more.
struct Input {
    bytes: Vec<u8>,
    too_large: bool,
}

/// Reads at most `DEFAULT_MAX_MESSAGE_BYTES`; the rest of a larger message
/// is read and dropped (a pipe writer must see its message taken), so
/// memory stays bounded whatever the size.
fn read_capped(reader: impl Read, size_hint: Option<u64>) -> Result<Input> {
    let cap = DEFAULT_MAX_MESSAGE_BYTES;
    // Room for the whole cap at once, so the buffer never moves as it
    // grows (a move would hold two copies at once). Pages not written to
    // cost no memory.
    let initial = size_hint.map_or(cap + 1, |n| n.min(cap as u64) as usize + 1);
    let mut bytes = Vec::with_capacity(initial);
    let mut reader = reader;
    (&mut reader).take(cap as u64 + 1).read_to_end(&mut bytes)?;
    let too_large = bytes.len() > cap;
    if too_large {
        std::io::copy(&mut reader, &mut std::io::sink())?;
        bytes.truncate(cap);
    }
    Ok(Input { bytes, too_large })
}

/// The header block of a message cut at the cap (up to its first blank line).
fn header_block(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2));
    &bytes[..end.unwrap_or(bytes.len().min(1 << 20))]
}

fn inbound_config(config: &Config) -> InboundConfig {
    InboundConfig {
        address: config.email.inbound.address.clone().unwrap_or_default(),
        trusted_authserv_id: config.email.inbound.trusted_authserv_id.clone(),
    }
}

/// Classifies one message and writes its outcome, with its Message-ID, in
/// one transaction: a redelivery finds the Message-ID and changes nothing.
fn handle(app: &mut App, input: &Input) -> Result<Handled, Failure> {
    let message = if input.too_large {
        parse::parse(header_block(&input.bytes))
    } else {
        parse::parse(&input.bytes)
    }
    .map_err(Failure::NotAMessage)?;
    let config = &app.config;
    let inbound = inbound_config(config);
    let now = crate::clock::now_ms();
    let result = app.store.in_tx(|tx| -> Result<Handled, anyhow::Error> {
        let lookup = StoreLookup(tx);
        let outcome = if input.too_large {
            too_large(&message, &lookup)?
        } else {
            classify::classify(&message, &inbound, &lookup)?
        };
        let handled = apply(tx, config, &message, &outcome, now)?;
        let recorded = received::record(
            tx,
            &NewReceived {
                message_id: match &outcome {
                    Outcome::Ignored(Ignore::AlreadyReceived(_)) => None,
                    _ => message.message_id.as_deref(),
                },
                action: handled.action,
                ticket_id: handled.ticket_id,
                reason: handled.reason.as_deref(),
                from: message.from.as_deref().ok(),
                subject: Some(message.subject.as_str()).filter(|s| !s.is_empty()),
                at: now,
            },
        )?;
        if !recorded {
            // Another delivery of this message got there first: undo ours.
            return Err(Raced.into());
        }
        Ok(handled)
    });
    match result {
        Ok(handled) => Ok(handled),
        Err(err) if err.is::<Raced>() => Ok(Handled {
            action: Action::Ignored,
            ticket_id: None,
            reason: Some(
                Ignore::AlreadyReceived(message.message_id.clone().unwrap_or_default()).to_string(),
            ),
            message_id: message.message_id.clone(),
        }),
        Err(err) => Err(Failure::Later(err)),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the message was recorded by another delivery at the same moment")]
struct Raced;

/// A message past the cap: refused, unless it was received before.
fn too_large(message: &Inbound, lookup: &StoreLookup<'_>) -> Result<Outcome, StoreError> {
    use crate::mail::classify::Lookup;
    if let Some(id) = &message.message_id
        && lookup.already_received(id)?
    {
        return Ok(Outcome::Ignored(Ignore::AlreadyReceived(id.clone())));
    }
    Ok(Outcome::Refused(Refusal::TooLarge(
        DEFAULT_MAX_MESSAGE_BYTES,
    )))
}

/// Does what the outcome says, in the caller's transaction.
fn apply(
    tx: &dyn crate::store::Db,
    config: &Config,
    message: &Inbound,
    outcome: &Outcome,
    now: i64,
) -> Result<Handled> {
    let mut ticket_id = outcome.ticket_id();
    match outcome {
        Outcome::Bounce(bounce) => {
            let error = bounce.last_error();
            received::fail_bounced(tx, bounce.notification.id, &error, now)?;
            if bounce.permanent {
                suppressions::add(tx, bounce.address(), &error, now)?;
            }
        }
        Outcome::Comment(comment) => {
            let author = author(tx, comment.author.id)?;
            ticket_events::comment(tx, config, comment.ticket_id, &author, &comment.text)?;
        }
        Outcome::Ticket(new) => {
            let author = author(tx, new.author.id)?;
            let inbound = &config.email.inbound;
            let (ticket, _) = ticket_events::open_ticket(
                tx,
                config,
                &author,
                inbound.purpose,
                inbound.priority,
                &new.description,
            )?;
            ticket_id = Some(ticket.id);
        }
        Outcome::Ignored(_) | Outcome::Refused(_) => {}
    }
    Ok(Handled {
        action: outcome.action(),
        ticket_id,
        message_id: message.message_id.clone(),
        reason: outcome.reason(),
    })
}

fn author(tx: &dyn crate::store::Db, id: crate::model::UserId) -> Result<users::User> {
    users::by_id(tx, id)?.context("the sender's user record vanished")
}

/// Every message in `dir/new`, oldest name first, each moved to `dir/cur`
/// once handled (a message that is no mail at all is refused and moved too)
/// and shown. A database failure stops the run: that message stays in `new`.
/// The folder is read in passes of `NAMES_PER_PASS` names (each pass the
/// next names in order), so memory does not grow with the folder.
fn maildir(app: &mut App, dir: &Path, shown: &mut Stream) -> Result<()> {
    let new = dir.join("new");
    let cur = dir.join("cur");
    if !new.is_dir() {
        anyhow::bail!(
            "`{}` is not a Maildir: it has no `new` folder",
            dir.display()
        );
    }
    std::fs::create_dir_all(&cur)
        .with_context(|| format!("could not create `{}`", cur.display()))?;
    let mut after: Option<OsString> = None;
    loop {
        let names = next_names(&new, after.as_ref())?;
        let Some(last) = names.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        for name in names {
            receive_file(app, &new, &cur, name, shown)?;
        }
    }
}

/// How many names of `new` one pass over it takes: a bound on the memory
/// a Maildir of any size needs, at a few passes per ten thousand messages.
const NAMES_PER_PASS: usize = 2048;

/// The first `NAMES_PER_PASS` names in `new` that sort after `after`, in
/// order: the messages' files (not hidden ones).
fn next_names(new: &Path, after: Option<&OsString>) -> Result<Vec<OsString>> {
    let mut first: BinaryHeap<OsString> = BinaryHeap::with_capacity(NAMES_PER_PASS + 1);
    let entries =
        std::fs::read_dir(new).with_context(|| format!("could not read `{}`", new.display()))?;
    for entry in entries.filter_map(|entry| entry.ok()) {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") || after.is_some_and(|a| name <= *a) {
            continue;
        }
        if first.len() == NAMES_PER_PASS {
            if first.peek().is_some_and(|largest| name >= *largest) {
                continue;
            }
            first.pop();
        }
        first.push(name);
    }
    Ok(first.into_sorted_vec())
}

/// Handles the message in `new/name`, moves it to `cur` and shows it.
fn receive_file(
    app: &mut App,
    new: &Path,
    cur: &Path,
    name: OsString,
    shown: &mut Stream,
) -> Result<()> {
    let path = new.join(&name);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        // Another reader took it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| format!("could not read `{}`", path.display()));
        }
    };
    let size = file.metadata().ok().map(|m| m.len());
    let input =
        read_capped(file, size).with_context(|| format!("could not read `{}`", path.display()))?;
    let done = match handle(app, &input) {
        Ok(done) => done,
        Err(Failure::NotAMessage(why)) => {
            let reason = format!("not a mail message: {why}");
            let now = crate::clock::now_ms();
            app.store.in_tx(|tx| {
                received::record(
                    tx,
                    &NewReceived {
                        message_id: None,
                        action: Action::Refused,
                        ticket_id: None,
                        reason: Some(&reason),
                        from: None,
                        subject: None,
                        at: now,
                    },
                )
            })?;
            Handled {
                action: Action::Refused,
                ticket_id: None,
                message_id: None,
                reason: Some(reason),
            }
        }
        Err(Failure::Later(err)) => return Err(err),
    };
    let mut target = name.clone();
    if !name.to_string_lossy().contains(":2,") {
        target.push(":2,");
    }
    std::fs::rename(&path, cur.join(&target))
        .with_context(|| format!("could not move `{}` to `{}`", path.display(), cur.display()))?;
    shown.item(&done)
}

// ---- list ----------------------------------------------------------------------------------

#[derive(Serialize)]
struct ReceivedItem {
    id: i64,
    at: Time,
    action: Action,
    ticket_id: Option<classify::TicketId>,
    message_id: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    reason: Option<String>,
}

#[derive(Serialize)]
#[serde(transparent)]
struct ReceivedList {
    items: Vec<ReceivedItem>,
}

impl View for ReceivedList {
    fn table(&self) -> Option<Table> {
        let mut table = Table::new(&["AT", "ACTION", "TICKET", "FROM", "SUBJECT", "REASON"])
            .text_columns(&["FROM", "SUBJECT", "REASON"]);
        for item in &self.items {
            table.row(vec![
                item.at.to_string(),
                item.action.to_string(),
                item.ticket_id.map(|t| format!("#{t}")).unwrap_or_default(),
                item.from.clone().unwrap_or_default(),
                item.subject.clone().unwrap_or_default(),
                item.reason.clone().unwrap_or_default(),
            ]);
        }
        Some(table)
    }

    fn human(&self) -> String {
        if self.items.is_empty() {
            "no received mail".into()
        } else {
            String::new()
        }
    }
}

fn list(app: &mut App, args: &ListReceivedArgs) -> Result<Exit> {
    let rows = received::list(app.store.conn(), args.action, args.limit)?;
    let items = rows
        .into_iter()
        .map(|r| ReceivedItem {
            id: r.id,
            at: Time(r.at),
            action: r.action,
            ticket_id: r.ticket_id,
            message_id: r.message_id,
            from: r.from,
            subject: r.subject,
            reason: r.reason,
        })
        .collect();
    app.out.show(&ReceivedList { items })?;
    Ok(Exit::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maildir_is_read_in_passes_of_names_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        std::fs::create_dir_all(new.join("sub")).unwrap();
        std::fs::write(new.join(".hidden"), "").unwrap();
        let count = NAMES_PER_PASS + 50;
        // Created out of order; names sort as numbers do (zero-padded).
        for i in (0..count).rev() {
            std::fs::write(new.join(format!("{i:06}.m")), "").unwrap();
        }
        let mut seen: Vec<OsString> = Vec::new();
        let mut passes = Vec::new();
        loop {
            let names = next_names(&new, seen.last()).unwrap();
            if names.is_empty() {
                break;
            }
            passes.push(names.len());
            seen.extend(names);
        }
        assert_eq!(passes, [NAMES_PER_PASS, 50]);
        let expected: Vec<OsString> = (0..count).map(|i| format!("{i:06}.m").into()).collect();
        assert_eq!(seen, expected);
    }
}
