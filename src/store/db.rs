//! One way to run SQL on either backend. The store's queries are written once,
//! in the SQL that SQLite and PostgreSQL both read: `$1`, `$2`… parameters
//! (SQLite takes `$N` as a named parameter, bound here by its number),
//! `RETURNING`, `ON CONFLICT`, `CAST(… AS BIGINT)`, BIGINT times in
//! milliseconds. Where the two differ (claims, schema steps, case-insensitive
//! matching), a query picks its backend's text with `Db::backend`.
//!
//! A `Db` is a connection or a transaction of either backend. Statements are
//! prepared once per connection (SQLite's statement cache, a map of prepared
//! statements on PostgreSQL), so a query costs one round trip.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{ToSql as PgToSql, Type};
use rusqlite::types::{ToSqlOutput, Value as SqliteValue};

use super::{Result, StoreError};

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A value bound to a `$N` parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Int(i64),
    Text(&'a str),
    Bool(bool),
    Null,
    /// Arrays exist on PostgreSQL only: one statement for many rows
    /// (`unnest`), where SQLite gets many rows of `VALUES` instead
    /// (`Db::each_row_values`).
    Ints(&'a [Option<i64>]),
    Texts(&'a [Option<&'a str>]),
    Bools(&'a [Option<bool>]),
}

/// What can be bound to a parameter.
pub trait Param {
    fn value(&self) -> Value<'_>;
}

impl Param for i64 {
    fn value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}

impl Param for u32 {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Bool(*self)
    }
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for &str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, Param::value)
    }
}

impl Param for Vec<Option<i64>> {
    fn value(&self) -> Value<'_> {
        Value::Ints(self)
    }
}

impl Param for Vec<Option<&str>> {
    fn value(&self) -> Value<'_> {
        Value::Texts(self)
    }
}

impl Param for Vec<Option<bool>> {
    fn value(&self) -> Value<'_> {
        Value::Bools(self)
    }
}

impl Param for Value<'_> {
    fn value(&self) -> Value<'_> {
        *self
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Value::Int(i) => ToSqlOutput::Owned(SqliteValue::Integer(i)),
            Value::Text(s) => ToSqlOutput::Borrowed(rusqlite::types::ValueRef::Text(s.as_bytes())),
            Value::Bool(b) => ToSqlOutput::Owned(SqliteValue::Integer(i64::from(b))),
            Value::Null => ToSqlOutput::Owned(SqliteValue::Null),
            Value::Ints(_) | Value::Texts(_) | Value::Bools(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "arrays are bound on PostgreSQL only".into(),
                ));
            }
        })
    }
}

impl PgToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        match *self {
            Value::Int(i) => i.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Bool(b) => b.to_sql(ty, out),
            Value::Null => Ok(postgres::types::IsNull::Yes),
            Value::Ints(values) => values.to_sql(ty, out),
            Value::Texts(values) => values.to_sql(ty, out),
            Value::Bools(values) => values.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // The value's own type decides; the server says so when it does not fit.
        true
    }

    postgres::types::to_sql_checked!();
}

/// One row of a result, read by column index.
pub enum Row<'r, 's> {
    Sqlite(&'r rusqlite::Row<'s>),
    Postgres(&'r postgres::Row),
}

impl Row<'_, '_> {
    /// Column `i`, as a type both backends read.
    fn get<T>(&self, i: usize) -> Result<T>
    where
        T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>,
    {
        match self {
            Row::Sqlite(row) => Ok(row.get(i)?),
            Row::Postgres(row) => Ok(row.try_get(i)?),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64> {
        self.get(i)
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.get(i)
    }

    pub fn text(&self, i: usize) -> Result<String> {
        self.get(i)
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.get(i)
    }

    /// A stored enum, read with its `from_stored`; a value this version does
    /// not know is a damaged row.
    pub fn stored<T>(&self, i: usize, parse: fn(&str) -> Option<T>) -> Result<T> {
        let text = self.text(i)?;
        parse(&text).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "unknown stored value `{}` in column {i}",
                crate::output::cell(&text, 40)
            ))
        })
    }

    /// A truth value: BOOLEAN on PostgreSQL, 0 or 1 on SQLite.
    pub fn bool(&self, i: usize) -> Result<bool> {
        self.get(i)
    }
}

/// The PostgreSQL calls a `Db` needs, over a client or a transaction.
pub trait PgSession {
    fn prepare(&mut self, sql: &str) -> std::result::Result<postgres::Statement, postgres::Error>;
    fn query(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn PgToSql + Sync)],
    ) -> std::result::Result<Vec<postgres::Row>, postgres::Error>;
    fn execute(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn PgToSql + Sync)],
    ) -> std::result::Result<u64, postgres::Error>;
    fn batch(&mut self, sql: &str) -> std::result::Result<(), postgres::Error>;
}

