//! SQL for a ticket's watchers: who follows a ticket, and since when.

use super::Result;
use super::db::Db;
use super::users::User;
use crate::model::{TicketId, UserId};

/// Makes `user_id` watch `ticket_id` from `now`; false when they already did
/// (their first `since` is kept). The caller decides the transaction.
pub fn add(conn: &dyn Db, ticket_id: TicketId, user_id: UserId, now: i64) -> Result<bool> {
    let changed = conn.execute(
        "INSERT INTO watchers (ticket_id, user_id, since) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &[&ticket_id, &user_id, &now],
    )?;
    Ok(changed > 0)
}

/// Stops `user_id` watching `ticket_id`; false when they did not.
pub fn remove(conn: &dyn Db, ticket_id: TicketId, user_id: UserId) -> Result<bool> {
    let changed = conn.execute(
        "DELETE FROM watchers WHERE ticket_id = $1 AND user_id = $2",
        &[&ticket_id, &user_id],
    )?;
    Ok(changed > 0)
}

/// A ticket's watchers, active or not, with when each started, oldest first.
/// Sorted here: SQLite's sorter copied every row, names and addresses and
/// all, into records of its own (a fifth of reading 500 watchers).
pub fn of_ticket(conn: &dyn Db, ticket_id: TicketId) -> Result<Vec<(User, i64)>> {
    let mut watchers = conn.query(
        "SELECT u.id, u.username, u.email, u.name, u.active, u.created_at, w.since
           FROM watchers w JOIN users u ON u.id = w.user_id
          WHERE w.ticket_id = $1",
        &[&ticket_id],
        |row| Ok((super::users::from_row(row)?, row.int(6)?)),
    )?;
    watchers.sort_unstable_by_key(|(user, since)| (*since, user.id));
    Ok(watchers)
}

/// Since when `user_id` watches `ticket_id`, if they do.
pub fn since(conn: &dyn Db, ticket_id: TicketId, user_id: UserId) -> Result<Option<i64>> {
    conn.query_opt(
        "SELECT since FROM watchers WHERE ticket_id = $1 AND user_id = $2",
        &[&ticket_id, &user_id],
        |row| row.int(0),
    )
}

#[cfg(test)]
mod tests {
    use crate::model::{EmailMode, EventKind, Priority, Purpose, UserId};
    use crate::store::db::{Db, PgDb, StatementCache};
    use crate::store::postgres::migrate;
    use crate::store::postgres::testing::{FreshDatabase, client};
    use crate::store::tickets::{self, AssigneeFilter};
    use crate::store::{digests, preferences, reasons, users, watchers};

    /// Every ownership query, answered as text, so both backends can be compared.
    fn ownership(db: &dyn Db) -> Vec<String> {
        let new = |name: &'static str, email: &'static str| users::NewUser {
            username: name,
            email,
            name: "",
        };
        let ann = users::insert(db, &new("ann", "ann@example.org"), 1).unwrap();
        let bob = users::insert(db, &new("bob", "bob@example.org"), 2).unwrap();
        let ticket = |by| tickets::NewTicket {
            created_by: by,
            purpose: Purpose::App,
            priority: Priority::Low,
            description: "d",
        };
        let one = tickets::insert(db, &ticket(ann.id), 10).unwrap();
        let two = tickets::insert(db, &ticket(bob.id), 11).unwrap();
        tickets::set_assignee(db, one, Some(bob.id), 12).unwrap();
        let listed = |filter| {
            tickets::list_assigned(db, None, None, filter)
                .unwrap()
                .iter()
                .map(|t| (t.id, t.assignee.clone()))
                .collect::<Vec<_>>()
        };
        let mut out = vec![
            format!("{:?}", listed(Some(AssigneeFilter::User(bob.id)))),
            format!("{:?}", listed(Some(AssigneeFilter::Nobody))),
            format!("{:?}", listed(None)),
        ];
        out.push(format!(
            "{} {} {} {}",
            watchers::add(db, one, ann.id, 20).unwrap(),
            watchers::add(db, one, ann.id, 21).unwrap(),
            watchers::add(db, one, bob.id, 22).unwrap(),
            watchers::remove(db, two, bob.id).unwrap(),
        ));
        out.push(format!(
            "{:?} {:?}",
            watchers::of_ticket(db, one)
                .unwrap()
                .iter()
                .map(|(u, since)| (u.username.clone(), *since))
                .collect::<Vec<_>>(),
            watchers::since(db, one, ann.id).unwrap()
        ));
        preferences::set(
            db,
            ann.id,
            EventKind::Comment,
            Some(EmailMode::Digest),
            None,
        )
        .unwrap();
        preferences::set(db, ann.id, EventKind::Comment, None, Some(false)).unwrap();
        preferences::set(db, bob.id, EventKind::New, None, Some(false)).unwrap();
        let mut chosen = preferences::for_users(db, EventKind::Comment, &[ann.id, bob.id]).unwrap();
        chosen.sort_by_key(|s| s.user_id);
        out.push(format!(
            "{chosen:?} {:?}",
            preferences::of_user(db, bob.id).unwrap()
        ));
        // A held email to take, written as the fan-out would.
        let event = db
            .query_one(
                "INSERT INTO events (ticket_id, kind, actor_id, data, title, body, url, created_at)
                 VALUES ($1, 'comment', $2, '{}', 'T', 'B', '/u', 30) RETURNING id",
                &[&one, &bob.id],
                |row| row.int(0),
            )
            .unwrap();
        let held = db
            .query_one(
                "INSERT INTO notifications (event_id, ticket_id, user_id, channel, priority, status, created_at, reason)
                 VALUES ($1, $2, $3, 'email', 1, 'held', 31, 'watchers') RETURNING id",
                &[&event, &one, &ann.id],
                |row| row.parse(0),
            )
            .unwrap();
        out.push(format!("{:?}", reasons::origin(db, held).unwrap()));
        out.push(format!(
            "{:?}",
            digests::users_with_held(db, UserId(0), 10).unwrap()
        ));
        out.push(format!("{:?}", digests::take_held(db, ann.id, 40).unwrap()));
        out.push(format!("{:?}", digests::take_held(db, ann.id, 41).unwrap()));
        out.push(format!(
            "{:?}",
            digests::users_with_held(db, UserId(0), 10).unwrap()
        ));
        out
    }

    #[test]
    fn ownership_queries_behave_alike_on_both_backends() {
        let sqlite = crate::store::Store::open_in_memory();
        let on_sqlite = ownership(sqlite.conn());
        assert!(
            on_sqlite[6].contains("reason: Some(\"watchers\")"),
            "{on_sqlite:?}"
        );
        assert!(on_sqlite[8].contains("title: \"T\""), "{on_sqlite:?}");
        assert_eq!(
            (on_sqlite[9].as_str(), on_sqlite[10].as_str()),
            ("[]", "[]")
        );
        let Some(fresh) = FreshDatabase::new() else {
            return;
        };
        let mut pg = client(&fresh.target);
        migrate::migrate(&mut pg, true).unwrap();
        let mut cache = StatementCache::new();
        let on_postgres = ownership(&PgDb::new(&mut pg, &mut cache));
        assert_eq!(on_sqlite, on_postgres);
    }
}
