//! `helpdesk notify …`: flush the email queue, and the operator's view of it
//! (list, show, retry, purge, test, status).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::Exit;
use crate::app::App;
use crate::cli::{
    FlushArgs, ListNotificationsArgs, NotifyCommand, PurgeArgs, RetryArgs, StatusArgs, TestMailArgs,
};
use crate::model::{Channel, NotificationStatus};
use crate::notify::flush::{self, ProblemKind, Report};
use crate::notify::transport::{self, Outcome};
use crate::notify::{message, policy};
use crate::output::{Table, Time, View, cell, print_stderr};
use crate::store::notifications::{self, QueueRow};
use crate::store::{now_ms, suppressions};

pub fn run(app: &mut App, command: NotifyCommand) -> Result<Exit> {
    match command {
        NotifyCommand::Flush(args) => flush(app, &args),
        NotifyCommand::List(args) => list(app, &args),
        NotifyCommand::Show(args) => show(app, args.id),
        NotifyCommand::Retry(args) => retry(app, &args),
        NotifyCommand::Purge(args) => purge(app, &args),
        NotifyCommand::Test(args) => test(app, &args),
        NotifyCommand::Status(args) => status(app, &args),
        NotifyCommand::Suppressed => suppressed(app),
        NotifyCommand::Unsuppress(args) => unsuppress(app, &args.address),
        NotifyCommand::Digest => super::digest::run(app),
        NotifyCommand::Why(args) => super::why::run(app, args.id),
        NotifyCommand::Preview(args) => super::preview::run(app, &args),
    }
}

// ---- flush ---------------------------------------------------------------------------------

#[derive(Serialize)]
struct FlushView {
    sent: u64,
    deferred: u64,
    failed: u64,
    claimed: u64,
    #[serde(skip)]
    summary: String,
}

impl View for FlushView {
    fn human(&self) -> String {
        self.summary.clone()
    }
}

/// `notify flush --dry-run`: what a flush would do now, changing nothing.
/// The JSON keeps a flush's counts (all 0) beside `would_send`.
#[derive(Serialize)]
struct DryRunView {
    sent: u64,
    deferred: u64,
    failed: u64,
    claimed: u64,
    would_send: Vec<DryRunItem>,
}

#[derive(Serialize)]
struct DryRunItem {
    #[serde(flatten)]
    item: QueueItem,
    /// The ticket's title.
    title: String,
    /// Where it would go: `to`, or `development_email` in debug mode.
    deliver_to: String,
    /// `suppressed: <reason>`: the flush would fail it without sending.
    suppressed: Option<String>,
}

impl View for DryRunView {
    fn table(&self) -> Option<Table> {
        let mut table = Table::new(&["ID", "TO", "TICKET", "SUBJECT", "NOT SENT"])
            .text_columns(&["TO", "SUBJECT", "NOT SENT"]);
        for row in &self.would_send {
            table.row(vec![
                row.item.id.to_string(),
                row.deliver_to.clone(),
                format!("#{}", row.item.ticket_id),
                row.title.clone(),
                row.suppressed.clone().unwrap_or_default(),
            ]);
        }
        Some(table)
    }

    fn human(&self) -> String {
        let suppressed = self
            .would_send
            .iter()
            .filter(|row| row.suppressed.is_some())
            .count();
        let sent = self.would_send.len() - suppressed;
        match (sent, suppressed) {
            (0, 0) => "dry run: nothing is due".into(),
            (_, 0) => format!("dry run: {sent} would be sent; nothing was changed"),
            _ => format!(
                "dry run: {sent} would be sent, {suppressed} would fail as suppressed; nothing was changed"
            ),
        }
    }
}

