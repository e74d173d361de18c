//! SQL for notifications (in-app and email), their delivery attempts, and
//! the log of completed flushes. The queue's policy (what is due when, how
//! long to back off) is `notify::policy`'s; this file only reads and writes.
//!
//! Written once for both backends (`db.rs`), but for what is each one's own:
//! the claim (SQLite's IMMEDIATE transaction; PostgreSQL's `FOR UPDATE SKIP
//! LOCKED`, with leases on the server's clock) and writing many rows at once.

use super::Result;

use super::db::{Backend, Db, Row, Value};
use crate::model::{
    Channel, EventId, NotificationId, NotificationPriority, NotificationStatus, TicketId, UserId,
};

pub struct NewNotification<'a> {
    pub event_id: EventId,
    pub ticket_id: TicketId,
    pub user_id: UserId,
    pub channel: Channel,
    pub priority: NotificationPriority,
    pub status: NotificationStatus,
    pub to_addr: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub created_at: i64,
    /// Set for in-app notifications, which are delivered as they are written.
    pub delivered_at: Option<i64>,
    /// The audience that chose the user (`notify::Audience::as_str`).
    pub reason: Option<&'a str>,
}

/// Inserts notifications, returning their IDs in order, in the caller's
/// transaction; on SQLite it must hold the write lock (`Store::in_tx`'s
/// `BEGIN IMMEDIATE`), since the rows are numbered here. Without it,
/// another writer may take the same IDs and the insert fails on the
/// primary key (never a duplicate). Both backends get many rows per statement: SQLite rows
/// of `VALUES` (a statement per row journalled the pages it changed and
/// opened every index once per row: a quarter of a 1,038-row insert's
/// instructions), PostgreSQL all rows at once (`unnest`, one round trip).
pub fn insert_all(conn: &dyn Db, all: &[NewNotification<'_>]) -> Result<Vec<NotificationId>> {
    if all.is_empty() {
        return Ok(Vec::new());
    }
    match conn.backend() {
        Backend::Sqlite => insert_all_sqlite(conn, all),
        Backend::Postgres => {
            let ints = |f: &dyn Fn(&NewNotification<'_>) -> Option<i64>| -> Vec<Option<i64>> {
                all.iter().map(f).collect()
            };
            let texts = |f: &dyn for<'n> Fn(&'n NewNotification<'_>) -> Option<&'n str>| {
                all.iter().map(f).collect::<Vec<Option<&str>>>()
            };
            conn.query(
                "INSERT INTO notifications (event_id, ticket_id, user_id, channel, priority, status,
                                            to_addr, message_id, created_at, delivered_at, reason)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[],
                                      $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[],
                                      $11::text[])
                 RETURNING id",
                &[
                    &ints(&|n| Some(n.event_id.get())),
                    &ints(&|n| Some(n.ticket_id.get())),
                    &ints(&|n| Some(n.user_id.get())),
                    &texts(&|n| Some(n.channel.as_str())),
                    &ints(&|n| Some(n.priority.rank())),
                    &texts(&|n| Some(n.status.as_str())),
                    &texts(&|n| n.to_addr),
                    &texts(&|n| n.message_id),
                    &ints(&|n| Some(n.created_at)),
                    &ints(&|n| n.delivered_at),
                    &texts(&|n| n.reason),
                ],
                |row| row.parse(0),
            )
        }
    }
}

/// Multi-row `INSERT`s on SQLite (`Db::each_row_values`); the IDs in the
/// order of `rows`. The rows are numbered here, after the highest ID, as
/// SQLite would number them: the caller's transaction holds the write lock,
/// so no other writer can take those IDs. Without `RETURNING`, SQLite does
/// not gather the inserted rows into a table of its own to hand them back
/// (2.5 million of a 1,038-row insert's 28.5 million instructions).
fn insert_all_sqlite(conn: &dyn Db, rows: &[NewNotification<'_>]) -> Result<Vec<NotificationId>> {
    let first = conn.query_one(
        "SELECT coalesce(max(id), 0) + 1 FROM notifications",
        &[],
        |row| row.int(0),
    )?;
    let ids: Vec<NotificationId> = (first..).take(rows.len()).map(NotificationId).collect();
    conn.each_row_values(
        "INSERT INTO notifications (id, event_id, ticket_id, user_id, channel, priority, status,
                                    to_addr, message_id, created_at, delivered_at, reason) VALUES",
        12,
        rows.len(),
        &mut |i, values| {
            let new = &rows[i];
            values.extend([
                Value::Int(ids[i].get()),
                Value::Int(new.event_id.get()),
                Value::Int(new.ticket_id.get()),
                Value::Int(new.user_id.get()),
                Value::Text(new.channel.as_str()),
                Value::Int(new.priority.rank()),
                Value::Text(new.status.as_str()),
                new.to_addr.map_or(Value::Null, Value::Text),
                new.message_id.map_or(Value::Null, Value::Text),
                Value::Int(new.created_at),
                new.delivered_at.map_or(Value::Null, Value::Int),
                new.reason.map_or(Value::Null, Value::Text),
            ]);
        },
        "",
        &mut |_| Ok(()),
    )?;
    Ok(ids)
}

fn priority_at(row: &Row<'_, '_>, index: usize) -> Result<NotificationPriority> {
    let rank = row.int(index)?;
    NotificationPriority::from_rank(rank).ok_or_else(|| {
        super::StoreError::Corrupt(format!("unknown priority rank {rank} in column {index}"))
    })
}

// ---- A ticket's notifications --------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Summary {
    pub id: NotificationId,
    pub username: String,
    pub channel: Channel,
    pub status: NotificationStatus,
}

/// A ticket's notifications, in the order they were written.
pub fn of_ticket(conn: &dyn Db, ticket_id: TicketId) -> Result<Vec<Summary>> {
    conn.query(
        "SELECT n.id, u.username, n.channel, n.status FROM notifications n JOIN users u ON u.id = n.user_id
          WHERE n.event_id IN (SELECT id FROM events WHERE ticket_id = $1) ORDER BY n.id",
        &[&ticket_id],
        |row| {
            Ok(Summary {
                id: row.parse(0)?,
                username: row.text(1)?,
                channel: row.parse(2)?,
                status: row.parse(3)?,
            })
        },
    )
}

// ---- The inbox -----------------------------------------------------------------------------

