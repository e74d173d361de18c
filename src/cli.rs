//! The command line, as clap derive types and nothing else: every `///` line
//! here is the text `--help` prints. Parsing values that clap can check (enums,
//! numbers) happens here so that bad values are usage errors (status 2);
//! checks that need the database or the configuration live in `commands/`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::{NotificationId, Priority, Purpose, ReceivedAction, Status, TicketId};

/// Help desk tickets that reach the right people at once, in the app and by email.
#[derive(Debug, Parser)]
#[command(name = "helpdesk", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Configuration file [default: ./helpdesk.toml, then $XDG_CONFIG_HOME/helpdesk/helpdesk.toml]
    #[arg(long, global = true, env = "HELPDESK_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// SQLite database file or postgresql:// URL, overriding `database` in the configuration
    #[arg(long, global = true, env = "HELPDESK_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Print results as a table for people or as one JSON document for scripts
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print only errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: summaries even when not on a terminal
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented helpdesk.toml (if there is none) and create the database
    Init,
    /// Set up a demo folder (file transport, a developer, a manager, a ticket) and show the manager's inbox
    Demo(DemoArgs),
    /// Add, list and change users and their direct permissions
    #[command(subcommand)]
    User(UserCommand),
    /// Manage groups, their permissions and their members
    #[command(subcommand)]
    Group(GroupCommand),
    /// Create, list, show, update and comment on tickets
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// Show a user's in-app notifications, newest first, or mark them read
    Inbox(InboxArgs),
    /// Send queued email and look after the queue
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Receive email: replies become comments, mail to the help desk opens tickets, bounces stop mail to dead addresses
    #[command(subcommand)]
    Mail(MailCommand),
    /// Check the configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work on the database as a whole (copy it to another)
    #[command(subcommand)]
    Db(DbCommand),
    /// Print a shell completion script
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder to create the demo in
    #[arg(default_value = "helpdesk-demo")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective values (secrets redacted) and warnings
    Check,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy the whole help desk, IDs kept, into an empty database (a SQLite file or a postgresql:// URL)
    Copy(DbCopyArgs),
}

#[derive(Debug, Args)]
pub struct DbCopyArgs {
    /// The database to copy into: a SQLite file (made if missing) or an empty PostgreSQL database
    #[arg(long, value_name = "URL_OR_PATH")]
    pub to: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user
    Add(AddUserArgs),
    /// List users
    List,
    /// Show one user with their groups and permissions
    Show(UsernameArg),
    /// Deactivate a user: they keep their data but are no longer notified
    Deactivate(UsernameArg),
    /// Activate a user again
    Activate(UsernameArg),
    /// Grant a permission directly to a user
    Grant(UserPermArgs),
    /// Revoke a permission granted directly to a user
    Revoke(UserPermArgs),
    /// Show or set how a user hears about each event
    Prefs(PrefsArgs),
}

#[derive(Debug, Args)]
pub struct AddUserArgs {
    /// Login name (letters, digits, and . _ - @ +)
    pub username: String,
    /// Email address
    #[arg(long)]
    pub email: String,
    /// Full name, as shown in emails
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").multiple(true).args(["email", "app"])))]
pub struct PrefsArgs {
    /// Login name of the user
    pub username: String,
    /// Only this event (without it: every event)
    #[arg(long, value_enum, requires = "change")]
    pub event: Option<crate::notify::EventKind>,
    /// How email comes: at once, in the daily digest, or not at all
    #[arg(long, value_enum)]
    pub email: Option<crate::model::EmailMode>,
    /// Whether in-app notifications are written
    #[arg(long, value_enum)]
    pub app: Option<crate::model::Switch>,
}

#[derive(Debug, Args)]
pub struct UsernameArg {
    /// Login name of the user
    pub username: String,
}

#[derive(Debug, Args)]
pub struct UserPermArgs {
    /// Login name of the user
    pub username: String,
    /// Permission name
    #[arg(value_enum)]
    pub permission: Permission,
}

/// The permissions on tickets, with Django's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Permission {
    #[value(name = "add_helpdeskticket")]
    Add,
    #[value(name = "change_helpdeskticket")]
    Change,
    #[value(name = "delete_helpdeskticket")]
    Delete,
    #[value(name = "view_helpdeskticket")]
    View,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Add => "add_helpdeskticket",
            Permission::Change => "change_helpdeskticket",
            Permission::Delete => "delete_helpdeskticket",
            Permission::View => "view_helpdeskticket",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Add a group, optionally with permissions
    Add(AddGroupArgs),
    /// List groups with their permissions and members
    List,
    /// Grant a permission to a group
    Grant(GroupPermArgs),
    /// Revoke a permission from a group
    Revoke(GroupPermArgs),
    /// Add a user to a group
    AddUser(GroupMemberArgs),
    /// Remove a user from a group
    RemoveUser(GroupMemberArgs),
}