fn dry_run(app: &mut App, args: &FlushArgs, now: i64) -> Result<Exit> {
    let limit = args
        .limit
        .unwrap_or(u64::from(u32::MAX))
        .min(u64::from(u32::MAX)) as u32;
    let conn = app.store.conn();
    let due = notifications::due_preview(conn, now, limit)?;
    let list = suppressions::List::load(conn)?;
    let would_send = due
        .iter()
        .map(|row| {
            let to = row.to_addr.as_deref().unwrap_or_default();
            DryRunItem {
                item: QueueItem::of(row),
                title: row.title.clone(),
                deliver_to: app.config.delivery_address(to).to_string(),
                suppressed: policy::suppressed(&app.config, &list, to),
            }
        })
        .collect();
    app.out.show(&DryRunView {
        sent: 0,
        deferred: 0,
        failed: 0,
        claimed: 0,
        would_send,
    })?;
    Ok(Exit::Done)
}

fn flush(app: &mut App, args: &FlushArgs) -> Result<Exit> {
    let now = now_ms();
    if args.dry_run {
        return dry_run(app, args, now);
    }
    let started = Instant::now();
    let interactive = app.out.stdout_tty || app.out.verbose;
    // The every-minute no-op path: one indexed query, no transport, no templates.
    let (report, signal) = if notifications::due_exists(app.store.conn(), now)? {
        let (stop, signal) = stop_on_signals()?;
        let bar = progress_bar(app, now)?;
        let on_progress = |report: &Report| {
            if let Some(bar) = &bar {
                bar.set_position(report.sent + report.deferred + report.failed);
            }
        };
        let options = flush::Options {
            limit: args.limit,
            max_time: args.max_time,
            concurrency: args.concurrency,
            stop: Some(stop),
        };
        let report = flush::run(
            &mut app.store,
            &app.config,
            &app.env,
            &options,
            &on_progress,
        )?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        (report, signal.load(Ordering::Relaxed))
    } else {
        (Report::default(), 0)
    };
    for line in problem_lines(&report) {
        print_stderr(&line);
    }
    let summary = format!(
        "sent {}, deferred {}, failed {} in {:.2} s",
        report.sent,
        report.deferred,
        report.failed,
        started.elapsed().as_secs_f64()
    );
    let view = FlushView {
        sent: report.sent,
        deferred: report.deferred,
        failed: report.failed,
        claimed: report.claimed,
        summary,
    };
    // Cron mails whatever a job prints: quiet off a terminal, unless asked.
    if app.out.json() || (interactive && !app.out.quiet) {
        app.out.show(&view)?;
    }
    if report.interrupted {
        print_stderr(&format!(
            "interrupted: sent {}, handed back {} to the queue",
            report.sent, report.released
        ));
        let code = if signal == signal_hook::consts::SIGTERM as usize {
            143
        } else {
            130
        };
        return Ok(Exit::Signalled(code));
    }
    Ok(if report.deferred + report.failed > 0 {
        Exit::Incomplete
    } else {
        Exit::Done
    })
}

/// SIGINT and SIGTERM for a flush: the first sets the returned flag (and
/// which signal it was), so the run stops claiming, finishes the message in
/// flight and hands the rest back; a second ends the process at once (its
/// leases then expire as after a kill).
fn stop_on_signals() -> Result<(Arc<AtomicBool>, Arc<AtomicUsize>)> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    let signal = Arc::new(AtomicUsize::new(0));
    for (number, status) in [(SIGINT, 130), (SIGTERM, 143)] {
        // In this order: a handler runs its actions as registered, so the
        // first signal finds `stop` unset and only the second exits.
        signal_hook::flag::register_conditional_shutdown(number, status, Arc::clone(&stop))
            .and_then(|_| {
                signal_hook::flag::register_usize(number, Arc::clone(&signal), number as usize)
            })
            .and_then(|_| signal_hook::flag::register(number, Arc::clone(&stop)))
            .context("could not set up the signal handlers")?;
    }
    Ok((stop, signal))
}

/// What a flush says on stderr: one line for an unreachable server, however
/// many emails it deferred, and one per email deferred or failed on its own.
fn problem_lines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(outage) = &report.outage {
        lines.push(format!(
            "{} unreachable ({}): {} deferred, next try at {}",
            outage.server.server,
            outage.server.why(),
            match outage.deferred {
                1 => "1 email".to_string(),
                n => format!("{n} emails"),
            },
            crate::output::clock_time(outage.next_try_at)
        ));
    }
    for problem in &report.problems {
        // The reason is the server's text: one clean line.
        lines.push(format!(
            "email {} to {} {}: {}",
            problem.id,
            problem.to,
            match problem.kind {
                ProblemKind::Deferred => "deferred",
                ProblemKind::Failed => "failed",
            },
            cell(&problem.reason, 1000)
        ));
    }
    lines
}