/// One in-app notification of a user's inbox, with its event's words.
#[derive(Debug, Clone)]
pub struct InboxEntry {
    pub id: NotificationId,
    pub ticket_id: TicketId,
    pub title: String,
    pub body: String,
    pub url: String,
    pub priority: NotificationPriority,
    pub read_at: Option<i64>,
    pub delivered_at: Option<i64>,
}

/// A user's in-app notifications, newest first: the newest from
/// `inbox_recent` (written in order, scanned), the rest from `inbox` (one
/// range per user), merged (schema/002_inbox.sql; on PostgreSQL both are
/// views over `notifications` and its per-user index).
pub fn inbox(
    conn: &dyn Db,
    user_id: UserId,
    unread_only: bool,
    limit: u32,
) -> Result<Vec<InboxEntry>> {
    conn.query(
        "SELECT n.id, n.ticket_id, e.title, e.body, e.url, n.priority, n.read_at, n.delivered_at
           FROM (SELECT id FROM inbox_recent WHERE user_id = $1 AND (unread OR NOT $3)
                 UNION ALL SELECT id FROM inbox WHERE user_id = $1 AND (unread OR NOT $3)
                 ORDER BY id DESC LIMIT $2) i
           JOIN notifications n ON n.id = i.id JOIN events e ON e.id = n.event_id
          ORDER BY n.id DESC",
        &[&user_id, &limit, &unread_only],
        |row| {
            Ok(InboxEntry {
                id: row.parse(0)?,
                ticket_id: row.parse(1)?,
                title: row.text(2)?,
                body: row.text(3)?,
                url: row.text(4)?,
                priority: priority_at(row, 5)?,
                read_at: row.opt_int(6)?,
                delivered_at: row.opt_int(7)?,
            })
        },
    )
}

/// How many in-app notifications the user has not read: the counter of their
/// filed ones plus their unread recent ones (at most 8192 rows to look at),
/// both kept exact in every transaction that changes one (schema/002_inbox.sql).
pub fn unread_count(conn: &dyn Db, user_id: UserId) -> Result<i64> {
    conn.query_one(
        "SELECT coalesce((SELECT unread FROM inbox_unread WHERE user_id = $1), 0)
                + (SELECT count(*) FROM inbox_recent WHERE user_id = $1 AND unread)",
        &[&user_id],
        |row| row.int(0),
    )
}

/// Of `ids`, those that are not in-app notifications of this user, in
/// their order. One statement for all on PostgreSQL (`= ANY($1)`); on
/// SQLite, which has no arrays, one prepared statement run per ID.
pub fn not_in_inbox(
    conn: &dyn Db,
    user_id: UserId,
    ids: &[NotificationId],
) -> Result<Vec<NotificationId>> {
    let found: std::collections::HashSet<NotificationId> = match conn.backend() {
        Backend::Postgres => conn
            .query(
                "SELECT id FROM notifications
                  WHERE id = ANY($1::bigint[]) AND user_id = $2 AND channel = 'app'",
                &[&as_array(ids), &user_id],
                |row| row.parse(0),
            )?
            .into_iter()
            .collect(),
        Backend::Sqlite => {
            let mut found = std::collections::HashSet::new();
            for &id in ids {
                if conn
                    .query_opt(
                        "SELECT 1 FROM notifications WHERE id = $1 AND user_id = $2 AND channel = 'app'",
                        &[&id, &user_id],
                        |_| Ok(()),
                    )?
                    .is_some()
                {
                    found.insert(id);
                }
            }
            found
        }
    };
    Ok(ids
        .iter()
        .copied()
        .filter(|id| !found.contains(id))
        .collect())
}

/// Marks these of the user's notifications read (those not read yet);
/// returns how many changed. One statement for all on PostgreSQL; on
/// SQLite one prepared statement run per ID.
pub fn mark_read(conn: &dyn Db, user_id: UserId, ids: &[NotificationId], at: i64) -> Result<usize> {
    let changed = match conn.backend() {
        Backend::Postgres => conn.execute(
            "UPDATE notifications SET read_at = $3
              WHERE id = ANY($1::bigint[]) AND user_id = $2 AND channel = 'app' AND read_at IS NULL",
            &[&as_array(ids), &user_id, &at],
        )?,
        Backend::Sqlite => {
            let mut changed = 0;
            for &id in ids {
                changed += conn.execute(
                    "UPDATE notifications SET read_at = $3
                      WHERE id = $1 AND user_id = $2 AND channel = 'app' AND read_at IS NULL",
                    &[&id, &user_id, &at],
                )?;
            }
            changed
        }
    };
    Ok(changed as usize)
}

/// IDs as a PostgreSQL `bigint[]` parameter.
fn as_array(ids: &[NotificationId]) -> Vec<Option<i64>> {
    ids.iter().map(|id| Some(id.get())).collect()
}

/// Marks every unread notification of the user read; returns how many changed.
pub fn mark_all_read(conn: &dyn Db, user_id: UserId, at: i64) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE notifications SET read_at = $2
          WHERE id IN (SELECT id FROM inbox_recent WHERE user_id = $1 AND unread
                       UNION ALL SELECT id FROM inbox WHERE user_id = $1 AND unread)
            AND user_id = $1 AND channel = 'app' AND read_at IS NULL",
        &[&user_id, &at],
    )? as usize)
}

// ---- The email queue -----------------------------------------------------------------------

/// An email notification claimed by a flush, with what is needed to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: NotificationId,
    pub event_id: EventId,
    pub ticket_id: TicketId,
    pub to_addr: String,
    pub message_id: String,
    /// Attempts made before this claim.
    pub attempts: i64,
    /// When it was queued (the retry policy gives up on it by age).
    pub created_at: i64,
    /// The state it was claimed from: `processing` means a flush's lease expired.
    pub claimed_from: NotificationStatus,
    /// The audience that chose its user (the email's footer says why).
    pub reason: Option<String>,
}

/// The start of every queue listing; `queue_row` reads its columns.
macro_rules! queue_select {
    () => {
        "SELECT n.id, n.channel, u.username, n.to_addr, n.ticket_id, n.status, n.attempts,
                n.next_attempt_at, n.last_error, e.title, n.message_id, n.created_at,
                n.delivered_at
           FROM notifications n JOIN users u ON u.id = n.user_id
                JOIN events e ON e.id = n.event_id"
    };
}

