//! SQL for notifications (in-app and email), their delivery attempts, and
//! the log of completed flushes. The queue's policy (what is due when, how
//! long to back off) is `notify::policy`'s; this file only reads and writes.

use rusqlite::{Connection, OptionalExtension, Row, named_params, params};

use super::Result;
use crate::model::{Channel, NotificationPriority, NotificationStatus};

pub struct NewNotification<'a> {
    pub event_id: i64,
    pub ticket_id: i64,
    pub user_id: i64,
    pub channel: Channel,
    pub priority: NotificationPriority,
    pub status: NotificationStatus,
    pub to_addr: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub created_at: i64,
    /// Set for in-app notifications, which are delivered as they are written.
    pub delivered_at: Option<i64>,
}

/// Inserts a notification; the caller decides the transaction.
pub fn insert(conn: &Connection, new: &NewNotification<'_>) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO notifications (event_id, ticket_id, user_id, channel, priority, status,
                                    to_addr, message_id, created_at, delivered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        new.event_id,
        new.ticket_id,
        new.user_id,
        new.channel.as_str(),
        new.priority.rank(),
        new.status.as_str(),
        new.to_addr,
        new.message_id,
        new.created_at,
        new.delivered_at,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Reads a stored enum (`parse` is its `from_stored`); a value this version
/// does not know is a damaged row. Every store file reads its enums with this.
pub(super) fn stored<T>(
    row: &Row<'_>,
    index: usize,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown stored value `{text}`").into(),
        )
    })
}

fn priority_at(row: &Row<'_>, index: usize) -> rusqlite::Result<NotificationPriority> {
    let rank: i64 = row.get(index)?;
    NotificationPriority::from_rank(rank).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Integer,
            format!("unknown priority rank {rank}").into(),
        )
    })
}

// ---- A ticket's notifications --------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Summary {
    pub id: i64,
    pub username: String,
    pub channel: Channel,
    pub status: NotificationStatus,
}

/// A ticket's notifications, in the order they were written.
pub fn of_ticket(conn: &Connection, ticket_id: i64) -> Result<Vec<Summary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.id, u.username, n.channel, n.status FROM notifications n JOIN users u ON u.id = n.user_id
          WHERE n.event_id IN (SELECT id FROM events WHERE ticket_id = ?1) ORDER BY n.id",
    )?;
    let rows = stmt.query_map([ticket_id], |row| {
        Ok(Summary {
            id: row.get(0)?,
            username: row.get(1)?,
            channel: stored(row, 2, Channel::from_stored)?,
            status: stored(row, 3, NotificationStatus::from_stored)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---- The inbox -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct InboxItem {
    pub id: i64,
    pub ticket_id: i64,
    pub title: String,
    pub body: String,
    pub url: String,
    pub priority: NotificationPriority,
    pub read_at: Option<i64>,
    pub delivered_at: Option<i64>,
}

/// A user's in-app notifications, newest first: the newest from
/// `inbox_recent` (written in order, scanned), the rest from `inbox` (one
/// range per user), merged (schema/002_inbox.sql).
pub fn inbox(
    conn: &Connection,
    user_id: i64,
    unread_only: bool,
    limit: u32,
) -> Result<Vec<InboxItem>> {
    let mut stmt = conn.prepare_cached(
        "SELECT n.id, n.ticket_id, e.title, e.body, e.url, n.priority, n.read_at, n.delivered_at
           FROM (SELECT id FROM inbox_recent WHERE user_id = ?1 AND (unread OR NOT ?3)
                 UNION ALL SELECT id FROM inbox WHERE user_id = ?1 AND (unread OR NOT ?3)
                 ORDER BY id DESC LIMIT ?2) i
           JOIN notifications n ON n.id = i.id JOIN events e ON e.id = n.event_id
          ORDER BY n.id DESC",
    )?;
    let rows = stmt.query_map(params![user_id, limit, unread_only], |row| {
        Ok(InboxItem {
            id: row.get(0)?,
            ticket_id: row.get(1)?,
            title: row.get(2)?,
            body: row.get(3)?,
            url: row.get(4)?,
            priority: priority_at(row, 5)?,
            read_at: row.get(6)?,
            delivered_at: row.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many in-app notifications the user has not read: the counter of their
/// filed ones plus their unread recent ones (at most 8192 rows to look at),
/// both kept exact in every transaction that changes one (schema/002_inbox.sql).
pub fn unread_count(conn: &Connection, user_id: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT coalesce((SELECT unread FROM inbox_unread WHERE user_id = ?1), 0)
                    + (SELECT count(*) FROM inbox_recent WHERE user_id = ?1 AND unread)",
        )?
        .query_row([user_id], |row| row.get(0))?)
}

/// Of `ids`, those that are not in-app notifications of this user.
pub fn not_in_inbox(conn: &Connection, user_id: i64, ids: &[i64]) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM notifications WHERE id = ?1 AND user_id = ?2 AND channel = 'app'",
    )?;
    let mut missing = Vec::new();
    for &id in ids {
        if !stmt.exists(params![id, user_id])? {
            missing.push(id);
        }
    }
    Ok(missing)
}

/// Marks these of the user's notifications read (those not read yet); returns how many changed.
pub fn mark_read(conn: &Connection, user_id: i64, ids: &[i64], at: i64) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "UPDATE notifications SET read_at = ?3
          WHERE id = ?1 AND user_id = ?2 AND channel = 'app' AND read_at IS NULL",
    )?;
    let mut changed = 0;
    for &id in ids {
        changed += stmt.execute(params![id, user_id, at])?;
    }
    Ok(changed)
}

/// Marks every unread notification of the user read; returns how many changed.
pub fn mark_all_read(conn: &Connection, user_id: i64, at: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "UPDATE notifications SET read_at = ?2
              WHERE id IN (SELECT id FROM inbox_recent WHERE user_id = ?1 AND unread
                           UNION ALL SELECT id FROM inbox WHERE user_id = ?1 AND unread)
                AND user_id = ?1 AND channel = 'app' AND read_at IS NULL",
        )?
        .execute(params![user_id, at])?)
}

// ---- The email queue -----------------------------------------------------------------------

/// An email notification claimed by a flush, with what is needed to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub event_id: i64,
    pub ticket_id: i64,
    pub to_addr: String,
    pub message_id: String,
    /// Attempts made before this claim.
    pub attempts: i64,
    /// When it was queued (the retry policy gives up on it by age).
    pub created_at: i64,
    /// The state it was claimed from: `processing` means a flush's lease expired.
    pub claimed_from: NotificationStatus,
}

