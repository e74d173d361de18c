//! SQL for the suppression list: addresses that get no email (SPEC §6),
//! kept lowercased, so they match whatever case a report or a user wrote.

use super::Result;
use super::db::Db;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub address: String,
    pub reason: String,
    pub at: i64,
}

fn key(address: &str) -> String {
    address.trim().to_lowercase()
}

/// Puts `address` on the list (a second report refreshes reason and time).
pub fn add(conn: &dyn Db, address: &str, reason: &str, at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO suppressions (address, reason, at) VALUES ($1, $2, $3)
         ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, at = excluded.at",
        &[&key(address), &reason, &at],
    )?;
    Ok(())
}

/// The whole list, read once: a flush asks it about every email it sends,
/// without a query per email. (An address suppressed while a run goes on is
/// honoured from the next run.)
pub struct List(std::collections::HashMap<String, String>);

impl List {
    pub fn load(conn: &dyn Db) -> Result<List> {
        let rows = conn.query("SELECT address, reason FROM suppressions", &[], |row| {
            Ok((row.text(0)?, row.text(1)?))
        })?;
        Ok(List(rows.into_iter().collect()))
    }

    /// Whether `address` is suppressed, and why: the one question every
    /// sender asks before contacting a server.
    pub fn reason_for(&self, address: &str) -> Option<&str> {
        self.0.get(&key(address)).map(String::as_str)
    }
}

/// Takes `address` off the list; false when it was not on it.
pub fn remove(conn: &dyn Db, address: &str) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM suppressions WHERE address = $1",
        &[&key(address)],
    )? > 0)
}

/// The whole list, newest first.
pub fn all(conn: &dyn Db) -> Result<Vec<Suppression>> {
    conn.query(
        "SELECT address, reason, at FROM suppressions ORDER BY at DESC, address",
        &[],
        |row| {
            Ok(Suppression {
                address: row.text(0)?,
                reason: row.text(1)?,
                at: row.int(2)?,
            })
        },
    )
}