/// Email notifications due at `$1` (now), highest priority first, then
/// oldest: `pending`, `errored` whose next attempt has come by `$2`, and
/// `processing` whose lease has expired. `$2` is `$1`, except for a claim,
/// which takes the run's start so that a run tries each email at most once.
/// The first line repeats the due index's WHERE, so SQLite reads that index.
/// On PostgreSQL a lease ends by the server's clock (`server_now!`): hosts'
/// clocks may differ, the server's is the one every flush shares.
macro_rules! due {
    (sqlite) => {
        "channel = 'email' AND (status = 'pending' OR status = 'errored' OR status = 'processing')
         AND (status = 'pending'
              OR (status = 'errored' AND next_attempt_at <= $2)
              OR (status = 'processing' AND lease_until <= $1))"
    };
    (postgres) => {
        concat!(
            "channel = 'email' AND status IN ('pending', 'errored', 'processing')
             AND (status = 'pending'
                  OR (status = 'errored' AND next_attempt_at <= LEAST(CAST($1 AS BIGINT), CAST($2 AS BIGINT)))
                  OR (status = 'processing' AND lease_until <= ",
            server_now!(),
            "))"
        )
    };
}

/// The PostgreSQL server's time, in the store's milliseconds (moved as the
/// host's clock is in test builds: `helpdesk.clock_offset`, set by
/// `PgStore::open` only there).
macro_rules! server_now {
    () => {
        "(CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)
          + coalesce(CAST(nullif(current_setting('helpdesk.clock_offset', true), '') AS BIGINT), 0))"
    };
}

/// What a flush asks for when it claims.
pub struct ClaimRequest<'a> {
    /// The caller's time (SQLite's leases are on it).
    pub now: i64,
    /// When the run began: `errored` email is claimed only if it was due by then.
    pub run_started: i64,
    /// How long the claim holds, in milliseconds.
    pub lease_ms: i64,
    /// The flush's claim token.
    pub claim: &'a str,
    pub limit: u32,
}

/// Claims up to `limit` due emails for the flush named `claim`, leasing them
/// for `lease_ms`. SQLite: run it inside an IMMEDIATE transaction
/// (`Store::in_tx`), which no other flush can enter at the same time.
/// PostgreSQL: one statement takes the rows `FOR UPDATE SKIP LOCKED`, so
/// flushes on any number of hosts never claim the same row. Rows whose
/// earlier lease had expired get an attempt record saying a flush may have
/// sent them.
pub fn claim_due(conn: &dyn Db, request: &ClaimRequest<'_>) -> Result<Vec<Claimed>> {
    let from_row = |row: &Row<'_, '_>| {
        Ok(Claimed {
            id: row.parse(0)?,
            event_id: row.parse(1)?,
            ticket_id: row.parse(2)?,
            to_addr: row.opt_text(3)?.unwrap_or_default(),
            message_id: row.opt_text(4)?.unwrap_or_default(),
            attempts: row.int(5)?,
            claimed_from: row.parse(6)?,
            created_at: row.int(7)?,
            reason: row.opt_text(8)?,
        })
    };
    let retry_until = request.run_started.min(request.now);
    let claimed = match conn.backend() {
        Backend::Sqlite => {
            let claimed = conn.query(
                concat!(
                    "SELECT id, event_id, ticket_id, to_addr, message_id, attempts, status, created_at,
                            reason
                       FROM notifications WHERE ",
                    due!(sqlite),
                    " ORDER BY priority DESC, id LIMIT $3"
                ),
                &[&request.now, &retry_until, &request.limit],
                from_row,
            )?;
            let lease_until = request.now + request.lease_ms;
            for row in &claimed {
                conn.execute(
                    "UPDATE notifications SET status = 'processing', lease_until = $2, claim = $3
                      WHERE id = $1",
                    &[&row.id, &lease_until, &request.claim],
                )?;
            }
            claimed
        }
        // The CTE keeps the LIMIT where it belongs: a bare subquery with a
        // LIMIT in `WHERE id IN (…)` may be planned to update more rows.
        Backend::Postgres => {
            let mut claimed = conn.query(
                concat!(
                    "WITH due AS (
                         SELECT id, status FROM notifications WHERE ",
                    due!(postgres),
                    "    ORDER BY priority DESC, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                     UPDATE notifications n
                        SET status = 'processing', claim = $4, lease_until = ",
                    server_now!(),
                    " + $5
                       FROM due WHERE n.id = due.id
                     RETURNING n.id, n.event_id, n.ticket_id, n.to_addr, n.message_id, n.attempts,
                               due.status, n.created_at, n.reason, n.priority"
                ),
                &[
                    &request.now,
                    &retry_until,
                    &request.limit,
                    &request.claim,
                    &request.lease_ms,
                ],
                |row| Ok((from_row(row)?, row.int(9)?)),
            )?;
            claimed.sort_by_key(|(email, priority)| (-priority, email.id));
            claimed.into_iter().map(|(email, _)| email).collect()
        }
    };
    for row in &claimed {
        if row.claimed_from == NotificationStatus::Processing {
            insert_attempt(
                conn,
                row.id,
                request.now,
                "lease_expired",
                "possibly sent: the flush that held this message stopped before recording the outcome",
            )?;
        }
    }
    Ok(claimed)
}

/// Whether any email is due at `now` (cheap: the no-op flush asks this first).
pub fn due_exists(conn: &dyn Db, now: i64) -> Result<bool> {
    let sql = match conn.backend() {
        Backend::Sqlite => concat!(
            "SELECT 1 FROM notifications WHERE ",
            due!(sqlite),
            " LIMIT 1"
        ),
        Backend::Postgres => concat!(
            "SELECT 1 FROM notifications WHERE ",
            due!(postgres),
            " LIMIT 1"
        ),
    };
    Ok(conn.query_opt(sql, &[&now, &now], |_| Ok(()))?.is_some())
}

/// How many emails are due at `now`.
pub fn due_count(conn: &dyn Db, now: i64) -> Result<u64> {
    let sql = match conn.backend() {
        Backend::Sqlite => concat!("SELECT count(*) FROM notifications WHERE ", due!(sqlite)),
        Backend::Postgres => concat!("SELECT count(*) FROM notifications WHERE ", due!(postgres)),
    };
    Ok(conn.query_one(sql, &[&now, &now], |row| row.int(0))? as u64)
}

