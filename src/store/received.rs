//! SQL for received mail (SPEC §6): what `mail receive` handled, recorded
//! once by Message-ID in the same transaction as what it did; the questions
//! classification asks ([`StoreLookup`], `mail::classify::Lookup`); and what
//! a bounce does to the notification it reports on.

use super::db::{Db, Row};
use super::{Result, StoreError, threads, users};
use crate::mail::classify::{Lookup, NotificationRef, UserRef};
use crate::model::{EventId, NotificationId, ReceivedAction, TicketId, UserId};
use crate::notify::message;

/// One handled message, for `mail list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub id: i64,
    pub message_id: Option<String>,
    pub action: ReceivedAction,
    pub ticket_id: Option<TicketId>,
    pub reason: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    pub at: i64,
}

pub struct NewReceived<'a> {
    pub message_id: Option<&'a str>,
    pub action: ReceivedAction,
    pub ticket_id: Option<TicketId>,
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
            "SELECT id FROM received WHERE message_id = $1",
            &[&message_id],
            |row| row.int(0),
        )?
        .is_some())
}

fn from_row(row: &Row<'_, '_>) -> Result<Received> {
    Ok(Received {
        id: row.int(0)?,
        message_id: row.opt_text(1)?,
        action: row.parse(2)?,
        ticket_id: row.parse(3)?,
        reason: row.opt_text(4)?,
        from: row.opt_text(5)?,
        subject: row.opt_text(6)?,
        at: row.int(7)?,
    })
}

/// Handled messages, newest first, optionally of one action only.
pub fn list(conn: &dyn Db, action: Option<ReceivedAction>, limit: u32) -> Result<Vec<Received>> {
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
        id: row.parse(0)?,
        ticket_id: row.parse(1)?,
        to_addr: row.opt_text(2)?.unwrap_or_default(),
    })
}

/// The email notification to `user` about `event` sent with this
/// Message-ID: found by its unique key, then compared whole (the nonce
/// tells apart databases that reuse IDs).
pub fn notification_by_message_id(
    conn: &dyn Db,
    event: EventId,
    user: UserId,
    message_id: &str,
) -> Result<Option<NotificationRef>> {
    conn.query_opt(
        "SELECT id, ticket_id, to_addr FROM notifications
          WHERE event_id = $1 AND user_id = $2 AND channel = 'email' AND message_id = $3",
        &[&event, &user, &message_id],
        notification_row,
    )
}

/// The latest email notification about `ticket` to `address` (any case).
pub fn notification_for_ticket_recipient(
    conn: &dyn Db,
    ticket: TicketId,
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
pub fn fail_bounced(
    conn: &dyn Db,
    notification_id: NotificationId,
    error: &str,
    at: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE notifications
            SET status = 'failed', last_error = $2, next_attempt_at = NULL,
                lease_until = NULL, claim = NULL
          WHERE id = $1",
        &[&notification_id, &error],
    )?;
    super::notifications::insert_attempt(conn, notification_id, at, "bounced", error)
}

/// Classification's questions, answered from one connection or transaction.
pub struct StoreLookup<'a>(pub &'a dyn Db);