#[derive(Debug, Args)]
pub struct AddGroupArgs {
    /// Group name
    pub name: String,
    /// Permission to grant (repeatable)
    #[arg(long = "perm", value_enum)]
    pub perms: Vec<Permission>,
}

#[derive(Debug, Args)]
pub struct GroupPermArgs {
    /// Group name
    pub name: String,
    /// Permission name
    #[arg(value_enum)]
    pub permission: Permission,
}

#[derive(Debug, Args)]
pub struct GroupMemberArgs {
    /// Group name
    pub name: String,
    /// Login name of the user
    pub username: String,
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Create a ticket and notify developers and managers
    Create(CreateTicketArgs),
    /// List tickets, newest first
    List(ListTicketsArgs),
    /// Show one ticket with its notifications, comments and history
    Show(TicketIdArg),
    /// Change a ticket's status or priority, and notify the people involved
    Update(UpdateTicketArgs),
    /// Comment on a ticket, and notify the people involved
    Comment(CommentTicketArgs),
    /// Assign a ticket to a user (or to nobody), and notify the people involved
    Assign(AssignTicketArgs),
    /// Make a user watch a ticket: they hear about every change
    Watch(WatchTicketArgs),
    /// Stop a user watching a ticket
    Unwatch(WatchTicketArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("whom").required(true).args(["to", "none"])))]
pub struct AssignTicketArgs {
    /// Ticket number (`12` or `#12`)
    #[arg(value_parser = ticket_id)]
    pub id: TicketId,
    /// The active user who takes the ticket
    #[arg(long, value_name = "USER")]
    pub to: Option<String>,
    /// Leave the ticket with nobody
    #[arg(long)]
    pub none: bool,
    /// The user making the change
    #[arg(long, value_name = "USER")]
    pub by: String,
}

#[derive(Debug, Args)]
pub struct WatchTicketArgs {
    /// Ticket number (`12` or `#12`)
    #[arg(value_parser = ticket_id)]
    pub id: TicketId,
    /// The user who watches
    #[arg(long, value_name = "USER")]
    pub user: String,
}

#[derive(Debug, Args)]
pub struct CreateTicketArgs {
    /// The user who opens the ticket
    #[arg(long, value_name = "USER")]
    pub created_by: String,
    /// What the ticket is about
    #[arg(long, value_enum, ignore_case = true)]
    pub purpose: Purpose,
    /// How urgent it is
    #[arg(long, value_enum, ignore_case = true)]
    pub priority: Priority,
    /// What happened; `-` reads it from standard input (at most 1 MiB)
    #[arg(long, value_name = "TEXT|-")]
    pub description: OsString,
}

#[derive(Debug, Args)]
pub struct ListTicketsArgs {
    /// Only tickets with this status
    #[arg(long, value_enum, ignore_case = true)]
    pub status: Option<Status>,
    /// Only tickets with this priority
    #[arg(long, value_enum, ignore_case = true)]
    pub priority: Option<Priority>,
    /// Only tickets assigned to this user, or (`none`) to nobody
    #[arg(long, value_name = "USER|none")]
    pub assignee: Option<String>,
}

#[derive(Debug, Args)]
pub struct TicketIdArg {
    /// Ticket number (`12` or `#12`)
    #[arg(value_parser = ticket_id)]
    pub id: TicketId,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["status", "priority"])))]