/// The emails a flush would claim at `now`, in the order it would send them.
pub fn due_preview(conn: &dyn Db, now: i64, limit: u32) -> Result<Vec<QueueRow>> {
    // DUE's columns are unqualified; only `notifications` has them.
    let sql = match conn.backend() {
        Backend::Sqlite => concat!(
            queue_select!(),
            " WHERE ",
            due!(sqlite),
            " ORDER BY n.priority DESC, n.id LIMIT $3"
        ),
        Backend::Postgres => concat!(
            queue_select!(),
            " WHERE ",
            due!(postgres),
            " ORDER BY n.priority DESC, n.id LIMIT $3"
        ),
    };
    conn.query(sql, &[&now, &now, &limit], queue_row)
}

/// Whether the flush named `claim` still holds this email.
pub fn holds(conn: &dyn Db, id: NotificationId, claim: &str) -> Result<bool> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM notifications WHERE id = $1 AND claim = $2 AND status = 'processing'",
            &[&id, &claim],
            |_| Ok(()),
        )?
        .is_some())
}

/// What became of one delivery attempt. Owned, so a flush worker can hand
/// it to whichever worker commits the group (`record_attempts`).
pub struct AttemptRecord {
    pub id: NotificationId,
    pub claim: String,
    pub at: i64,
    pub status: NotificationStatus,
    /// For `errored`: when it is due again.
    pub next_attempt_at: Option<i64>,
    /// `sent`, `deferred`, `failed`.
    pub outcome: &'static str,
    /// The server's reply or the error, as recorded in the attempt log.
    pub reply: String,
}

/// Records attempts and their notifications' new states: the outcomes a
/// flush commits together (its group commit). A `sent` outcome is written
/// whoever holds the claim now (it is the truth); any other outcome only
/// while this flush still holds the claim, so a flush whose lease expired
/// cannot overwrite the work of the one that took over. It is the last work
/// of the caller's transaction (so each state and its log agree): a group of
/// one is one round trip on PostgreSQL (`Db::execute_last`), a larger group
/// one statement per outcome.
pub fn record_attempts(conn: &dyn Db, records: &[AttemptRecord]) -> Result<()> {
    let alone = records.len() == 1;
    records
        .iter()
        .try_for_each(|record| record_one(conn, record, alone))
}

/// One outcome of `record_attempts`; `last`: nothing follows in this
/// transaction.
fn record_one(conn: &dyn Db, record: &AttemptRecord, last: bool) -> Result<()> {
    let sent = record.status == NotificationStatus::Sent;
    if conn.backend() == Backend::Postgres {
        return record_attempt_in_one_statement(conn, record, sent, last);
    }
    conn.execute(
        "UPDATE notifications
            SET status = $3, attempts = attempts + 1, next_attempt_at = $4, lease_until = NULL, claim = NULL,
                last_error = CASE WHEN $5 THEN NULL ELSE $6 END,
                delivered_at = CASE WHEN $5 THEN $7 ELSE delivered_at END
          WHERE id = $1 AND ($5 OR claim = $2)",
        &[
            &record.id,
            &record.claim,
            &record.status.as_str(),
            &record.next_attempt_at,
            &sent,
            &record.reply,
            &record.at,
        ],
    )?;
    insert_attempt(conn, record.id, record.at, record.outcome, &record.reply)
}

/// PostgreSQL's `record_one`: the state and its log in one statement
/// (a data-modifying CTE runs whether or not the INSERT reads it), atomic
/// by itself, so a flush's outcome alone in its transaction (`last`) is one
/// round trip (`Db::execute_last`).
fn record_attempt_in_one_statement(
    conn: &dyn Db,
    record: &AttemptRecord,
    sent: bool,
    last: bool,
) -> Result<()> {
    let run = if last { Db::execute_last } else { Db::execute };
    run(
        conn,
        "WITH outcome AS (
             UPDATE notifications
                SET status = $3, attempts = attempts + 1, next_attempt_at = $4, lease_until = NULL,
                    claim = NULL, last_error = CASE WHEN $5 THEN NULL ELSE $6 END,
                    delivered_at = CASE WHEN $5 THEN $7 ELSE delivered_at END
              WHERE id = $1 AND ($5 OR claim = $2))
         INSERT INTO attempts (notification_id, seq, at, outcome, reply)
         VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM attempts WHERE notification_id = $1),
                 $7, $8, $6)",
        &[
            &record.id,
            &record.claim,
            &record.status.as_str(),
            &record.next_attempt_at,
            &sent,
            &record.reply,
            &record.at,
            &record.outcome,
        ],
    )?;
    Ok(())
}

/// Gives back a claimed email that was not attempted (a run stopped by
/// `--max-time` or a signal): it is due again at once, in the state it had
/// before the claim (a claim leaves `next_attempt_at` as it was). No attempt
/// is counted or logged.
pub fn release(conn: &dyn Db, id: NotificationId, claim: &str) -> Result<()> {
    conn.execute(
        "UPDATE notifications
            SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'errored' END,
                next_attempt_at = CASE WHEN attempts = 0 THEN NULL ELSE coalesce(next_attempt_at, 0) END,
                lease_until = NULL, claim = NULL
          WHERE id = $1 AND claim = $2",
        &[&id, &claim],
    )?;
    Ok(())
}

/// Defers a claimed email that was not tried because the server could not
/// be reached: `errored`, due again at `next_attempt_at`, with `reason` as
/// its last error; no attempt is counted or logged.
pub fn defer_untried(
    conn: &dyn Db,
    id: NotificationId,
    claim: &str,
    next_attempt_at: i64,
    reason: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE notifications
            SET status = 'errored', next_attempt_at = $3, last_error = $4,
                lease_until = NULL, claim = NULL
          WHERE id = $1 AND claim = $2",
        &[&id, &claim, &next_attempt_at, &reason],
    )?;
    Ok(())
}

/// Renews the lease of every email the flush named `claim` holds, to
/// `lease_ms` from now (the caller's `now` on SQLite, the server's clock on
/// PostgreSQL). (The WHERE repeats the due
/// index's, so SQLite reads that index only.)
pub fn extend_claim(conn: &dyn Db, claim: &str, now: i64, lease_ms: i64) -> Result<()> {
    match conn.backend() {
        Backend::Sqlite => conn.execute(
            "UPDATE notifications SET lease_until = $2
              WHERE channel = 'email' AND (status = 'pending' OR status = 'errored' OR status = 'processing')
                AND status = 'processing' AND claim = $1",
            &[&claim, &(now + lease_ms)],
        )?,
        // The index `notifications_by_claim` finds the rows.
        Backend::Postgres => conn.execute(
            concat!(
                "UPDATE notifications SET lease_until = ",
                server_now!(),
                " + $2 WHERE channel = 'email' AND status = 'processing' AND claim = $1"
            ),
            &[&claim, &lease_ms],
        )?,
    };
    Ok(())
}