/// A progress bar on stderr, only when a person is watching.
fn progress_bar(app: &App, now: i64) -> Result<Option<indicatif::ProgressBar>> {
    if !app.out.stderr_tty || app.out.quiet || app.out.json() {
        return Ok(None);
    }
    let total = notifications::due_count(app.store.conn(), now)?;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} emails, {rate}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            // Whole emails per second: `719/s`, not indicatif's `719.0836/s`.
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            ),
    );
    Ok(Some(bar))
}

// ---- list, show ----------------------------------------------------------------------------

#[derive(Serialize)]
struct QueueItem {
    id: crate::model::NotificationId,
    channel: Channel,
    user: String,
    to: Option<String>,
    ticket_id: crate::model::TicketId,
    status: NotificationStatus,
    attempts: i64,
    next_attempt_at: Option<Time>,
    last_error: Option<String>,
}

impl QueueItem {
    fn of(row: &QueueRow) -> QueueItem {
        QueueItem {
            id: row.id,
            channel: row.channel,
            user: row.username.clone(),
            to: row.to_addr.clone(),
            ticket_id: row.ticket_id,
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: row
                .next_attempt_at
                .filter(|_| row.status == NotificationStatus::Errored)
                .map(Time),
            last_error: row.last_error.clone(),
        }
    }
}

#[derive(Serialize)]
#[serde(transparent)]
struct QueueList {
    items: Vec<QueueItem>,
}

impl View for QueueList {
    fn table(&self) -> Option<Table> {
        let mut table = Table::new(&[
            "ID",
            "CHANNEL",
            "USER",
            "TO",
            "TICKET",
            "STATUS",
            "TRIES",
            "NEXT TRY",
            "LAST ERROR",
        ])
        .text_columns(&["USER", "TO", "LAST ERROR"]);
        for item in &self.items {
            table.row(vec![
                item.id.to_string(),
                item.channel.to_string(),
                item.user.clone(),
                item.to.clone().unwrap_or_default(),
                format!("#{}", item.ticket_id),
                item.status.as_str().to_string(),
                item.attempts.to_string(),
                item.next_attempt_at
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                item.last_error.clone().unwrap_or_default(),
            ]);
        }
        Some(table)
    }

    fn human(&self) -> String {
        if self.items.is_empty() {
            "no notifications".into()
        } else {
            String::new()
        }
    }
}

fn list(app: &mut App, args: &ListNotificationsArgs) -> Result<Exit> {
    let rows = notifications::list(app.store.conn(), args.status, args.channel, args.limit)?;
    app.out.show(&QueueList {
        items: rows.iter().map(QueueItem::of).collect(),
    })?;
    Ok(Exit::Done)
}

#[derive(Serialize)]
struct AttemptView {
    at: Time,
    outcome: String,
    reply: String,
}

#[derive(Serialize)]
struct NotificationView {
    #[serde(flatten)]
    item: QueueItem,
    title: String,
    message_id: Option<String>,
    created_at: Time,
    delivered_at: Option<Time>,
    /// While a flush holds the email (`processing`): when its claim expires
    /// and another flush may take it.
    #[serde(skip_serializing_if = "Option::is_none")]
    claim_expires_at: Option<Time>,
    attempt_log: Vec<AttemptView>,
}

