//! One match from the command line to the function that runs it. Command
//! functions turn arguments into store and notify calls and return views;
//! they hold no SQL, no table cells and no SMTP.

mod config;
mod db;
mod demo;
mod digest;
mod group;
mod inbox;
mod init;
mod mail;
mod notify;
mod ownership;
mod prefs;
mod preview;
mod ticket;
mod user;
mod why;

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::app::App;
use crate::cli::{Cli, Command, CompletionsArgs};
use crate::error::explain_store_error;
use crate::output::Output;

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Done,
    /// A flush ran but left some email deferred or failed (exit 3).
    Incomplete,
    /// A flush stopped by a signal: 130 (SIGINT) or 143 (SIGTERM).
    Signalled(u8),
    /// `mail receive`'s sysexits status for a mail server: 65 not a
    /// message, 75 try again later.
    Sysexit(u8),
}

impl From<Exit> for ExitCode {
    fn from(status: Exit) -> ExitCode {
        match status {
            Exit::Done => ExitCode::SUCCESS,
            Exit::Incomplete => ExitCode::from(3),
            Exit::Signalled(code) | Exit::Sysexit(code) => ExitCode::from(code),
        }
    }
}

pub fn run(cli: Cli) -> Result<Exit> {
    let out = Output::new(&cli.global);
    match cli.command {
        Command::Completions(args) => completions(&args),
        Command::Init => init::run(&cli.global, &out),
        Command::Demo(args) => demo::run(&args, &out),
        Command::Config(cmd) => config::run(&cli.global, out, cmd),
        Command::Mail(cmd) => mail::run(&cli.global, out, cmd),
        command => {
            let mut app = App::load(&cli.global, out)?;
            let database = app.config.database.clone();
            let result = match command {
                Command::User(cmd) => user::run(&mut app, cmd),
                Command::Group(cmd) => group::run(&mut app, cmd),
                Command::Ticket(cmd) => ticket::run(&mut app, cmd),
                Command::Inbox(args) => inbox::run(&mut app, args),
                Command::Notify(cmd) => notify::run(&mut app, cmd),
                Command::Db(cmd) => db::run(&mut app, cmd),
                Command::Completions(_)
                | Command::Init
                | Command::Demo(_)
                | Command::Config(_)
                | Command::Mail(_) => {
                    unreachable!("handled before the database is opened")
                }
            };
            result.map_err(|err| explain_store_error(err, Some(&database)))
        }
    }
}

fn completions(args: &CompletionsArgs) -> Result<Exit> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    // Into a buffer first: clap_complete panics on a closed pipe, our printer does not.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "helpdesk", &mut script);
    crate::output::print_stdout(&String::from_utf8_lossy(&script))?;
    Ok(Exit::Done)
}

/// Largest description or comment accepted.
const MAX_TEXT_BYTES: usize = 1_048_576;

/// A description or comment from the command line (`-` reads standard
/// input): valid UTF-8, not blank, at most 1 MiB.
fn read_text(what: &str, value: &std::ffi::OsStr) -> Result<String> {
    let bytes = if value == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_TEXT_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("could not read the {what} from standard input"))?;
        bytes
    } else {
        value.as_encoded_bytes().to_vec()
    };
    if bytes.len() > MAX_TEXT_BYTES {
        bail!("the {what} is longer than 1 MiB (1,048,576 bytes)");
    }
    let text =
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("the {what} is not valid UTF-8"))?;
    if text.trim().is_empty() {
        bail!("the {what} is blank");
    }
    if text.contains('\0') {
        bail!("the {what} contains a NUL character");
    }
    Ok(text)
}

/// The user with this name, active or not, or an error that says how to
/// fix it (`no user named …`): every command that takes a username asks here.
fn user_named(conn: &dyn crate::store::Db, username: &str) -> Result<crate::store::users::User> {
    crate::store::users::by_username(conn, username)?.ok_or_else(|| no_such_user(username))
}

/// The active user with this name, or an error that says how to fix it.
fn active_user(app: &App, username: &str) -> Result<crate::store::users::User> {
    let user = user_named(app.store.conn(), username)?;
    if !user.active {
        let username = crate::output::cell(username, 60);
        return Err(crate::error::hinted(
            format!("user `{username}` is deactivated"),
            format!("activate them with `helpdesk user activate {username}`"),
        ));
    }
    Ok(user)
}

fn no_such_user(username: &str) -> anyhow::Error {
    // The name is user input: shown made safe, so it cannot forge lines of its own.
    let username = crate::output::cell(username, 60);
    crate::error::hinted(
        format!("no user named `{username}`"),
        format!(
            "list users with `helpdesk user list`, or add one with `helpdesk user add {username} --email …`"
        ),
    )
}