/// Renews the lease of the emails `ids` that the flush named `claim` still
/// holds, as `extend_claim` does for all it holds. By ID, so it costs a
/// lookup per email, where `extend_claim` reads the whole due queue on SQLite
/// (no index there has the claim token): a flush renews this way what it holds when it
/// claims its next batch, which is only the message or two in transmission.
pub fn renew(
    conn: &dyn Db,
    claim: &str,
    ids: &[NotificationId],
    now: i64,
    lease_ms: i64,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    match conn.backend() {
        Backend::Sqlite => {
            for id in ids {
                conn.execute(
                    "UPDATE notifications SET lease_until = $3
                      WHERE id = $1 AND claim = $2 AND status = 'processing'",
                    &[id, &claim, &(now + lease_ms)],
                )?;
            }
        }
        Backend::Postgres => {
            let ids: Vec<Option<i64>> = ids.iter().map(|id| Some(id.get())).collect();
            conn.execute(
                concat!(
                    "UPDATE notifications SET lease_until = ",
                    server_now!(),
                    " + $3 WHERE id = ANY($1) AND claim = $2 AND status = 'processing'"
                ),
                &[&ids, &claim, &lease_ms],
            )?;
        }
    }
    Ok(())
}

pub(super) fn insert_attempt(
    conn: &dyn Db,
    id: NotificationId,
    at: i64,
    outcome: &str,
    reply: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO attempts (notification_id, seq, at, outcome, reply)
         VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM attempts WHERE notification_id = $1), $2, $3, $4)",
        &[&id, &at, &outcome, &reply],
    )?;
    Ok(())
}

// ---- Operator views and actions ------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct QueueRow {
    pub id: NotificationId,
    pub channel: Channel,
    pub username: String,
    pub to_addr: Option<String>,
    pub ticket_id: TicketId,
    pub status: NotificationStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    pub title: String,
    pub message_id: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

fn queue_row(row: &Row<'_, '_>) -> Result<QueueRow> {
    Ok(QueueRow {
        id: row.parse(0)?,
        channel: row.parse(1)?,
        username: row.text(2)?,
        to_addr: row.opt_text(3)?,
        ticket_id: row.parse(4)?,
        status: row.parse(5)?,
        attempts: row.int(6)?,
        next_attempt_at: row.opt_int(7)?,
        last_error: row.opt_text(8)?,
        title: row.text(9)?,
        message_id: row.opt_text(10)?,
        created_at: row.int(11)?,
        delivered_at: row.opt_int(12)?,
    })
}

/// Notifications, newest first, optionally of one state or channel.
pub fn list(
    conn: &dyn Db,
    status: Option<NotificationStatus>,
    channel: Option<Channel>,
    limit: u32,
) -> Result<Vec<QueueRow>> {
    conn.query(
        concat!(
            queue_select!(),
            " WHERE (CAST($1 AS TEXT) IS NULL OR n.status = $1)
                AND (CAST($2 AS TEXT) IS NULL OR n.channel = $2)
              ORDER BY n.id DESC LIMIT $3"
        ),
        &[
            &status.map(|s| s.as_str()),
            &channel.map(|c| c.as_str()),
            &limit,
        ],
        queue_row,
    )
}

pub fn by_id(conn: &dyn Db, id: NotificationId) -> Result<Option<QueueRow>> {
    conn.query_opt(
        concat!(queue_select!(), " WHERE n.id = $1"),
        &[&id],
        queue_row,
    )
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: i64,
    pub outcome: String,
    pub reply: String,
}

/// A notification's attempts, oldest first.
pub fn attempts_of(conn: &dyn Db, id: NotificationId) -> Result<Vec<Attempt>> {
    conn.query(
        "SELECT at, outcome, reply FROM attempts WHERE notification_id = $1 ORDER BY seq",
        &[&id],
        |row| {
            Ok(Attempt {
                at: row.int(0)?,
                outcome: row.text(1)?,
                reply: row.text(2)?,
            })
        },
    )
}

/// Puts one email back to `pending` with its attempt count reset (the log is kept).
pub fn requeue(conn: &dyn Db, id: NotificationId) -> Result<()> {
    conn.execute(
        "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = NULL,
                lease_until = NULL, claim = NULL
          WHERE id = $1",
        &[&id],
    )?;
    Ok(())
}

/// The IDs of every failed email.
pub fn failed_ids(conn: &dyn Db) -> Result<Vec<NotificationId>> {
    conn.query(
        "SELECT id FROM notifications WHERE channel = 'email' AND status = 'failed' ORDER BY id",
        &[],
        |row| row.parse(0),
    )
}

/// What a purge may delete: email that is `sent` or `failed` and in-app
/// notifications that were read, created before `$1`, of channel `$2`
/// unless it is NULL. Never an unread in-app notification, never email still
/// due (`pending`, `processing`, `errored`).
macro_rules! purgeable {
    () => {
        "created_at < $1 AND (CAST($2 AS TEXT) IS NULL OR channel = $2)
         AND ((channel = 'email' AND (status = 'sent' OR status = 'failed'))
              OR (channel = 'app' AND read_at IS NOT NULL))"
    };
}

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
pub fn purgeable(conn: &dyn Db, before: i64, channel: Option<Channel>) -> Result<Purged> {
    conn.query_one(
        concat!(
            "SELECT count(*) FILTER (WHERE channel = 'email' AND status = 'sent'),
                    count(*) FILTER (WHERE channel = 'email' AND status = 'failed'),
                    count(*) FILTER (WHERE channel = 'app')
               FROM notifications WHERE ",
            purgeable!()
        ),
        &[&before, &channel.map(|c| c.as_str())],
        |row| {
            Ok(Purged {
                email_sent: row.int(0)? as u64,
                email_failed: row.int(1)? as u64,
                app_read: row.int(2)? as u64,
            })
        },
    )
}