impl<C: postgres::GenericClient> PgSession for C {
    fn prepare(&mut self, sql: &str) -> std::result::Result<postgres::Statement, postgres::Error> {
        postgres::GenericClient::prepare(self, sql)
    }

    fn query(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn PgToSql + Sync)],
    ) -> std::result::Result<Vec<postgres::Row>, postgres::Error> {
        postgres::GenericClient::query(self, statement, params)
    }

    fn execute(
        &mut self,
        statement: &postgres::Statement,
        params: &[&(dyn PgToSql + Sync)],
    ) -> std::result::Result<u64, postgres::Error> {
        postgres::GenericClient::execute(self, statement, params)
    }

    fn batch(&mut self, sql: &str) -> std::result::Result<(), postgres::Error> {
        postgres::GenericClient::batch_execute(self, sql)
    }
}

/// Prepared statements of one PostgreSQL connection, by their text.
pub type StatementCache = HashMap<String, postgres::Statement>;

/// A PostgreSQL client or transaction with its connection's statement cache.
pub struct PgDb<'a> {
    inner: RefCell<(&'a mut dyn PgSession, &'a mut StatementCache)>,
    /// Whether a statement lost a deadlock or a serialization conflict: the
    /// transaction is worth running again (`PgStore::in_tx`).
    lost_a_race: std::cell::Cell<bool>,
}

impl<'a> PgDb<'a> {
    pub fn new(session: &'a mut dyn PgSession, cache: &'a mut StatementCache) -> PgDb<'a> {
        PgDb {
            inner: RefCell::new((session, cache)),
            lost_a_race: std::cell::Cell::new(false),
        }
    }

    /// Whether a statement here lost a deadlock or a serialization conflict.
    pub fn lost_a_race(&self) -> bool {
        self.lost_a_race.get()
    }

    fn run<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        call: impl FnOnce(
            &mut dyn PgSession,
            &postgres::Statement,
            &[&(dyn PgToSql + Sync)],
        ) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut inner = self.inner.borrow_mut();
        let (session, cache) = &mut *inner;
        let statement = match cache.get(sql) {
            Some(found) => found.clone(),
            None => {
                let statement = session.prepare(sql)?;
                cache.insert(sql.to_string(), statement.clone());
                statement
            }
        };
        let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
        let refs: Vec<&(dyn PgToSql + Sync)> =
            values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
        call(&mut **session, &statement, &refs).map_err(|e| {
            let err = StoreError::from(e);
            if err.is_busy() {
                self.lost_a_race.set(true);
            }
            err
        })
    }
}

/// A connection or a transaction of either backend. The store's queries take
/// `&dyn Db`, so the same function runs inside or outside a transaction, and
/// the caller decides which.
pub trait Db {
    fn backend(&self) -> Backend;