/// Email notifications due at `now`, highest priority first, then oldest:
/// `pending`, `errored` whose next attempt has come, `processing` whose lease
/// has expired.
/// `:retry_until` is when an `errored` email must have become due: `:now`,
/// except for a claim, which takes the run's start so that a run tries each
/// email at most once.
const DUE: &str =
    "channel = 'email' AND (status = 'pending' OR status = 'errored' OR status = 'processing')
                   AND (status = 'pending'
                        OR (status = 'errored' AND next_attempt_at <= :retry_until)
                        OR (status = 'processing' AND lease_until <= :now))";

/// Claims up to `limit` due emails for the flush named `claim`, leasing them
/// until `lease_until`; `errored` ones only if due by `run_started`. Run it inside an IMMEDIATE transaction (`Store::in_tx`):
/// then no two flushes can claim the same row. Rows whose earlier lease had
/// expired get an attempt record saying a flush may have sent them.
pub fn claim_due(
    conn: &Connection,
    now: i64,
    run_started: i64,
    lease_until: i64,
    claim: &str,
    limit: u32,
) -> Result<Vec<Claimed>> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT id, event_id, ticket_id, to_addr, message_id, attempts, status, created_at
           FROM notifications WHERE {DUE} ORDER BY priority DESC, id LIMIT :limit"
    ))?;
    let claimed: Vec<Claimed> = select
        .query_map(
            named_params! {":now": now, ":retry_until": run_started.min(now), ":limit": limit},
            |row| {
                Ok(Claimed {
                    id: row.get(0)?,
                    event_id: row.get(1)?,
                    ticket_id: row.get(2)?,
                    to_addr: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    message_id: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    attempts: row.get(5)?,
                    claimed_from: stored(row, 6, NotificationStatus::from_stored)?,
                    created_at: row.get(7)?,
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut take = conn.prepare_cached(
        "UPDATE notifications SET status = 'processing', lease_until = ?2, claim = ?3 WHERE id = ?1",
    )?;
    for row in &claimed {
        take.execute(params![row.id, lease_until, claim])?;
        if row.claimed_from == NotificationStatus::Processing {
            insert_attempt(
                conn,
                row.id,
                now,
                "lease_expired",
                "possibly sent: the flush that held this message stopped before recording the outcome",
            )?;
        }
    }
    Ok(claimed)
}

/// Whether any email is due at `now` (cheap: the no-op flush asks this first).
pub fn due_exists(conn: &Connection, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(&format!("SELECT 1 FROM notifications WHERE {DUE} LIMIT 1"))?
        .exists(named_params! {":now": now, ":retry_until": now})?)
}

/// How many emails are due at `now`.
pub fn due_count(conn: &Connection, now: i64) -> Result<u64> {
    Ok(conn
        .prepare_cached(&format!("SELECT count(*) FROM notifications WHERE {DUE}"))?
        .query_row(named_params! {":now": now, ":retry_until": now}, |row| {
            row.get(0)
        })?)
}

/// The emails a flush would claim at `now`, in the order it would send them.
pub fn due_preview(conn: &Connection, now: i64, limit: u32) -> Result<Vec<QueueRow>> {
    // DUE's columns are unqualified; only `notifications` has them.
    let mut stmt = conn.prepare_cached(&format!(
        "{QUEUE_SELECT} WHERE {DUE} ORDER BY n.priority DESC, n.id LIMIT :limit"
    ))?;
    let rows = stmt.query_map(
        named_params! {":now": now, ":retry_until": now, ":limit": limit},
        queue_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Pushes the lease of these emails to `until`, while this flush holds them.
pub fn extend_lease(conn: &Connection, ids: &[i64], claim: &str, until: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "UPDATE notifications SET lease_until = ?3 WHERE id = ?1 AND claim = ?2 AND status = 'processing'",
    )?;
    for &id in ids {
        stmt.execute(params![id, claim, until])?;
    }
    Ok(())
}

/// Whether the flush named `claim` still holds this email.
pub fn holds(conn: &Connection, id: i64, claim: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM notifications WHERE id = ?1 AND claim = ?2 AND status = 'processing'",
        )?
        .exists(params![id, claim])?)
}

/// What became of one delivery attempt.
pub struct AttemptRecord<'a> {
    pub id: i64,
    pub claim: &'a str,
    pub at: i64,
    pub status: NotificationStatus,
    /// For `errored`: when it is due again.
    pub next_attempt_at: Option<i64>,
    /// `sent`, `deferred`, `failed`.
    pub outcome: &'a str,
    /// The server's reply or the error, as recorded in the attempt log.
    pub reply: &'a str,
}