/// Deletes what `purgeable` counts, with the attempts of the deleted emails,
/// and returns how many of each kind it deleted.
pub fn purge(conn: &dyn Db, before: i64, channel: Option<Channel>) -> Result<Purged> {
    // Attempts go with their email (ON DELETE CASCADE); the counts are of
    // the rows this statement deleted.
    let deleted = conn.query(
        concat!(
            "DELETE FROM notifications WHERE ",
            purgeable!(),
            " RETURNING channel, status"
        ),
        &[&before, &channel.map(|c| c.as_str())],
        |row| Ok((row.text(0)?, row.text(1)?)),
    )?;
    let mut purged = Purged::default();
    for (channel, status) in deleted {
        match (channel.as_str(), status.as_str()) {
            ("email", "sent") => purged.email_sent += 1,
            ("email", _) => purged.email_failed += 1,
            _ => purged.app_read += 1,
        }
    }
    Ok(purged)
}

/// (channel, status, count) for every combination present.
pub fn counts(conn: &dyn Db) -> Result<Vec<(Channel, NotificationStatus, i64)>> {
    conn.query(
        "SELECT channel, status, count(*) FROM notifications GROUP BY channel, status
          ORDER BY channel, status",
        &[],
        |row| Ok((row.parse(0)?, row.parse(1)?, row.int(2)?)),
    )
}

/// When the oldest email due at `now` was created.
pub fn oldest_due(conn: &dyn Db, now: i64) -> Result<Option<i64>> {
    let sql = match conn.backend() {
        Backend::Sqlite => concat!(
            "SELECT min(created_at) FROM notifications WHERE ",
            due!(sqlite)
        ),
        Backend::Postgres => concat!(
            "SELECT min(created_at) FROM notifications WHERE ",
            due!(postgres)
        ),
    };
    conn.query_one(sql, &[&now, &now], |row| row.opt_int(0))
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
pub fn record_flush_run(conn: &dyn Db, run: &FlushRun) -> Result<()> {
    conn.execute(
        "INSERT INTO flush_runs (started_at, finished_at, claimed, sent, deferred, failed)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &run.started_at,
            &run.finished_at,
            &(run.claimed as i64),
            &(run.sent as i64),
            &(run.deferred as i64),
            &(run.failed as i64),
        ],
    )?;
    Ok(())
}

pub fn last_flush_run(conn: &dyn Db) -> Result<Option<FlushRun>> {
    conn.query_opt(
        "SELECT started_at, finished_at, claimed, sent, deferred, failed FROM flush_runs
          ORDER BY id DESC LIMIT 1",
        &[],
        |row| {
            Ok(FlushRun {
                started_at: row.int(0)?,
                finished_at: row.int(1)?,
                claimed: row.int(2)? as u64,
                sent: row.int(3)? as u64,
                deferred: row.int(4)? as u64,
                failed: row.int(5)? as u64,
            })
        },
    )
}

/// When the next deferred (`errored`) email that is not due at `now` becomes
/// due, if any.
pub fn next_due_after(conn: &dyn Db, now: i64) -> Result<Option<i64>> {
    conn.query_one(
        "SELECT min(next_attempt_at) FROM notifications
          WHERE channel = 'email' AND status = 'errored' AND next_attempt_at > $1",
        &[&now],
        |row| row.opt_int(0),
    )
}