impl View for NotificationView {
    fn human(&self) -> String {
        let i = &self.item;
        let mut out = vec![
            format!("notification {}", i.id),
            format!("channel:       {}", i.channel),
            format!("user:          {}", cell(&i.user, 200)),
            format!(
                "to:            {}",
                cell(i.to.as_deref().unwrap_or("-"), 200)
            ),
            format!("ticket:        #{}", i.ticket_id),
            format!("title:         {}", cell(&self.title, 200)),
            format!("status:        {}", i.status.as_str()),
        ];
        if let Some(at) = &self.claim_expires_at {
            out.push(format!("claim expires: {at}"));
        }
        out.push(format!("created:       {}", self.created_at));
        if let Some(at) = &self.delivered_at {
            out.push(format!("delivered:     {at}"));
        }
        if let Some(next) = &i.next_attempt_at {
            out.push(format!("next try:      {next}"));
        }
        if let Some(id) = &self.message_id {
            out.push(format!("message-id:    {}", cell(id, 200)));
        }
        if let Some(error) = &i.last_error {
            out.push(format!("last error:    {}", cell(error, 500)));
        }
        // The count, then the log of every attempt under it.
        out.push(format!("attempts:      {}", i.attempts));
        for a in &self.attempt_log {
            out.push(format!(
                "  {}  {:<13}  {}",
                a.at,
                a.outcome,
                cell(&a.reply, 500)
            ));
        }
        out.join("\n")
    }
}

fn show(app: &mut App, id: crate::model::NotificationId) -> Result<Exit> {
    let conn = app.store.conn();
    let row = notifications::by_id(conn, id)?.ok_or_else(|| {
        crate::error::hinted(
            format!("notification {id} does not exist"),
            "list them with `helpdesk notify list`",
        )
    })?;
    let attempt_log = notifications::attempts_of(conn, id)?
        .into_iter()
        .map(|a| AttemptView {
            at: Time(a.at),
            outcome: a.outcome,
            reply: a.reply,
        })
        .collect();
    let view = NotificationView {
        item: QueueItem::of(&row),
        title: row.title.clone(),
        message_id: row.message_id.clone(),
        created_at: Time(row.created_at),
        delivered_at: row.delivered_at.map(Time),
        claim_expires_at: notifications::lease_until(conn, id)?.map(Time),
        attempt_log,
    };
    app.out.show(&view)?;
    Ok(Exit::Done)
}

// ---- retry, purge --------------------------------------------------------------------------

#[derive(Serialize)]
struct CountView {
    #[serde(skip)]
    what: &'static str,
    count: usize,
    ids: Vec<crate::model::NotificationId>,
}

impl View for CountView {
    fn human(&self) -> String {
        format!("{} {}", self.what, self.count)
    }
}

fn retry(app: &mut App, args: &RetryArgs) -> Result<Exit> {
    let ids = app.store.in_tx(|tx| {
        let ids = if args.failed {
            notifications::failed_ids(tx)?
        } else {
            for &id in &args.ids {
                let row = notifications::by_id(tx, id)?.ok_or_else(|| anyhow::anyhow!("notification {id} does not exist; nothing was retried"))?;
                if row.channel != Channel::Email {
                    bail!("notification {id} is in-app: only email is retried; nothing was retried");
                }
                if !matches!(row.status, NotificationStatus::Failed | NotificationStatus::Errored) {
                    bail!("notification {id} is {}: only failed or errored email is retried; nothing was retried", row.status.as_str());
                }
            }
            args.ids.clone()
        };
        for &id in &ids {
            notifications::requeue(tx, id)?;
        }
        Ok(ids)
    })?;
    app.out.show(&CountView {
        what: "queued again:",
        count: ids.len(),
        ids,
    })?;
    Ok(Exit::Done)
}

#[derive(Serialize)]
struct PurgeView {
    dry_run: bool,
    /// How many were (or would be) deleted.
    count: u64,
    /// The same, per channel and status (in-app: `read`), for the channels purged.
    by_channel: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
}

impl View for PurgeView {
    fn human(&self) -> String {
        let mut parts = Vec::new();
        for (channel, label, statuses) in [
            ("email", "email", &["sent", "failed"][..]),
            ("app", "in-app", &["read"][..]),
        ] {
            if let Some(counts) = self.by_channel.get(channel) {
                let counts: Vec<String> = statuses
                    .iter()
                    .map(|status| format!("{status} {}", counts.get(status).unwrap_or(&0)))
                    .collect();
                parts.push(format!("{label} {}", counts.join(", ")));
            }
        }
        let what = format!("{} notifications ({})", self.count, parts.join("; "));
        if self.dry_run {
            format!("would purge {what}\ndry run: nothing was deleted")
        } else {
            format!("purged {what}")
        }
    }
}