    /// Runs a query, handing each row to `each`.
    fn each_row(
        &self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&Row<'_, '_>) -> Result<()>,
    ) -> Result<()>;

    /// Runs a statement; how many rows it changed.
    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64>;

    /// Runs statements without parameters and without keeping them prepared
    /// (schema work, copies, tests).
    fn execute_batch(&self, sql: &str) -> Result<()>;

    /// Runs `head` (`INSERT INTO t (…) VALUES`), one `(…)` of `width`
    /// parameters per row of `values` (`width` values a row, in order), then
    /// `tail` (a `RETURNING` clause, or nothing), handing each row it
    /// returns to `each`. Many rows go in each statement
    /// (`ROWS_PER_VALUES`); on SQLite, where a statement costs per row less
    /// than a statement per row does and `$N` names cost per name, the
    /// parameters are positional.
    fn each_row_values(
        &self,
        head: &str,
        width: usize,
        values: &[Value<'_>],
        tail: &str,
        each: &mut dyn FnMut(&Row<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        for chunk in values.chunks(width * ROWS_PER_VALUES) {
            let sql = values_sql(head, width, chunk.len() / width, tail, |sql, n| {
                sql.push('$');
                sql.push_str(&n.to_string());
            });
            let params: Vec<&dyn Param> = chunk.iter().map(|v| v as &dyn Param).collect();
            self.each_row(&sql, &params, each)?;
        }
        Ok(())
    }
}

/// Rows per statement of `Db::each_row_values`: on SQLite, 32 took fewer
/// instructions per row than 8, 16, 64 or 256 (a 1,038-row insert).
const ROWS_PER_VALUES: usize = 32;

/// `head (p, p, …), (…)… tail`, `rows` groups of `width` parameters, each
/// written by `param` from its number (1-based).
fn values_sql(
    head: &str,
    width: usize,
    rows: usize,
    tail: &str,
    param: impl Fn(&mut String, usize),
) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * width * 7);
    sql.push_str(head);
    for row in 0..rows {
        sql.push_str(if row == 0 { " (" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            param(&mut sql, row * width + column + 1);
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

impl dyn Db + '_ {
    /// Runs a query and maps every row.
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut map: impl FnMut(&Row<'_, '_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each_row(sql, params, &mut |row| {
            out.push(map(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row a query finds, or None.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut map: impl FnMut(&Row<'_, '_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut found = None;
        self.each_row(sql, params, &mut |row| {
            if found.is_none() {
                found = Some(map(row)?);
            }
            Ok(())
        })?;
        Ok(found)
    }

    /// The row a query always finds (an aggregate, a `RETURNING` clause).
    pub fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl FnMut(&Row<'_, '_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, params, map)?
            .ok_or_else(|| StoreError::Other(format!("the query returned no row: {sql}")))
    }
}

impl Db for rusqlite::Connection {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn each_row(
        &self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&Row<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        let mut statement = self.prepare_cached(sql)?;
        bind(&mut statement, params)?;
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next()? {
            each(&Row::Sqlite(row))?;
        }
        Ok(())
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        let mut statement = self.prepare_cached(sql)?;
        bind(&mut statement, params)?;
        Ok(statement.raw_execute()? as u64)
    }

    fn execute_batch(&self, sql: &str) -> Result<()> {
        Ok(rusqlite::Connection::execute_batch(self, sql)?)
    }

    fn each_row_values(
        &self,
        head: &str,
        width: usize,
        values: &[Value<'_>],
        tail: &str,
        each: &mut dyn FnMut(&Row<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        let positional = |rows| values_sql(head, width, rows, tail, |sql, _| sql.push('?'));
        let mut full = None; // the text of a full chunk, made once
        for chunk in values.chunks(width * ROWS_PER_VALUES) {
            let rows = chunk.len() / width;
            let partial;
            let sql = if rows == ROWS_PER_VALUES {
                full.get_or_insert_with(|| positional(rows))
            } else {
                partial = positional(rows);
                &partial
            };
            let mut statement = self.prepare_cached(sql)?;
            for (index, value) in chunk.iter().enumerate() {
                statement.raw_bind_parameter(index + 1, value)?;
            }
            let mut rows = statement.raw_query();
            while let Some(row) = rows.next()? {
                each(&Row::Sqlite(row))?;
            }
        }
        Ok(())
    }
}

impl Db for PgDb<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn each_row(
        &self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&Row<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        let rows = self.run(sql, params, |session, statement, params| {
            session.query(statement, params)
        })?;
        rows.iter().try_for_each(|row| each(&Row::Postgres(row)))
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        self.run(sql, params, |session, statement, params| {
            session.execute(statement, params)
        })
    }

    fn execute_batch(&self, sql: &str) -> Result<()> {
        Ok(self.inner.borrow_mut().0.batch(sql)?)
    }
}

/// Binds `$N` parameters by their number, wherever they stand in the text.
fn bind(statement: &mut rusqlite::CachedStatement<'_>, params: &[&dyn Param]) -> Result<()> {
    for index in 1..=statement.parameter_count() {
        let name = statement.parameter_name(index).unwrap_or_default();
        let number: usize = name
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .filter(|n| (1..=params.len()).contains(n))
            .ok_or_else(|| {
                StoreError::Other(format!(
                    "parameter `{name}` has no value ({} given)",
                    params.len()
                ))
            })?;
        statement.raw_bind_parameter(index, params[number - 1].value())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Priority, Purpose, Status};
    use crate::store::postgres::testing::{FreshDatabase, client};
    use crate::store::{groups, postgres::migrate, tickets, users};

    #[test]
    fn parameters_bind_by_their_number_wherever_they_stand() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let db: &dyn Db = &conn;
        let got = db
            .query_one("SELECT $2, $1, $2", &[&1_i64, &"two"], |row| {
                Ok((row.text(0)?, row.int(1)?, row.text(2)?))
            })
            .unwrap();
        assert_eq!(got, ("two".to_string(), 1, "two".to_string()));
        let err = db.query_one("SELECT $3", &[&1_i64], |row| row.int(0));
        assert!(err.is_err());
        let nulls = db
            .query_one("SELECT $1, $2", &[&None::<i64>, &None::<String>], |row| {
                Ok((row.opt_int(0)?, row.opt_text(1)?))
            })
            .unwrap();
        assert_eq!(nulls, (None, None));
    }

    /// The same calls on both backends give the same answers.
    fn users_groups_and_tickets(db: &dyn Db) -> Vec<String> {
        let new = |name: &'static str, email: &'static str| users::NewUser {
            username: name,
            email,
            name: "",
        };
        let ann = users::insert(db, &new("ann", "Ann@Example.org"), 1).unwrap();
        let bob = users::insert(db, &new("bob", "bob@example.org"), 2).unwrap();
        let taken = users::insert(db, &new("ann2", "ann@example.ORG"), 3).unwrap_err();
        let ops = groups::insert(db, "ops").unwrap();
        assert!(groups::grant(db, ops.id, "delete_helpdeskticket").unwrap());
        assert!(!groups::grant(db, ops.id, "delete_helpdeskticket").unwrap());
        assert!(groups::add_member(db, ops.id, bob.id).unwrap());
        assert!(users::grant(db, ann.id, "delete_helpdeskticket").unwrap());
        assert!(users::set_active(db, bob.id, false).unwrap());
        assert!(!users::set_active(db, bob.id, false).unwrap());
        let managers = users::active_with_permission(db, "delete_helpdeskticket").unwrap();
        assert!(users::set_active(db, bob.id, true).unwrap());
        let again = users::active_with_permission(db, "delete_helpdeskticket").unwrap();
        let new_ticket = |priority| tickets::NewTicket {
            created_by: ann.id,
            purpose: Purpose::App,
            priority,
            description: "printer on fire",
        };
        let first = tickets::insert(db, &new_ticket(Priority::Low), 10).unwrap();
        let second = tickets::insert(db, &new_ticket(Priority::High), 11).unwrap();
        tickets::update(db, first, Status::Done, Priority::Urgent, 12).unwrap();
        let done = tickets::list(db, Some(Status::Done), None).unwrap();
        let high = tickets::list(db, None, Some(Priority::High)).unwrap();
        vec![
            taken.to_string(),
            format!("{:?}", users::by_email(db, "ANN@example.org").unwrap()),
            format!(
                "{:?}",
                managers.iter().map(|u| &u.username).collect::<Vec<_>>()
            ),
            format!(
                "{:?}",
                again.iter().map(|u| &u.username).collect::<Vec<_>>()
            ),
            format!("{:?}", groups::names_of_user(db, bob.id).unwrap()),
            format!("{:?}", groups::member_names(db, ops.id).unwrap()),
            format!("{:?}", users::all(db).unwrap()),
            format!("{done:?} {high:?}"),
            format!("{:?}", tickets::list(db, None, None).unwrap()),
            format!("{:?} {second}", tickets::by_id(db, 99).unwrap()),
        ]
    }

    /// Rows of `VALUES` in several statements: positional on SQLite, `$N` on
    /// PostgreSQL (the trait's own way), the same rows back.
    fn values_in_chunks(db: &dyn Db) -> Vec<(i64, String)> {
        db.execute_batch("CREATE TEMPORARY TABLE t (n BIGINT, s TEXT)")
            .unwrap();
        let texts: Vec<String> = (0..70).map(|n| format!("s{n}")).collect();
        let values: Vec<Value<'_>> = (0..70)
            .flat_map(|n| {
                let text = if n % 7 == 0 {
                    Value::Null
                } else {
                    Value::Text(&texts[n])
                };
                [Value::Int(n as i64), text]
            })
            .collect();
        let mut back = Vec::new();
        db.each_row_values(
            "INSERT INTO t (n, s) VALUES",
            2,
            &values,
            "RETURNING n, coalesce(s, '-')",
            &mut |row| {
                back.push((row.int(0)?, row.text(1)?));
                Ok(())
            },
        )
        .unwrap();
        back.sort();
        back
    }

    #[test]
    fn rows_of_values_go_in_chunks_on_both_backends() {
        let sqlite = rusqlite::Connection::open_in_memory().unwrap();
        let on_sqlite = values_in_chunks(&sqlite);
        assert_eq!(on_sqlite.len(), 70);
        assert_eq!(on_sqlite[0], (0, "-".to_string()));
        assert_eq!(on_sqlite[69], (69, "s69".to_string()));
        let Some(fresh) = FreshDatabase::new() else {
            return;
        };
        let mut pg = client(&fresh.target);
        let mut cache = StatementCache::new();
        let on_postgres = values_in_chunks(&PgDb::new(&mut pg, &mut cache));
        assert_eq!(on_sqlite, on_postgres);
    }

    #[test]
    fn users_groups_and_tickets_behave_alike_on_both_backends() {
        let Some(fresh) = FreshDatabase::new() else {
            return;
        };
        let sqlite = crate::store::Store::open_in_memory();
        let on_sqlite = users_groups_and_tickets(sqlite.conn());
        let mut pg = client(&fresh.target);
        migrate::migrate(&mut pg, true).unwrap();
        let mut cache = StatementCache::new();
        let on_postgres = users_groups_and_tickets(&PgDb::new(&mut pg, &mut cache));
        assert_eq!(on_sqlite, on_postgres);
        assert!(
            on_sqlite[0].contains("already belongs to user `ann`"),
            "{on_sqlite:?}"
        );
    }
}