/// Records an attempt and the notification's new state. A `sent` outcome is
/// written whoever holds the claim now (it is the truth); any other outcome
/// only while this flush still holds the claim, so a flush whose lease
/// expired cannot overwrite the work of the one that took over.
/// Run it inside a transaction, so the state and its log agree.
pub fn record_attempt(conn: &Connection, record: &AttemptRecord<'_>) -> Result<()> {
    let sent = record.status == NotificationStatus::Sent;
    conn.prepare_cached(
        "UPDATE notifications
            SET status = ?3, attempts = attempts + 1, next_attempt_at = ?4, lease_until = NULL, claim = NULL,
                last_error = CASE WHEN ?5 THEN NULL ELSE ?6 END,
                delivered_at = CASE WHEN ?5 THEN ?7 ELSE delivered_at END
          WHERE id = ?1 AND (?5 OR claim = ?2)",
    )?
    .execute(params![
        record.id,
        record.claim,
        record.status.as_str(),
        record.next_attempt_at,
        sent,
        record.reply,
        record.at,
    ])?;
    insert_attempt(conn, record.id, record.at, record.outcome, record.reply)
}

/// Gives back a claimed email that was not attempted (a run stopped by
/// `--max-time` or a signal): it is due again at once, in the state it had
/// before the claim (a claim leaves `next_attempt_at` as it was). No attempt
/// is counted or logged.
pub fn release(conn: &Connection, id: i64, claim: &str) -> Result<()> {
    conn.prepare_cached(
        "UPDATE notifications
            SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'errored' END,
                next_attempt_at = CASE WHEN attempts = 0 THEN NULL ELSE coalesce(next_attempt_at, 0) END,
                lease_until = NULL, claim = NULL
          WHERE id = ?1 AND claim = ?2",
    )?
    .execute(params![id, claim])?;
    Ok(())
}