/// Deletes what is old and done with (SPEC §5): sent and failed email, read
/// in-app notifications; never an unread one, never email still due.
fn purge(app: &mut App, args: &PurgeArgs) -> Result<Exit> {
    let older_than = i64::try_from(args.older_than.as_millis()).unwrap_or(i64::MAX);
    let before = now_ms().saturating_sub(older_than);
    let purged = if args.dry_run {
        notifications::purgeable(app.store.conn(), before, args.channel)?
    } else {
        app.store
            .in_tx(|tx| notifications::purge(tx, before, args.channel))?
    };
    let mut by_channel = BTreeMap::new();
    if args.channel != Some(Channel::App) {
        by_channel.insert(
            Channel::Email.as_str(),
            BTreeMap::from([("sent", purged.email_sent), ("failed", purged.email_failed)]),
        );
    }
    if args.channel != Some(Channel::Email) {
        by_channel.insert(
            Channel::App.as_str(),
            BTreeMap::from([("read", purged.app_read)]),
        );
    }
    app.out.show(&PurgeView {
        dry_run: args.dry_run,
        count: purged.total(),
        by_channel,
    })?;
    Ok(Exit::Done)
}

// ---- test ----------------------------------------------------------------------------------

#[derive(Serialize)]
struct TestView {
    to: String,
    accepted: bool,
    reply: String,
}

impl View for TestView {
    fn human(&self) -> String {
        format!("test email to {} accepted: {}", self.to, self.reply)
    }
}

fn test(app: &mut App, args: &TestMailArgs) -> Result<Exit> {
    let requested = args.to.as_str();
    crate::address::parse_input("`--to`", requested)?;
    let mut transport = transport::from_config(&app.config, &app.env)?;
    let to = app.config.delivery_address(requested).to_string();
    if to != requested {
        app.out.note(&format!(
            "debug mode: sending to development_email {to} instead of {requested}"
        ));
    }
    let outgoing = message::test_message(&app.config, &to)?;
    let reply = match transport::send_one(transport.as_mut(), outgoing) {
        Outcome::Sent(reply) => reply,
        // Not a verdict on the message: the server was never reached, or stopped answering.
        Outcome::Unreachable { why, .. } => bail!("{}", why.reason()),
        Outcome::Deferred(reason) | Outcome::Failed(reason) => {
            bail!("the test email was not accepted: {reason}")
        }
        Outcome::NotSent => bail!("the test email was not sent"),
    };
    app.out.show(&TestView {
        to,
        accepted: true,
        reply,
    })?;
    Ok(Exit::Done)
}

// ---- status --------------------------------------------------------------------------------

#[derive(Serialize)]
struct LastFlush {
    finished_at: Time,
    claimed: u64,
    sent: u64,
    deferred: u64,
    failed: u64,
}

#[derive(Serialize)]
struct StatusView {
    email: BTreeMap<&'static str, i64>,
    in_app: BTreeMap<&'static str, i64>,
    due: u64,
    oldest_due_at: Option<Time>,
    /// When the next deferred email that is not due yet becomes due.
    next_due_at: Option<Time>,
    last_flush: Option<LastFlush>,
}

impl View for StatusView {
    fn human(&self) -> String {
        let line = |map: &BTreeMap<&'static str, i64>| {
            map.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = vec![format!("email:      {}", line(&self.email))];
        // After a purge there may be no in-app notification left to count.
        if !self.in_app.is_empty() {
            out.push(format!("in-app:     {}", line(&self.in_app)));
        }
        out.push(format!("due now:    {}", self.due));
        if let Some(at) = &self.oldest_due_at {
            out.push(format!("oldest due: {at}"));
        }
        if let Some(at) = &self.next_due_at {
            out.push(format!("next due:   {at}"));
        }
        match &self.last_flush {
            Some(f) => out.push(format!(
                "last flush: {} (sent {}, deferred {}, failed {})",
                f.finished_at, f.sent, f.deferred, f.failed
            )),
            None => out.push("last flush: none has sent anything yet".into()),
        }
        out.join("\n")
    }
}