impl Lookup for StoreLookup<'_> {
    type Error = StoreError;

    fn our_notification_by_message_id(&self, message_id: &str) -> Result<Option<NotificationRef>> {
        // Every email the help desk queues has a Message-ID naming its event
        // and user; any other form is not one of ours.
        match message::minted_by(message_id) {
            Some((event, user)) => notification_by_message_id(self.0, event, user, message_id),
            None => Ok(None),
        }
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
            .query_opt("SELECT id FROM tickets WHERE id = $1", &[&ticket], |row| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Priority, Purpose};
    use crate::store::db::{PgDb, StatementCache};
    use crate::store::postgres::migrate;
    use crate::store::postgres::testing::{FreshDatabase, client};
    use crate::store::{suppressions, tickets};

    /// Received mail, thread roots and suppressions, the same calls on a backend.
    fn mail_tables(db: &dyn Db) -> Vec<String> {
        let ann = users::insert(
            db,
            &users::NewUser {
                username: "ann",
                email: "Ann@Example.org",
                name: "",
            },
            1,
        )
        .unwrap();
        let ticket = tickets::insert(
            db,
            &tickets::NewTicket {
                created_by: ann.id,
                purpose: Purpose::App,
                priority: Priority::Low,
                description: "d",
            },
            2,
        )
        .unwrap();
        let root = threads::ensure(db, ticket, "<ticket-1.a@h>").unwrap();
        let again = threads::ensure(db, ticket, "<ticket-1.b@h>").unwrap();
        let new = |id: Option<&'static str>, action: ReceivedAction, at: i64| NewReceived {
            message_id: id,
            action,
            ticket_id: Some(ticket),
            reason: None,
            from: Some("ann@example.org"),
            subject: Some("Re: x"),
            at,
        };
        let first = record(db, &new(Some("<m1@x>"), ReceivedAction::Comment, 10)).unwrap();
        let twice = record(db, &new(Some("<m1@x>"), ReceivedAction::Comment, 11)).unwrap();
        let no_id = record(db, &new(None, ReceivedAction::Refused, 12)).unwrap();
        let no_id_again = record(db, &new(None, ReceivedAction::Refused, 13)).unwrap();
        suppressions::add(db, "Gone@Example.net", "bounced: 5.1.1", 20).unwrap();
        suppressions::add(db, "gone@example.net", "bounced: 5.1.2", 21).unwrap();
        db.execute(
            "INSERT INTO events (ticket_id, kind, actor_id, data, title, body, url, created_at)
             VALUES ($1, 'new', $2, '{}', 't', 'b', '/u', 3)",
            &[&ticket, &ann.id],
        )
        .unwrap();
        let event: EventId = db
            .query_one("SELECT max(id) FROM events", &[], |row| row.parse(0))
            .unwrap();
        let minted = message::mint_message_id(event, ann.id, 255, "h");
        db.execute(
            "INSERT INTO notifications (event_id, ticket_id, user_id, channel, priority, status,
                                        to_addr, message_id, created_at)
             VALUES ($1, $2, $3, 'email', 1, 'sent', 'Ann@Example.org', $4, 4)",
            &[&event, &ticket, &ann.id, &minted.as_str()],
        )
        .unwrap();
        let lookup = StoreLookup(db);
        let sent = lookup.our_notification_by_message_id(&minted).unwrap();
        let by_tag = notification_for_ticket_recipient(db, ticket, "ann@example.ORG").unwrap();
        fail_bounced(db, sent.as_ref().unwrap().id, "bounced: 5.1.1", 30).unwrap();
        fail_bounced(db, sent.as_ref().unwrap().id, "bounced: 5.1.1 again", 31).unwrap();
        let state = db
            .query_one(
                "SELECT n.status, n.last_error, (SELECT count(*) FROM attempts a WHERE a.notification_id = n.id)
                   FROM notifications n WHERE n.id = $1",
                &[&sent.as_ref().unwrap().id],
                |row| Ok((row.text(0)?, row.opt_text(1)?, row.int(2)?)),
            )
            .unwrap();
        // Another database's email to the same event and user (another nonce),
        // and a Message-ID not of the help desk's form.
        let other_nonce = message::mint_message_id(event, ann.id, 254, "h");
        vec![
            format!("{sent:?} {by_tag:?} {state:?}"),
            format!(
                "{:?} {:?}",
                lookup.our_notification_by_message_id(&other_nonce).unwrap(),
                lookup.our_notification_by_message_id("<other@h>").unwrap()
            ),
            format!("{root} {again} {first} {twice} {no_id} {no_id_again}"),
            format!("{:?}", threads::ticket_of(db, "<ticket-1.a@h>").unwrap()),
            format!("{:?}", threads::root(db, TicketId(99)).unwrap()),
            // Ids aside: PostgreSQL spends one on an insert that conflicts.
            format!("{:?}", without_ids(list(db, None, 10).unwrap())),
            format!(
                "{:?}",
                without_ids(list(db, Some(ReceivedAction::Refused), 1).unwrap())
            ),
            format!("{:?}", lookup.already_received("<m1@x>").unwrap()),
            format!(
                "{:?}",
                lookup.active_user_by_email("ANN@example.org").unwrap()
            ),
            format!("{:?}", lookup.ticket_exists(ticket).unwrap()),
            format!(
                "{:?}",
                suppressions::List::load(db)
                    .unwrap()
                    .reason_for("GONE@example.net")
            ),
            format!("{:?}", suppressions::all(db).unwrap()),
            format!(
                "{:?}",
                suppressions::remove(db, "gone@example.net").unwrap()
            ),
            format!(
                "{:?}",
                suppressions::remove(db, "gone@example.net").unwrap()
            ),
        ]
    }

    fn without_ids(rows: Vec<Received>) -> Vec<Received> {
        rows.into_iter().map(|r| Received { id: 0, ..r }).collect()
    }

    #[test]
    fn mail_tables_behave_alike_on_both_backends() {
        let sqlite = crate::store::Store::open_in_memory();
        let on_sqlite = mail_tables(sqlite.conn());
        for expected in [
            "<ticket-1.a@h> <ticket-1.a@h> true false true true",
            "Some(\"bounced: 5.1.2\")",
            "None None",
            "None",
        ] {
            assert!(
                on_sqlite.iter().any(|line| line == expected),
                "{expected}: {on_sqlite:#?}"
            );
        }
        assert!(
            on_sqlite[0].ends_with("(\"failed\", Some(\"bounced: 5.1.1 again\"), 2)"),
            "{}",
            on_sqlite[0]
        );
        let Some(fresh) = FreshDatabase::new() else {
            return;
        };
        let mut pg = client(&fresh.target);
        migrate::migrate(&mut pg, true).unwrap();
        let mut cache = StatementCache::new();
        let on_postgres = mail_tables(&PgDb::new(&mut pg, &mut cache));
        assert_eq!(on_sqlite, on_postgres);
    }
}