/// Defers a claimed email that was not tried because the server could not
/// be reached: `errored`, due again at `next_attempt_at`, with `reason` as
/// its last error; no attempt is counted or logged.
pub fn defer_untried(
    conn: &Connection,
    id: i64,
    claim: &str,
    next_attempt_at: i64,
    reason: &str,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE notifications
            SET status = 'errored', next_attempt_at = ?3, last_error = ?4,
                lease_until = NULL, claim = NULL
          WHERE id = ?1 AND claim = ?2",
    )?
    .execute(params![id, claim, next_attempt_at, reason])?;
    Ok(())
}

/// Pushes the lease of every email the flush named `claim` holds to `until`.
/// (The WHERE repeats the due index's, so SQLite reads that index only.)
pub fn extend_claim(conn: &Connection, claim: &str, until: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE notifications SET lease_until = :until
          WHERE channel = 'email' AND (status = 'pending' OR status = 'errored' OR status = 'processing')
            AND status = 'processing' AND claim = :claim",
    )?
    .execute(named_params! {":until": until, ":claim": claim})?;
    Ok(())
}

fn insert_attempt(conn: &Connection, id: i64, at: i64, outcome: &str, reply: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO attempts (notification_id, seq, at, outcome, reply)
         VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM attempts WHERE notification_id = ?1), ?2, ?3, ?4)",
    )?
    .execute(params![id, at, outcome, reply])?;
    Ok(())
}

// ---- Operator views and actions ------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct QueueRow {
    pub id: i64,
    pub channel: Channel,
    pub username: String,
    pub to_addr: Option<String>,
    pub ticket_id: i64,
    pub status: NotificationStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub title: String,
    pub message_id: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

const QUEUE_SELECT: &str = "SELECT n.id, n.channel, u.username, n.to_addr, n.ticket_id, n.status, n.attempts,
                                   n.next_attempt_at, n.last_error, e.title, n.message_id, n.created_at,
                                   n.delivered_at
                              FROM notifications n JOIN users u ON u.id = n.user_id
                                   JOIN events e ON e.id = n.event_id";

fn queue_row(row: &Row<'_>) -> rusqlite::Result<QueueRow> {
    Ok(QueueRow {
        id: row.get(0)?,
        channel: stored(row, 1, Channel::from_stored)?,
        username: row.get(2)?,
        to_addr: row.get(3)?,
        ticket_id: row.get(4)?,
        status: stored(row, 5, NotificationStatus::from_stored)?,
        attempts: row.get(6)?,
        next_attempt_at: row.get(7)?,
        last_error: row.get(8)?,
        title: row.get(9)?,
        message_id: row.get(10)?,
        created_at: row.get(11)?,
        delivered_at: row.get(12)?,
    })
}