fn status(app: &mut App, args: &StatusArgs) -> Result<Exit> {
    let conn = app.store.conn();
    let now = now_ms();
    let mut email = BTreeMap::new();
    let mut in_app = BTreeMap::new();
    for status in NotificationStatus::ALL {
        email.insert(status.as_str(), 0);
    }
    for (channel, status, count) in notifications::counts(conn)? {
        match channel {
            Channel::Email => email.insert(status.as_str(), count),
            Channel::App => in_app.insert(status.as_str(), count),
        };
    }
    let oldest = notifications::oldest_due(conn, now)?;
    let last = notifications::last_flush_run(conn)?;
    let view = StatusView {
        email,
        in_app,
        due: notifications::due_count(conn, now)?,
        oldest_due_at: oldest.map(Time),
        next_due_at: notifications::next_due_after(conn, now)?.map(Time),
        last_flush: last.as_ref().map(|f| LastFlush {
            finished_at: Time(f.finished_at),
            claimed: f.claimed,
            sent: f.sent,
            deferred: f.deferred,
            failed: f.failed,
        }),
    };
    app.out.show(&view)?;
    if args.check {
        let max_age = args.max_age.unwrap_or(Duration::from_secs(600));
        let max_age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let stale = |at: i64| now.saturating_sub(at) > max_age_ms;
        if let Some(oldest) = oldest.filter(|at| stale(*at))
            && last.as_ref().is_none_or(|f| stale(f.finished_at))
        {
            return Err(crate::error::hinted(
                format!(
                    "email has been due since {} and no flush has completed in the last {}",
                    Time(oldest),
                    friendly_duration(max_age)
                ),
                "check the crontab line for `helpdesk notify flush` and its mail",
            ))
            .context("the email queue is not being flushed");
        }
    }
    Ok(Exit::Done)
}

/// A duration as people write it: `10m`, `1h 30m`.
fn friendly_duration(duration: Duration) -> String {
    jiff::SignedDuration::try_from(duration)
        .map(|d| format!("{d:#}"))
        .unwrap_or_else(|_| format!("{} s", duration.as_secs()))
}

// ---- suppression ---------------------------------------------------------------------------

#[derive(Serialize)]
struct SuppressedItem {
    address: String,
    reason: String,
    at: Time,
}

#[derive(Serialize)]
#[serde(transparent)]
struct SuppressedList {
    items: Vec<SuppressedItem>,
}

impl View for SuppressedList {
    fn table(&self) -> Option<Table> {
        let mut table =
            Table::new(&["ADDRESS", "SINCE", "REASON"]).text_columns(&["ADDRESS", "REASON"]);
        for item in &self.items {
            table.row(vec![
                item.address.clone(),
                item.at.to_string(),
                item.reason.clone(),
            ]);
        }
        Some(table)
    }

    fn human(&self) -> String {
        if self.items.is_empty() {
            "no suppressed addresses".into()
        } else {
            String::new()
        }
    }
}

fn suppressed(app: &mut App) -> Result<Exit> {
    let items = suppressions::all(app.store.conn())?
        .into_iter()
        .map(|s| SuppressedItem {
            address: s.address,
            reason: s.reason,
            at: Time(s.at),
        })
        .collect();
    app.out.show(&SuppressedList { items })?;
    Ok(Exit::Done)
}

#[derive(Serialize)]
struct UnsuppressView {
    address: String,
    #[serde(skip)]
    line: String,
}

impl View for UnsuppressView {
    fn human(&self) -> String {
        self.line.clone()
    }
}

fn unsuppress(app: &mut App, address: &str) -> Result<Exit> {
    let removed = app.store.in_tx(|tx| suppressions::remove(tx, address))?;
    let shown = cell(address, 200);
    if !removed {
        return Err(crate::error::hinted(
            format!("`{shown}` is not on the suppression list"),
            "list it with `helpdesk notify suppressed`",
        ));
    }
    app.out.show(&UnsuppressView {
        address: address.trim().to_lowercase(),
        line: format!("`{shown}` gets email again"),
    })?;
    Ok(Exit::Done)
}