pub struct UpdateTicketArgs {
    /// Ticket number (`12` or `#12`)
    #[arg(value_parser = ticket_id)]
    pub id: TicketId,
    /// The user making the change
    #[arg(long, value_name = "USER")]
    pub by: String,
    /// New status
    #[arg(long, value_enum, ignore_case = true)]
    pub status: Option<Status>,
    /// New priority
    #[arg(long, value_enum, ignore_case = true)]
    pub priority: Option<Priority>,
}

#[derive(Debug, Args)]
pub struct CommentTicketArgs {
    /// Ticket number (`12` or `#12`)
    #[arg(value_parser = ticket_id)]
    pub id: TicketId,
    /// The user commenting
    #[arg(long, value_name = "USER")]
    pub by: String,
    /// The comment; `-` reads it from standard input (at most 1 MiB)
    #[arg(long, value_name = "TEXT|-")]
    pub body: OsString,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct InboxArgs {
    #[command(subcommand)]
    pub command: Option<InboxCommand>,
    /// Whose inbox
    #[arg(long, required = true)]
    pub user: Option<String>,
    /// Only unread notifications
    #[arg(long)]
    pub unread: bool,
    /// At most this many notifications
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// Mark the notifications shown as read
    #[arg(long)]
    pub mark_read: bool,
}

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Mark notifications read
    Read(InboxReadArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "all"])))]
pub struct InboxReadArgs {
    /// Whose notifications
    #[arg(long)]
    pub user: String,
    /// Notification IDs (`12` or `#12`)
    #[arg(value_parser = notification_id)]
    pub ids: Vec<NotificationId>,
    /// Every unread notification of the user
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send due email through the configured transport (safe from cron, safe when runs overlap)
    Flush(FlushArgs),
    /// List notifications in the queue
    List(ListNotificationsArgs),
    /// Show one notification with its attempts and the server's replies
    Show(NotificationIdArg),
    /// Put failed notifications back in the queue, with their attempt count reset
    Retry(RetryArgs),
    /// Delete sent and failed email and read in-app notifications older than a duration (never unread or due ones)
    Purge(PurgeArgs),
    /// Send one test email through the configured transport
    Test(TestMailArgs),
    /// Counts per state, the oldest due email and the last completed flush
    Status(StatusArgs),
    /// List the addresses that get no email (a permanent bounce put them there)
    Suppressed,
    /// Let an address get email again
    Unsuppress(AddressArg),
    /// Turn each user's held email into one digest email, queued for the next flush (safe from cron)
    Digest,
    /// Say why a notification exists: the event, the rule and audience, the preference
    Why(NotificationIdArg),
    /// Print an event's email exactly as it would be sent, from the current templates; sends and writes nothing
    Preview(PreviewArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("part").args(["html", "text"])))]
pub struct PreviewArgs {
    /// The event whose email to show
    #[arg(long, value_enum, ignore_case = true)]
    pub event: crate::model::EventKind,
    /// This ticket's facts (its latest event of that kind, else the ticket as it stands); without it, a sample ticket
    #[arg(long, value_parser = ticket_id)]
    pub ticket: Option<TicketId>,
    /// Address it to this user (with the footer's reason for them); without it, a sample recipient
    #[arg(long)]
    pub user: Option<String>,
    /// Print only the HTML part, decoded
    #[arg(long)]
    pub html: bool,
    /// Print only the text part, decoded
    #[arg(long)]
    pub text: bool,
}