/// Notifications, newest first, optionally of one state or channel.
pub fn list(
    conn: &Connection,
    status: Option<NotificationStatus>,
    channel: Option<Channel>,
    limit: u32,
) -> Result<Vec<QueueRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{QUEUE_SELECT} WHERE (?1 IS NULL OR n.status = ?1) AND (?2 IS NULL OR n.channel = ?2)
          ORDER BY n.id DESC LIMIT ?3"
    ))?;
    let rows = stmt.query_map(
        params![
            status.map(|s| s.as_str()),
            channel.map(|c| c.as_str()),
            limit
        ],
        queue_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<QueueRow>> {
    Ok(conn
        .prepare_cached(&format!("{QUEUE_SELECT} WHERE n.id = ?1"))?
        .query_row([id], queue_row)
        .optional()?)
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: i64,
    pub outcome: String,
    pub reply: String,
}

/// A notification's attempts, oldest first.
pub fn attempts_of(conn: &Connection, id: i64) -> Result<Vec<Attempt>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, outcome, reply FROM attempts WHERE notification_id = ?1 ORDER BY seq",
    )?;
    let rows = stmt.query_map([id], |row| {
        Ok(Attempt {
            at: row.get(0)?,
            outcome: row.get(1)?,
            reply: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Puts one email back to `pending` with its attempt count reset (the log is kept).
pub fn requeue(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = NULL, lease_until = NULL,
                claim = NULL
          WHERE id = ?1",
    )?
    .execute([id])?;
    Ok(())
}

/// The IDs of every failed email.
pub fn failed_ids(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM notifications WHERE channel = 'email' AND status = 'failed' ORDER BY id",
    )?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What a purge may delete: email that is `sent` or `failed` and in-app
/// notifications that were read, created before `:before`, of `:channel`
/// unless it is NULL. Never an unread in-app notification, never email still
/// due (`pending`, `processing`, `errored`).
const PURGEABLE: &str = "created_at < :before AND (:channel IS NULL OR channel = :channel)
                         AND ((channel = 'email' AND (status = 'sent' OR status = 'failed'))
                              OR (channel = 'app' AND read_at IS NOT NULL))";

/// How many notifications of each kind a purge deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub email_sent: u64,
    pub email_failed: u64,
    pub app_read: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.email_sent + self.email_failed + self.app_read
    }
}

/// What `purge` would delete now, changing nothing.
pub fn purgeable(conn: &Connection, before: i64, channel: Option<Channel>) -> Result<Purged> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT coalesce(sum(channel = 'email' AND status = 'sent'), 0),
                    coalesce(sum(channel = 'email' AND status = 'failed'), 0),
                    coalesce(sum(channel = 'app'), 0)
               FROM notifications WHERE {PURGEABLE}"
        ))?
        .query_row(
            named_params! {":before": before, ":channel": channel.map(|c| c.as_str())},
            |row| {
                Ok(Purged {
                    email_sent: row.get(0)?,
                    email_failed: row.get(1)?,
                    app_read: row.get(2)?,
                })
            },
        )?)
}

/// Deletes what `purgeable` counts, with the attempts of the deleted emails;
/// returns the counts. Run it in a transaction (`Store::in_tx`), so the counts
/// are what was deleted.
pub fn purge(conn: &Connection, before: i64, channel: Option<Channel>) -> Result<Purged> {
    let purged = purgeable(conn, before, channel)?;
    let params = named_params! {":before": before, ":channel": channel.map(|c| c.as_str())};
    conn.prepare_cached(&format!(
        "DELETE FROM attempts WHERE notification_id IN (SELECT id FROM notifications WHERE {PURGEABLE})"
    ))?
    .execute(params)?;
    let deleted = conn
        .prepare_cached(&format!("DELETE FROM notifications WHERE {PURGEABLE}"))?
        .execute(params)?;
    debug_assert_eq!(deleted as u64, purged.total());
    Ok(purged)
}

/// (channel, status, count) for every combination present.
pub fn counts(conn: &Connection) -> Result<Vec<(Channel, NotificationStatus, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT channel, status, count(*) FROM notifications GROUP BY channel, status ORDER BY channel, status",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok((
            stored(row, 0, Channel::from_stored)?,
            stored(row, 1, NotificationStatus::from_stored)?,
            row.get(2)?,
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// When the oldest email due at `now` was created.
pub fn oldest_due(conn: &Connection, now: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT min(created_at) FROM notifications WHERE {DUE}"
        ))?
        .query_row(named_params! {":now": now, ":retry_until": now}, |row| {
            row.get(0)
        })?)
}

#[derive(Debug, Clone, Default)]
pub struct FlushRun {
    pub started_at: i64,
    pub finished_at: i64,
    pub claimed: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
}

/// Logs a flush that ran to its end (not one that was killed).
pub fn record_flush_run(conn: &Connection, run: &FlushRun) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO flush_runs (started_at, finished_at, claimed, sent, deferred, failed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        run.started_at,
        run.finished_at,
        run.claimed,
        run.sent,
        run.deferred,
        run.failed
    ])?;
    Ok(())
}

pub fn last_flush_run(conn: &Connection) -> Result<Option<FlushRun>> {
    Ok(conn
        .prepare_cached(
            "SELECT started_at, finished_at, claimed, sent, deferred, failed FROM flush_runs ORDER BY id DESC LIMIT 1",
        )?
        .query_row([], |row| {
            Ok(FlushRun {
                started_at: row.get(0)?,
                finished_at: row.get(1)?,
                claimed: row.get(2)?,
                sent: row.get(3)?,
                deferred: row.get(4)?,
                failed: row.get(5)?,
            })
        })
        .optional()?)
}

