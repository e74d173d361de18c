//! SQL for received mail (SPEC §6): what `mail receive` handled, recorded
//! once by Message-ID in the same transaction as what it did; the questions
//! classification asks ([`StoreLookup`], `mail::classify::Lookup`); and what
//! a bounce does to the notification it reports on.

use super::db::{Db, Row};
use super::{Result, StoreError, threads, users};
use crate::mail::classify::{Lookup, NotificationRef, TicketId, UserRef};

/// One handled message, for `mail list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub id: i64,
    pub message_id: Option<String>,
    pub action: String,
    pub ticket_id: Option<i64>,
    pub reason: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub at: i64,
}

pub struct NewReceived<'a> {
    pub message_id: Option<&'a str>,
    pub action: &'a str,
    pub ticket_id: Option<i64>,
    pub reason: Option<&'a str>,
    pub from: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub at: i64,
}

/// Records a handled message; false when its Message-ID was recorded before
/// (a redelivery racing this one: the caller rolls back what it did).
pub fn record(conn: &dyn Db, new: &NewReceived<'_>) -> Result<bool> {
    let changed = conn.execute(
        "INSERT INTO received (message_id, action, ticket_id, reason, from_addr, subject, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        &[
            &new.message_id,
            &new.action,
            &new.ticket_id,
            &new.reason,
            &new.from,
            &new.subject,
            &new.at,
        ],
    )?;
    Ok(changed > 0)
}

/// Whether a message with this Message-ID was handled before.
pub fn exists(conn: &dyn Db, message_id: &str) -> Result<bool> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM received WHERE message_id = $1",
            &[&message_id],
            |row| row.int(0),
        )?
        .is_some())
}

fn from_row(row: &Row<'_, '_>) -> Result<Received> {
    Ok(Received {
        id: row.int(0)?,
        message_id: row.opt_text(1)?,
        action: row.text(2)?,
        ticket_id: row.opt_int(3)?,
        reason: row.opt_text(4)?,
        from: row.opt_text(5)?,
        subject: row.opt_text(6)?,
        at: row.int(7)?,
    })
}

/// Handled messages, newest first, optionally of one action only.
pub fn list(conn: &dyn Db, action: Option<&str>, limit: u32) -> Result<Vec<Received>> {
    conn.query(
        "SELECT id, message_id, action, ticket_id, reason, from_addr, subject, at
           FROM received
          WHERE CAST($1 AS TEXT) IS NULL OR action = $1
          ORDER BY id DESC LIMIT $2",
        &[&action, &limit],
        from_row,
    )
}

fn notification_row(row: &Row<'_, '_>) -> Result<NotificationRef> {
    Ok(NotificationRef {
        id: row.int(0)?,
        ticket_id: row.int(1)?,
        to_addr: row.opt_text(2)?.unwrap_or_default(),
    })
}

/// The email notification sent with this Message-ID.
pub fn notification_by_message_id(
    conn: &dyn Db,
    message_id: &str,
) -> Result<Option<NotificationRef>> {
    conn.query_opt(
        "SELECT id, ticket_id, to_addr FROM notifications
          WHERE message_id = $1 AND channel = 'email'",
        &[&message_id],
        notification_row,
    )
}

/// The latest email notification about `ticket` to `address` (any case).
pub fn notification_for_ticket_recipient(
    conn: &dyn Db,
    ticket: i64,
    address: &str,
) -> Result<Option<NotificationRef>> {
    conn.query_opt(
        "SELECT id, ticket_id, to_addr FROM notifications
          WHERE ticket_id = $1 AND channel = 'email' AND lower(to_addr) = lower($2)
          ORDER BY id DESC LIMIT 1",
        &[&ticket, &address],
        notification_row,
    )
}

/// A bounce: the notification becomes `failed` with the report's words as
/// its last error, and its attempt log says it bounced.
pub fn fail_bounced(conn: &dyn Db, notification_id: i64, error: &str, at: i64) -> Result<()> {
    conn.execute(
        "UPDATE notifications
            SET status = 'failed', last_error = $2, next_attempt_at = NULL,
                lease_until = NULL, claim = NULL
          WHERE id = $1",
        &[&notification_id, &error],
    )?;
    conn.execute(
        "INSERT INTO attempts (notification_id, seq, at, outcome, reply)
         VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM attempts WHERE notification_id = $1),
                 $2, 'bounced', $3)",
        &[&notification_id, &at, &error],
    )?;
    Ok(())
}

/// Classification's questions, answered from one connection or transaction.
pub struct StoreLookup<'a>(pub &'a dyn Db);

impl Lookup for StoreLookup<'_> {
    type Error = StoreError;

    fn our_notification_by_message_id(&self, message_id: &str) -> Result<Option<NotificationRef>> {
        notification_by_message_id(self.0, message_id)
    }

    fn our_notification_for_ticket_recipient(
        &self,
        ticket: TicketId,
        address: &str,
    ) -> Result<Option<NotificationRef>> {
        notification_for_ticket_recipient(self.0, ticket, address)
    }

    fn ticket_by_thread_id(&self, message_id: &str) -> Result<Option<TicketId>> {
        threads::ticket_of(self.0, message_id)
    }

    fn ticket_exists(&self, ticket: TicketId) -> Result<bool> {
        Ok(self
            .0
            .query_opt("SELECT 1 FROM tickets WHERE id = $1", &[&ticket], |row| {
                row.int(0)
            })?
            .is_some())
    }

    fn active_user_by_email(&self, address: &str) -> Result<Option<UserRef>> {
        Ok(users::by_email(self.0, address)?
            .filter(|user| user.active)
            .map(|user| UserRef {
                id: user.id,
                username: user.username,
            }))
    }

    fn already_received(&self, message_id: &str) -> Result<bool> {
        exists(self.0, message_id)
    }
}