#[derive(Debug, Args)]
pub struct AddressArg {
    /// The email address
    pub address: String,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Handle one message from standard input (a mail server's pipe, procmail, fetchmail --mda), or every message in a Maildir
    ///
    /// Exit status, as mail servers read it: 0 handled (whatever became of
    /// it), 65 not a mail message, 75 not handled now (database busy or
    /// unreachable): the server keeps the message and tries again.
    Receive(ReceiveArgs),
    /// Show received messages and what became of them, newest first
    List(ListReceivedArgs),
}

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// Handle every message in DIR/new, moving each to DIR/cur once handled
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListReceivedArgs {
    /// Only messages that became this
    #[arg(long, value_enum, ignore_case = true)]
    pub action: Option<ReceivedAction>,
    /// At most this many, newest first
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct FlushArgs {
    /// Send at most this many emails in this run
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Show what would be sent; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Stop claiming after this long (e.g. 50s), finish the message in flight, release the rest
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_time: Option<std::time::Duration>,
    /// SMTP connections sending in parallel, each with its own claimed batches
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Args)]
pub struct ListNotificationsArgs {
    /// Only notifications in this state
    #[arg(long, value_enum, ignore_case = true)]
    pub status: Option<crate::model::NotificationStatus>,
    /// Only this channel
    #[arg(long, value_enum, ignore_case = true)]
    pub channel: Option<crate::model::Channel>,
    /// At most this many, newest first
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct NotificationIdArg {
    /// Notification ID (`12` or `#12`)
    #[arg(value_parser = notification_id)]
    pub id: NotificationId,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["ids", "failed"])))]
pub struct RetryArgs {
    /// Notification IDs (`12` or `#12`)
    #[arg(value_parser = notification_id)]
    pub ids: Vec<NotificationId>,
    /// Every failed email notification
    #[arg(long)]
    pub failed: bool,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Age, written like 45s, 90m, 12h or 30d
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: std::time::Duration,
    /// Only this channel
    #[arg(long, value_enum, ignore_case = true)]
    pub channel: Option<crate::model::Channel>,
    /// Show how many would be deleted; delete nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct TestMailArgs {
    /// Address to send the test email to
    #[arg(long)]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Exit 1 when email is due and no flush has completed within --max-age
    #[arg(long, requires = "max_age")]
    pub check: bool,
    /// How long ago the last completed flush may be, like 10m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_age: Option<std::time::Duration>,
}

/// A ticket or notification ID as listings print it (`#12`) or bare (`12`).
/// Any whole number is well-formed (one that names nothing is the command's
/// error, status 1); anything else is wrong usage.
pub fn parse_id(text: &str) -> Result<i64, String> {
    let number = text.strip_prefix('#').unwrap_or(text);
    match number.parse::<i64>() {
        Ok(id) if !number.starts_with('+') => Ok(id),
        _ => Err(format!(
            "`{}` is not an ID: write a number such as 12 or #12",
            text.escape_debug()
        )),
    }
}

/// A ticket number, written as `parse_id` reads it.
pub fn ticket_id(text: &str) -> Result<TicketId, String> {
    parse_id(text).map(TicketId)
}

/// A notification ID, written as `parse_id` reads it.
pub fn notification_id(text: &str) -> Result<NotificationId, String> {
    parse_id(text).map(NotificationId)
}

/// Durations as the SPEC writes them: a whole number and one unit of s, m, h or d.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || {
        format!(
            "`{text}` is not a duration: write a whole number and a unit, like 45s, 90m, 12h or 30d"
        )
    };
    let unit = text.chars().last().ok_or_else(bad)?;
    let digits = &text[..text.len() - unit.len_utf8()];
    // Digits only: `parse` alone would also take a leading `+`.
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let seconds = match unit {
        's' => Some(number),
        'm' => number.checked_mul(60),
        'h' => number.checked_mul(3600),
        'd' => number.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok(std::time::Duration::from_secs(seconds))
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ids_take_an_optional_hash() {
        assert_eq!(parse_id("12"), Ok(12));
        assert_eq!(parse_id("#12"), Ok(12));
        // Well-formed, though nothing has it: the command says so (status 1).
        assert_eq!(parse_id("-5"), Ok(-5));
        for bad in [
            "",
            "#",
            "##12",
            "+3",
            "12a",
            " 12",
            "1.5",
            "99999999999999999999",
        ] {
            assert!(parse_id(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("45s").unwrap().as_secs(), 45);
        assert_eq!(parse_duration("90m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("12h").unwrap().as_secs(), 43_200);
        assert_eq!(parse_duration("30d").unwrap().as_secs(), 2_592_000);
        for bad in ["", "d", "10", "1w", "-5m", "1.5h", "5 m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