/// When the next deferred (`errored`) email that is not due at `now` becomes
/// due, if any.
pub fn next_due_after(conn: &Connection, now: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT min(next_attempt_at) FROM notifications
              WHERE channel = 'email' AND status = 'errored' AND next_attempt_at > ?1",
        )?
        .query_row([now], |row| row.get(0))?)
}

/// When the claim on a `processing` email expires (`None` for any other state).
pub fn lease_until(conn: &Connection, id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT lease_until FROM notifications WHERE id = ?1 AND status = 'processing'",
        )?
        .query_row([id], |row| row.get(0))
        .optional()?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Priority, Purpose};
    use crate::store::events::Wording;
    use crate::store::users::NewUser;
    use crate::store::{Store, events, tickets, users};

    const WORDING: Wording<'static> = Wording {
        title: "t",
        body: "b",
        url: "/u",
    };

    /// A ticket by this user, for notifications to hang on.
    fn ticket_by(conn: &Connection, user_id: i64) -> i64 {
        tickets::insert(
            conn,
            &tickets::NewTicket {
                created_by: user_id,
                purpose: Purpose::App,
                priority: Priority::Low,
                description: "d",
            },
            1_000,
        )
        .unwrap()
    }

    /// A store with one ticket and `n` pending emails (ids 1..=n), priorities cycling low, medium, high.
    fn queue(n: i64) -> Store {
        let store = Store::open_in_memory();
        let conn = store.conn();
        let user = users::insert(
            conn,
            &NewUser {
                username: "u",
                email: "u@example.org",
                name: "",
            },
            1_000,
        )
        .unwrap();
        let ticket = ticket_by(conn, user.id);
        for i in 0..n {
            let event = events::insert(conn, ticket, "new", user.id, "{}", &WORDING, 0).unwrap();
            insert(
                conn,
                &NewNotification {
                    event_id: event.id,
                    ticket_id: ticket,
                    user_id: user.id,
                    channel: Channel::Email,
                    priority: [
                        NotificationPriority::Low,
                        NotificationPriority::Medium,
                        NotificationPriority::High,
                    ][(i % 3) as usize],
                    status: NotificationStatus::Pending,
                    to_addr: Some("u@example.org"),
                    message_id: Some("<x@example.com>"),
                    created_at: 0,
                    delivered_at: None,
                },
            )
            .unwrap();
        }
        store
    }

    /// Writes `rounds` events on one ticket, each with an in-app notification
    /// for every user in `users` and an email for the first; returns the store
    /// and the users' IDs.
    fn inboxes(users: &[&str], rounds: usize) -> (Store, Vec<i64>) {
        let store = Store::open_in_memory();
        let conn = store.conn();
        let ids: Vec<i64> = users
            .iter()
            .map(|name| {
                users::insert(
                    conn,
                    &NewUser {
                        username: name,
                        email: &format!("{name}@example.org"),
                        name: "",
                    },
                    1_000,
                )
                .unwrap()
                .id
            })
            .collect();
        ticket_by(conn, ids[0]);
        add_rounds(conn, &ids, rounds);
        (store, ids)
    }

    /// `rounds` more events on ticket 1, notified as `inboxes` says.
    fn add_rounds(conn: &Connection, ids: &[i64], rounds: usize) {
        let ticket = 1;
        for _ in 0..rounds {
            let event = events::insert(conn, ticket, "new", ids[0], "{}", &WORDING, 0).unwrap();
            for (i, &user_id) in ids.iter().enumerate() {
                for channel in [Channel::App, Channel::Email] {
                    if channel == Channel::Email && i > 0 {
                        continue;
                    }
                    let app = channel == Channel::App;
                    insert(
                        conn,
                        &NewNotification {
                            event_id: event.id,
                            ticket_id: ticket,
                            user_id,
                            channel,
                            priority: NotificationPriority::Low,
                            status: if app {
                                NotificationStatus::Sent
                            } else {
                                NotificationStatus::Pending
                            },
                            to_addr: (!app).then_some("u@example.org"),
                            message_id: (!app).then_some("<x@example.com>"),
                            created_at: 0,
                            delivered_at: app.then_some(0),
                        },
                    )
                    .unwrap();
                }
            }
        }
    }

    fn sql_ids(conn: &Connection, sql: &str, user_id: i64) -> Vec<i64> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([user_id], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The user's in-app notifications (or unread ones), newest first, from the ledger itself.
    fn ledger(conn: &Connection, user_id: i64, unread_only: bool) -> Vec<i64> {
        let unread = if unread_only {
            "AND read_at IS NULL"
        } else {
            ""
        };
        sql_ids(
            conn,
            &format!(
                "SELECT id FROM notifications WHERE user_id = ?1 AND channel = 'app' {unread} ORDER BY id DESC"
            ),
            user_id,
        )
    }

    fn listed(conn: &Connection, user_id: i64, unread_only: bool, limit: u32) -> Vec<i64> {
        inbox(conn, user_id, unread_only, limit)
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect()
    }

    /// Every listing and count of the user agrees with the ledger.
    fn assert_inbox_matches_ledger(conn: &Connection, user_id: i64) {
        let all = ledger(conn, user_id, false);
        let unread = ledger(conn, user_id, true);
        assert_eq!(listed(conn, user_id, false, u32::MAX), all);
        assert_eq!(listed(conn, user_id, true, u32::MAX), unread);
        assert_eq!(listed(conn, user_id, false, 7), all[..7.min(all.len())]);
        assert_eq!(
            listed(conn, user_id, true, 7),
            unread[..7.min(unread.len())]
        );
        assert_eq!(unread_count(conn, user_id).unwrap(), unread.len() as i64);
    }

    #[test]
    fn the_inbox_and_its_unread_count_follow_the_ledger_across_filing_batches() {
        // 3 in-app notifications and an email per round: 22,000 IDs, 2.7 batches of 8192.
        let (store, users) = inboxes(&["a", "b", "c"], 5_500);
        let conn = store.conn();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |row| row.get(0)).unwrap() };
        assert!(count("SELECT count(*) FROM inbox") > 0, "some were filed");
        assert!(
            count("SELECT count(*) FROM inbox_recent") > 0,
            "some are recent"
        );
        assert!(count("SELECT count(*) FROM inbox_recent") < 8192);
        assert_eq!(
            count("SELECT (SELECT count(*) FROM inbox) + (SELECT count(*) FROM inbox_recent)"),
            count("SELECT count(*) FROM notifications WHERE channel = 'app'"),
            "each in-app notification is filed or recent, once"
        );
        let (a, b, c) = (users[0], users[1], users[2]);
        // Read every third of a's, filed and recent alike, and one that is not hers.
        let thirds: Vec<i64> = ledger(conn, a, false).into_iter().step_by(3).collect();
        let foreign = ledger(conn, b, false)[0];
        let mut ids = thirds.clone();
        ids.push(foreign);
        assert_eq!(mark_read(conn, a, &ids, 1).unwrap(), thirds.len());
        assert_eq!(mark_read(conn, a, &ids, 2).unwrap(), 0, "already read");
        assert_eq!(not_in_inbox(conn, a, &ids).unwrap(), [foreign]);
        assert_eq!(mark_all_read(conn, b, 3).unwrap(), 5_500);
        for user in [a, b, c] {
            assert_inbox_matches_ledger(conn, user);
        }
        assert_eq!(unread_count(conn, b).unwrap(), 0);
        assert_eq!(unread_count(conn, a).unwrap(), 5_500 - thirds.len() as i64);
        // Unread again (an operator's UPDATE), and deleted: the count follows.
        conn.execute(
            "UPDATE notifications SET read_at = NULL WHERE user_id = ?1 AND channel = 'app' AND id % 2 = 0",
            [b],
        )
        .unwrap();
        conn.execute(
            "DELETE FROM notifications WHERE user_id = ?1 AND channel = 'app' AND id % 5 = 0",
            [c],
        )
        .unwrap();
        for user in [a, b, c] {
            assert_inbox_matches_ledger(conn, user);
        }
        // Those read (or deleted) while recent are filed with the next batch.
        add_rounds(conn, &users, 3_000);
        for user in [a, b, c] {
            assert_inbox_matches_ledger(conn, user);
        }
        assert_eq!(unread_count(conn, 999).unwrap(), 0, "a user with nothing");
    }

    #[test]
    fn an_unknown_stored_value_is_a_damaged_row_in_tickets_and_notifications() {
        let (store, _) = inboxes(&["a"], 1);
        let conn = store.conn();
        conn.pragma_update(None, "ignore_check_constraints", true)
            .unwrap();
        conn.execute_batch(
            "UPDATE tickets SET status = 'lost'; UPDATE notifications SET status = 'lost';",
        )
        .unwrap();
        let ticket = tickets::by_id(conn, 1).unwrap_err().to_string();
        let notification = by_id(conn, 1).unwrap_err().to_string();
        for err in [ticket, notification] {
            assert!(err.contains("unknown stored value `lost`"), "{err}");
        }
    }

    #[test]
    fn a_notification_never_changes_user_or_channel() {
        let (store, users) = inboxes(&["a", "b"], 1);
        let err = store
            .conn()
            .execute(
                "UPDATE notifications SET user_id = ?1 WHERE channel = 'app'",
                [users[1]],
            )
            .unwrap_err();
        assert!(err.to_string().contains("never change"), "{err}");
    }

    fn ids(claimed: &[Claimed]) -> Vec<i64> {
        claimed.iter().map(|c| c.id).collect()
    }

    #[test]
    fn claims_take_high_priority_first_and_never_overlap() {
        let store = queue(6);
        let conn = store.conn();
        let first = claim_due(conn, 1000, 1000, 2000, "a", 4).unwrap();
        assert_eq!(ids(&first), [3, 6, 2, 5], "high, then medium, oldest first");
        let second = claim_due(conn, 1000, 1000, 2000, "b", 4).unwrap();
        assert_eq!(ids(&second), [1, 4], "only what the first claim left");
        assert!(
            claim_due(conn, 1000, 1000, 2000, "c", 4)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_expired_lease_is_claimed_again_and_logged_as_possibly_sent() {
        let store = queue(1);
        let conn = store.conn();
        assert_eq!(
            ids(&claim_due(conn, 1000, 1000, 2000, "dead", 10).unwrap()),
            [1]
        );
        assert!(
            claim_due(conn, 1999, 1999, 3000, "early", 10)
                .unwrap()
                .is_empty(),
            "lease still held"
        );
        let again = claim_due(conn, 2000, 2000, 3000, "late", 10).unwrap();
        assert_eq!(again[0].claimed_from, NotificationStatus::Processing);
        assert_eq!(attempts_of(conn, 1).unwrap()[0].outcome, "lease_expired");
        assert!(!holds(conn, 1, "dead").unwrap());
        assert!(holds(conn, 1, "late").unwrap());
    }

    #[test]
    fn a_deferred_email_waits_for_its_time_and_for_the_next_run() {
        let store = queue(1);
        let conn = store.conn();
        claim_due(conn, 1000, 1000, 9000, "a", 10).unwrap();
        let record = AttemptRecord {
            id: 1,
            claim: "a",
            at: 1100,
            status: NotificationStatus::Errored,
            next_attempt_at: Some(1500),
            outcome: "deferred",
            reply: "451 later",
        };
        record_attempt(conn, &record).unwrap();
        assert!(
            claim_due(conn, 1400, 1000, 9000, "a", 10)
                .unwrap()
                .is_empty(),
            "not due yet"
        );
        assert!(
            claim_due(conn, 1600, 1000, 9000, "a", 10)
                .unwrap()
                .is_empty(),
            "not again in the same run"
        );
        assert_eq!(
            ids(&claim_due(conn, 1600, 1600, 9000, "b", 10).unwrap()),
            [1],
            "due for a later run"
        );
        let row = by_id(conn, 1).unwrap().unwrap();
        assert_eq!(
            (row.attempts, row.last_error.as_deref()),
            (1, Some("451 later"))
        );
    }

    #[test]
    fn a_stale_claim_cannot_overwrite_the_new_holder_but_sent_always_wins() {
        let store = queue(2);
        let conn = store.conn();
        claim_due(conn, 1000, 1000, 2000, "old", 10).unwrap();
        claim_due(conn, 3000, 3000, 9000, "new", 10).unwrap();
        let stale = |id, status| AttemptRecord {
            id,
            claim: "old",
            at: 3500,
            status,
            next_attempt_at: Some(99_999),
            outcome: "x",
            reply: "r",
        };
        record_attempt(conn, &stale(1, NotificationStatus::Errored)).unwrap();
        assert_eq!(
            by_id(conn, 1).unwrap().unwrap().status,
            NotificationStatus::Processing
        );
        record_attempt(conn, &stale(2, NotificationStatus::Sent)).unwrap();
        assert_eq!(
            by_id(conn, 2).unwrap().unwrap().status,
            NotificationStatus::Sent
        );
    }
}