/// When the claim on a `processing` email expires (`None` for any other state).
pub fn lease_until(conn: &dyn Db, id: NotificationId) -> Result<Option<i64>> {
    Ok(conn
        .query_opt(
            "SELECT lease_until FROM notifications WHERE id = $1 AND status = 'processing'",
            &[&id],
            |row| row.opt_int(0),
        )?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn insert(conn: &Connection, new: &NewNotification<'_>) -> Result<i64> {
        Ok(insert_all(conn, std::slice::from_ref(new))?[0].get())
    }

    /// `claim_due` as the flush calls it, with the lease given as its end.
    fn claim(
        conn: &Connection,
        now: i64,
        run_started: i64,
        lease_until: i64,
        claim: &str,
        limit: u32,
    ) -> Result<Vec<Claimed>> {
        claim_due(
            conn,
            &ClaimRequest {
                now,
                run_started,
                lease_ms: lease_until - now,
                claim,
                limit,
            },
        )
    }
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
    fn ticket_by(conn: &Connection, user_id: UserId) -> TicketId {
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
        let conn = store.sqlite();
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
            let event = events::insert(
                conn,
                ticket,
                crate::model::EventKind::New.into(),
                user.id,
                "{}",
                &WORDING,
                0,
            )
            .unwrap();
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
                    reason: None,
                },
            )
            .unwrap();
        }
        store
    }

    /// Writes `rounds` events on one ticket, each with an in-app notification
    /// for every user in `users` and an email for the first; returns the store
    /// and the users' IDs.
    fn inboxes(users: &[&str], rounds: usize) -> (Store, Vec<UserId>) {
        let store = Store::open_in_memory();
        let conn = store.sqlite();
        let ids: Vec<UserId> = users
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
    fn add_rounds(conn: &Connection, ids: &[UserId], rounds: usize) {
        let ticket = TicketId(1);
        for _ in 0..rounds {
            let event = events::insert(
                conn,
                ticket,
                crate::model::EventKind::New.into(),
                ids[0],
                "{}",
                &WORDING,
                0,
            )
            .unwrap();
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
                            reason: None,
                        },
                    )
                    .unwrap();
                }
            }
        }
    }

    fn sql_ids(conn: &Connection, sql: &str, user_id: UserId) -> Vec<NotificationId> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([user_id.get()], |row| row.get(0).map(NotificationId))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The user's in-app notifications (or unread ones), newest first, from the ledger itself.
    fn ledger(conn: &Connection, user_id: UserId, unread_only: bool) -> Vec<NotificationId> {
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

    fn listed(
        conn: &Connection,
        user_id: UserId,
        unread_only: bool,
        limit: u32,
    ) -> Vec<NotificationId> {
        inbox(conn, user_id, unread_only, limit)
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect()
    }

    /// Every listing and count of the user agrees with the ledger.
    fn assert_inbox_matches_ledger(conn: &Connection, user_id: UserId) {
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
        let conn = store.sqlite();
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
        let thirds: Vec<NotificationId> = ledger(conn, a, false).into_iter().step_by(3).collect();
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
            [b.get()],
        )
        .unwrap();
        conn.execute(
            "DELETE FROM notifications WHERE user_id = ?1 AND channel = 'app' AND id % 5 = 0",
            [c.get()],
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
        assert_eq!(
            unread_count(conn, UserId(999)).unwrap(),
            0,
            "a user with nothing"
        );
    }

    #[test]
    fn an_unknown_stored_value_is_a_damaged_row_in_tickets_and_notifications() {
        let (store, _) = inboxes(&["a"], 1);
        let conn = store.sqlite();
        conn.pragma_update(None, "ignore_check_constraints", true)
            .unwrap();
        conn.execute_batch(
            "UPDATE tickets SET status = 'lost'; UPDATE notifications SET status = 'lost';",
        )
        .unwrap();
        let ticket = tickets::by_id(conn, TicketId(1)).unwrap_err().to_string();
        let notification = by_id(conn, NotificationId(1)).unwrap_err().to_string();
        for err in [ticket, notification] {
            assert!(err.contains("unknown stored value `lost`"), "{err}");
        }
    }

    #[test]
    fn a_notification_never_changes_user_or_channel() {
        let (store, users) = inboxes(&["a", "b"], 1);
        let err = store
            .sqlite()
            .execute(
                "UPDATE notifications SET user_id = ?1 WHERE channel = 'app'",
                [users[1].get()],
            )
            .unwrap_err();
        assert!(err.to_string().contains("never change"), "{err}");
    }

    fn ids(claimed: &[Claimed]) -> Vec<i64> {
        claimed.iter().map(|c| c.id.get()).collect()
    }

    #[test]
    fn claims_take_high_priority_first_and_never_overlap() {
        let store = queue(6);
        let conn = store.sqlite();
        let first = claim(conn, 1000, 1000, 2000, "a", 4).unwrap();
        assert_eq!(ids(&first), [3, 6, 2, 5], "high, then medium, oldest first");
        let second = claim(conn, 1000, 1000, 2000, "b", 4).unwrap();
        assert_eq!(ids(&second), [1, 4], "only what the first claim left");
        assert!(claim(conn, 1000, 1000, 2000, "c", 4).unwrap().is_empty());
    }

    #[test]
    fn an_expired_lease_is_claimed_again_and_logged_as_possibly_sent() {
        let store = queue(1);
        let conn = store.sqlite();
        assert_eq!(
            ids(&claim(conn, 1000, 1000, 2000, "dead", 10).unwrap()),
            [1]
        );
        assert!(
            claim(conn, 1999, 1999, 3000, "early", 10)
                .unwrap()
                .is_empty(),
            "lease still held"
        );
        let again = claim(conn, 2000, 2000, 3000, "late", 10).unwrap();
        assert_eq!(again[0].claimed_from, NotificationStatus::Processing);
        assert_eq!(
            attempts_of(conn, NotificationId(1)).unwrap()[0].outcome,
            "lease_expired"
        );
        assert!(!holds(conn, NotificationId(1), "dead").unwrap());
        assert!(holds(conn, NotificationId(1), "late").unwrap());
    }

    #[test]
    fn a_deferred_email_waits_for_its_time_and_for_the_next_run() {
        let store = queue(1);
        let conn = store.sqlite();
        claim(conn, 1000, 1000, 9000, "a", 10).unwrap();
        let record = AttemptRecord {
            id: NotificationId(1),
            claim: "a".into(),
            at: 1100,
            status: NotificationStatus::Errored,
            next_attempt_at: Some(1500),
            outcome: "deferred",
            reply: "451 later".into(),
        };
        record_attempts(conn, &[record]).unwrap();
        assert!(
            claim(conn, 1400, 1000, 9000, "a", 10).unwrap().is_empty(),
            "not due yet"
        );
        assert!(
            claim(conn, 1600, 1000, 9000, "a", 10).unwrap().is_empty(),
            "not again in the same run"
        );
        assert_eq!(
            ids(&claim(conn, 1600, 1600, 9000, "b", 10).unwrap()),
            [1],
            "due for a later run"
        );
        let row = by_id(conn, NotificationId(1)).unwrap().unwrap();
        assert_eq!(
            (row.attempts, row.last_error.as_deref()),
            (1, Some("451 later"))
        );
    }

    #[test]
    fn a_stale_claim_cannot_overwrite_the_new_holder_but_sent_always_wins() {
        let store = queue(2);
        let conn = store.sqlite();
        claim(conn, 1000, 1000, 2000, "old", 10).unwrap();
        claim(conn, 3000, 3000, 9000, "new", 10).unwrap();
        let stale = |id, status| AttemptRecord {
            id,
            claim: "old".into(),
            at: 3500,
            status,
            next_attempt_at: Some(99_999),
            outcome: "x",
            reply: "r".into(),
        };
        record_attempts(
            conn,
            &[stale(NotificationId(1), NotificationStatus::Errored)],
        )
        .unwrap();
        assert_eq!(
            by_id(conn, NotificationId(1)).unwrap().unwrap().status,
            NotificationStatus::Processing
        );
        record_attempts(conn, &[stale(NotificationId(2), NotificationStatus::Sent)]).unwrap();
        assert_eq!(
            by_id(conn, NotificationId(2)).unwrap().unwrap().status,
            NotificationStatus::Sent
        );
    }

    #[test]
    fn many_notifications_at_once_get_their_own_ids_in_order() {
        // 70 users, an in-app notification each and an email for every
        // other one: 105 rows, four statements of rows (the last partial).
        let names: Vec<String> = (0..70).map(|i| format!("u{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (store, users) = inboxes(&refs, 0);
        let conn = store.sqlite();
        let event = events::insert(
            conn,
            TicketId(1),
            crate::model::RecordedKind::Ticket(crate::model::EventKind::New),
            users[0],
            "{}",
            &WORDING,
            0,
        )
        .unwrap();
        let emails: Vec<String> = users.iter().map(|u| format!("<{u}@x>")).collect();
        let mut new = Vec::new();
        for (i, &user_id) in users.iter().enumerate() {
            for channel in [Channel::App, Channel::Email] {
                if channel == Channel::Email && i % 2 == 1 {
                    continue;
                }
                let email = channel == Channel::Email;
                new.push(NewNotification {
                    event_id: event.id,
                    ticket_id: TicketId(1),
                    user_id,
                    channel,
                    priority: NotificationPriority::High,
                    status: if email {
                        NotificationStatus::Pending
                    } else {
                        NotificationStatus::Sent
                    },
                    to_addr: email.then_some("a@example.org"),
                    message_id: email.then_some(emails[i].as_str()),
                    created_at: 7,
                    delivered_at: (!email).then_some(7),
                    reason: Some("developers"),
                });
            }
        }
        let ids = insert_all(conn, &new).unwrap();
        assert_eq!(ids.len(), 105);
        for (id, new) in ids.iter().zip(&new) {
            let (user_id, channel, message_id): (i64, String, Option<String>) = conn
                .query_row(
                    "SELECT user_id, channel, message_id FROM notifications WHERE id = ?1",
                    [id.get()],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .unwrap();
            assert_eq!(
                (user_id, channel.as_str(), message_id.as_deref()),
                (new.user_id.get(), new.channel.as_str(), new.message_id)
            );
        }
        assert_eq!(
            conn.query_row("SELECT count(*) FROM inbox_recent", [], |row| row
                .get::<_, i64>(0))
                .unwrap(),
            70,
            "every in-app one is in the inbox"
        );
    }

    #[test]
    fn renew_extends_only_the_named_emails_this_flush_still_holds() {
        let store = queue(4);
        let conn = store.sqlite();
        let mine = claim(conn, 10_000, 10_000, 20_000, "a", 2).unwrap();
        let theirs = claim(conn, 10_000, 10_000, 20_000, "b", 2).unwrap();
        renew(
            conn,
            "a",
            &[mine[0].id, theirs[0].id, NotificationId(99)],
            15_000,
            10_000,
        )
        .unwrap();
        assert_eq!(lease_until(conn, mine[0].id).unwrap(), Some(25_000));
        assert_eq!(lease_until(conn, mine[1].id).unwrap(), Some(20_000));
        assert_eq!(lease_until(conn, theirs[0].id).unwrap(), Some(20_000));
        renew(conn, "a", &[], 15_000, 10_000).unwrap();
    }
}

/// The statements that take a list of IDs or many rows (`not_in_inbox`,
/// `mark_read`, `digests::take_held`), answered as text on both backends.
#[cfg(test)]
mod set_based_tests {
    use super::*;
    use crate::model::{Priority, Purpose};
    use crate::store::db::{PgDb, StatementCache};
    use crate::store::postgres::migrate;
    use crate::store::postgres::testing::{FreshDatabase, client};
    use crate::store::{digests, tickets, users};

    fn reads(db: &dyn Db) -> Vec<String> {
        let new = |name: &'static str, email: &'static str| users::NewUser {
            username: name,
            email,
            name: "",
        };
        let ann = users::insert(db, &new("ann", "ann@example.org"), 1)
            .unwrap()
            .id;
        let bob = users::insert(db, &new("bob", "bob@example.org"), 2)
            .unwrap()
            .id;
        let ticket = tickets::insert(
            db,
            &tickets::NewTicket {
                created_by: ann,
                purpose: Purpose::App,
                priority: Priority::Low,
                description: "d",
            },
            10,
        )
        .unwrap();
        let event = |title: &str| {
            db.query_one(
                "INSERT INTO events (ticket_id, kind, actor_id, data, title, body, url, created_at)
                 VALUES ($1, 'comment', $2, '{}', $3, 'B', '/u', 20) RETURNING id",
                &[&ticket, &bob, &title],
                |row| row.parse::<crate::model::EventId>(0),
            )
            .unwrap()
        };
        let (first, second, third) = (event("first"), event("second"), event("third"));
        let row = |event_id, user_id, channel, status, created_at| NewNotification {
            event_id,
            ticket_id: ticket,
            user_id,
            channel,
            priority: NotificationPriority::Low,
            status,
            to_addr: (channel == Channel::Email).then_some("ann@example.org"),
            message_id: None,
            created_at,
            delivered_at: (channel == Channel::App).then_some(created_at),
            reason: Some("watchers"),
        };
        let (app, email) = (Channel::App, Channel::Email);
        let (sent, held) = (NotificationStatus::Sent, NotificationStatus::Held);
        let ids = insert_all(
            db,
            &[
                row(first, ann, app, sent, 30),
                row(second, ann, app, sent, 31),
                row(third, ann, app, sent, 32),
                row(second, bob, app, sent, 33),
                row(second, ann, email, held, 34),
                row(first, ann, email, held, 35),
                row(first, bob, email, held, 36),
            ],
        )
        .unwrap();
        let (a1, a2, a3, b1, e1, e2) = (ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]);
        let unknown = NotificationId(9_999);
        let asked = [a3, b1, a1, e1, unknown, b1];
        let mut out = vec![
            format!(
                "{:?}",
                not_in_inbox(db, ann, &asked).unwrap() == [b1, e1, unknown, b1]
            ),
            format!("{:?}", not_in_inbox(db, ann, &[]).unwrap()),
            format!("{}", mark_read(db, ann, &[a1, a3, b1, e1, a1], 40).unwrap()),
            format!("{}", mark_read(db, ann, &[a1, a2], 41).unwrap()),
            format!("{}", mark_read(db, ann, &[], 42).unwrap()),
            format!(
                "{} {}",
                unread_count(db, ann).unwrap(),
                unread_count(db, bob).unwrap()
            ),
        ];
        let taken = digests::take_held(db, ann, 50).unwrap();
        out.push(format!(
            "{:?}",
            taken
                .iter()
                .map(|h| (
                    h.id == e1 || h.id == e2,
                    h.event_id == first || h.event_id == second,
                    h.title.as_str(),
                    h.url.as_str()
                ))
                .collect::<Vec<_>>()
        ));
        out.push(format!("{:?}", digests::take_held(db, ann, 51).unwrap()));
        out.push(format!(
            "{}",
            digests::users_with_held(db, UserId(0), 10).unwrap() == [bob]
        ));
        out
    }

    #[test]
    fn id_lists_and_held_email_are_answered_alike_on_both_backends() {
        let sqlite = crate::store::Store::open_in_memory();
        let on_sqlite = reads(sqlite.conn());
        assert_eq!(
            on_sqlite,
            [
                "true",
                "[]",
                "2",
                "1",
                "0",
                "0 1",
                "[(true, true, \"second\", \"/u\"), (true, true, \"first\", \"/u\")]",
                "[]",
                "true",
            ]
        );
        let Some(fresh) = FreshDatabase::new() else {
            return;
        };
        let mut pg = client(&fresh.target);
        migrate::migrate(&mut pg, true).unwrap();
        let mut cache = StatementCache::new();
        let on_postgres = reads(&PgDb::new(&mut pg, &mut cache));
        assert_eq!(on_sqlite, on_postgres);
    }
}
