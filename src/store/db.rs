//! One way to run SQL on either backend. The store's queries are written once,
//! in the SQL that SQLite and PostgreSQL both read: `$1`, `$2`… parameters
//! (SQLite takes `$N` as a named parameter, bound here by its number),
//! `RETURNING`, `ON CONFLICT`, `CAST(… AS BIGINT)`, BIGINT times in
//! milliseconds. Where the two differ (claims, schema steps, case-insensitive
//! matching), a query picks its backend's text with `Db::backend`.
//!
//! A `Db` is a connection or a transaction of either backend. Statements are
//! prepared once per connection (SQLite's statement cache; on PostgreSQL a
//! statement's first run sends its parameters' types instead of preparing,
//! and its second prepares it: `StatementCache`), so a query costs one round
//! trip.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{ToSql as PgToSql, Type};
use rusqlite::types::{ToSqlOutput, Value as SqliteValue};

use super::{Result, StoreError};
use crate::model::{
    Channel, EmailMode, EventId, EventKind, GroupId, NotificationId, NotificationStatus, Priority,
    Purpose, ReceivedAction, RecordedKind, Status, TicketId, UserId,
};

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

/// A domain value kept in one column, read back as its own type
/// (`Row::parse`): a value this version does not know is a damaged row, a
/// `StoreError`, never a panic.
pub trait FromStored: Sized {
    fn read(row: &Row<'_, '_>, i: usize) -> Result<Self>;
}

/// Enums kept in a text column by their stored name (`as_str`, `from_stored`).
macro_rules! stored_as_text {
    ($($name:ident: $what:literal),+ $(,)?) => {$(
        impl Param for $name {
            fn value(&self) -> Value<'_> {
                Value::Text(self.as_str())
            }
        }

        impl FromStored for $name {
            fn read(row: &Row<'_, '_>, i: usize) -> Result<Self> {
                known(&row.text(i)?, i, $what, $name::from_stored)
            }
        }

        impl FromStored for Option<$name> {
            fn read(row: &Row<'_, '_>, i: usize) -> Result<Self> {
                row.opt_text(i)?
                    .map(|text| known(&text, i, $what, $name::from_stored))
                    .transpose()
            }
        }
    )+};
}

stored_as_text!(
    Purpose: "a ticket purpose",
    Priority: "a ticket priority",
    Status: "a ticket status",
    Channel: "a channel",
    NotificationStatus: "a notification status",
    EmailMode: "an email mode",
    EventKind: "an event kind",
    RecordedKind: "an event kind",
    ReceivedAction: "a received mail's action",
);

/// IDs kept in an integer column.
macro_rules! stored_as_int {
    ($($name:ident),+ $(,)?) => {$(
        impl Param for $name {
            fn value(&self) -> Value<'_> {
                Value::Int(self.0)
            }
        }

        impl FromStored for $name {
            fn read(row: &Row<'_, '_>, i: usize) -> Result<Self> {
                row.int(i).map($name)
            }
        }

        impl FromStored for Option<$name> {
            fn read(row: &Row<'_, '_>, i: usize) -> Result<Self> {
                Ok(row.opt_int(i)?.map($name))
            }
        }
    )+};
}

stored_as_int!(TicketId, UserId, GroupId, EventId, NotificationId);

/// A stored name this version knows, or the damaged row's error, saying
/// what the name should have been.
fn known<T>(text: &str, i: usize, what: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "unknown stored value `{}` in column {i}: not {what}",
            crate::output::cell(text, 40),
        ))
    })
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

    /// Column `i` as a domain type (an enum by its stored name, an ID).
    pub fn parse<T: FromStored>(&self, i: usize) -> Result<T> {
        T::read(self, i)
    }

    /// A truth value: BOOLEAN on PostgreSQL, 0 or 1 on SQLite.
    pub fn bool(&self, i: usize) -> Result<bool> {
        self.get(i)
    }
}

/// The PostgreSQL calls a `Db` needs, over a client.
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
    /// Runs a statement not prepared before, with its parameters' types
    /// given: parse, bind and execute in one round trip. Its rows, and how
    /// many rows it changed.
    fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn PgToSql + Sync), Type)],
    ) -> std::result::Result<(Vec<postgres::Row>, u64), postgres::Error>;
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

    fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn PgToSql + Sync), Type)],
    ) -> std::result::Result<(Vec<postgres::Row>, u64), postgres::Error> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut it = postgres::GenericClient::query_typed_raw(self, sql, params.iter().cloned())?;
        let mut rows = Vec::new();
        while let Some(row) = it.next()? {
            rows.push(row);
        }
        Ok((rows, it.rows_affected().unwrap_or(0)))
    }

    fn batch(&mut self, sql: &str) -> std::result::Result<(), postgres::Error> {
        postgres::GenericClient::batch_execute(self, sql)
    }
}

/// The statements one PostgreSQL connection has run, by their text. A text
/// run for the first time goes with its parameters' types in one round trip
/// (an unnamed statement, parsed and planned for that run only); run a
/// second time, it is prepared once and kept, and each later run is one
/// round trip without parsing. Every command is a new process and most run
/// each statement once; a flush runs a few statements thousands of times.
#[derive(Default)]
pub struct StatementCache {
    prepared: HashMap<String, postgres::Statement>,
    seen_once: std::collections::HashSet<String>,
}

impl StatementCache {
    pub fn new() -> StatementCache {
        StatementCache::default()
    }
}

/// Where a `PgDb` stands in a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tx {
    /// Outside any transaction: each statement commits on its own.
    None,
    /// In `PgStore::in_tx`, nothing sent yet: BEGIN is sent just before
    /// the first statement, so work that sends nothing costs nothing.
    NotBegun,
    /// BEGIN sent.
    Open,
    /// The work's one statement ran on its own (`Db::execute_last`), atomic
    /// without BEGIN and COMMIT; nothing may follow it.
    Done,
}

/// A PostgreSQL client with its connection's statement cache, outside or
/// inside a transaction.
pub struct PgDb<'a> {
    inner: RefCell<(&'a mut dyn PgSession, &'a mut StatementCache)>,
    /// Whether a statement lost a deadlock or a serialization conflict: the
    /// transaction is worth running again (`PgStore::in_tx`).
    lost_a_race: std::cell::Cell<bool>,
    tx: std::cell::Cell<Tx>,
}

impl<'a> PgDb<'a> {
    /// Statements outside any transaction (each one commits).
    pub fn new(session: &'a mut dyn PgSession, cache: &'a mut StatementCache) -> PgDb<'a> {
        PgDb {
            inner: RefCell::new((session, cache)),
            lost_a_race: std::cell::Cell::new(false),
            tx: std::cell::Cell::new(Tx::None),
        }
    }

    /// Statements in one transaction, begun at the first statement that
    /// needs it; `end` commits or rolls it back, dropping rolls it back.
    pub fn transaction(session: &'a mut dyn PgSession, cache: &'a mut StatementCache) -> PgDb<'a> {
        let db = PgDb::new(session, cache);
        db.tx.set(Tx::NotBegun);
        db
    }

    /// Whether a statement here lost a deadlock or a serialization conflict.
    pub fn lost_a_race(&self) -> bool {
        self.lost_a_race.get()
    }

    /// Ends the transaction: COMMIT (`commit`) or ROLLBACK, when BEGIN was
    /// sent; nothing otherwise.
    pub fn end(self, commit: bool) -> Result<()> {
        let open = self.tx.replace(Tx::None) == Tx::Open;
        if !open {
            return Ok(());
        }
        let mut inner = self.inner.borrow_mut();
        if commit {
            inner.0.batch("COMMIT").map_err(StoreError::from)
        } else {
            // As a dropped transaction: a failed ROLLBACK leaves nothing to keep.
            let _ = inner.0.batch("ROLLBACK");
            Ok(())
        }
    }

    /// Sends BEGIN when the transaction needs it and has not begun.
    fn begin(&self, session: &mut dyn PgSession) -> Result<()> {
        match self.tx.get() {
            Tx::NotBegun => {
                session.batch("BEGIN")?;
                self.tx.set(Tx::Open);
                Ok(())
            }
            Tx::Done => Err(StoreError::Other(
                "a statement after the last statement of a transaction".into(),
            )),
            Tx::None | Tx::Open => Ok(()),
        }
    }

    /// Runs a statement: its rows (when `rows`), and how many rows it
    /// changed (otherwise).
    fn run(
        &self,
        sql: &str,
        params: &[&dyn Param],
        rows: bool,
    ) -> Result<(Vec<postgres::Row>, u64)> {
        let mut inner = self.inner.borrow_mut();
        let (session, cache) = &mut *inner;
        self.begin(&mut **session)?;
        let values: Vec<Value<'_>> = params.iter().map(|p| p.value()).collect();
        let refs: Vec<&(dyn PgToSql + Sync)> =
            values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect();
        let prepared = match cache.prepared.get(sql) {
            Some(statement) => Some(statement.clone()),
            None if cache.seen_once.remove(sql) => {
                let statement = session.prepare(sql).map_err(|e| self.failed(e))?;
                cache.prepared.insert(sql.to_string(), statement.clone());
                Some(statement)
            }
            None => {
                cache.seen_once.insert(sql.to_string());
                None
            }
        };
        let ran = match prepared {
            Some(statement) if rows => session.query(&statement, &refs).map(|r| (r, 0)),
            Some(statement) => session.execute(&statement, &refs).map(|n| (Vec::new(), n)),
            None => {
                let typed: Vec<(&(dyn PgToSql + Sync), Type)> = values
                    .iter()
                    .zip(&refs)
                    .map(|(value, param)| (*param, value.pg_type()))
                    .collect();
                session.query_typed(sql, &typed)
            }
        };
        ran.map_err(|e| self.failed(e))
    }

    /// A statement's error, noting a lost race.
    fn failed(&self, e: postgres::Error) -> StoreError {
        let err = StoreError::from(e);
        if err.is_busy() {
            self.lost_a_race.set(true);
        }
        err
    }
}

impl Drop for PgDb<'_> {
    fn drop(&mut self) {
        // Work that panicked, or a caller that never ended the transaction.
        if self.tx.get() == Tx::Open {
            let _ = self.inner.get_mut().0.batch("ROLLBACK");
        }
    }
}

impl Value<'_> {
    /// The PostgreSQL type this value is sent as. NULL goes untyped (OID 0),
    /// so the server reads its type from the statement, as it does when it
    /// prepares one.
    fn pg_type(&self) -> Type {
        match self {
            Value::Int(_) => Type::INT8,
            Value::Text(_) => Type::TEXT,
            Value::Bool(_) => Type::BOOL,
            Value::Null => Type::new(
                "unspecified".into(),
                0,
                postgres::types::Kind::Pseudo,
                "pg_catalog".into(),
            ),
            Value::Ints(_) => Type::INT8_ARRAY,
            Value::Texts(_) => Type::TEXT_ARRAY,
            Value::Bools(_) => Type::BOOL_ARRAY,
        }
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

    /// Runs the last statement of a transaction's work (`in_tx`): nothing
    /// may follow it, and the work must return Ok after it. When it is also
    /// the first, PostgreSQL runs it on its own, without BEGIN and COMMIT
    /// (one statement is atomic by itself): one round trip instead of three.
    fn execute_last(&self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        self.execute(sql, params)
    }

    /// Runs `head` (`INSERT INTO t (…) VALUES`), one `(…)` of `width`
    /// parameters for each of `rows` rows (`row(i, values)` appends row
    /// `i`'s `width` values), then `tail` (a `RETURNING` clause, or
    /// nothing), handing each row it returns to `each`. Many rows go in each
    /// statement (`ROWS_PER_VALUES`), and only one statement's values are
    /// held at a time; on SQLite, where a statement costs per row less than
    /// a statement per row does and `$N` names cost per name, the
    /// parameters are positional.
    fn each_row_values<'v>(
        &self,
        head: &str,
        width: usize,
        rows: usize,
        row: &mut dyn FnMut(usize, &mut Vec<Value<'v>>),
        tail: &str,
        each: &mut dyn FnMut(&Row<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        let mut values = Vec::new();
        for chunk in row_chunks(rows) {
            let count = fill(&mut values, width, chunk, row)?;
            let sql = values_sql(head, width, count, tail, |sql, n| {
                sql.push('$');
                sql.push_str(&n.to_string());
            });
            let params: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
            self.each_row(&sql, &params, each)?;
        }
        Ok(())
    }
}

/// The rows of each statement of `Db::each_row_values`.
fn row_chunks(rows: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..rows)
        .step_by(ROWS_PER_VALUES)
        .map(move |start| start..(start + ROWS_PER_VALUES).min(rows))
}

/// Replaces `values` with the values of `chunk`'s rows; how many rows.
fn fill<'v>(
    values: &mut Vec<Value<'v>>,
    width: usize,
    chunk: std::ops::Range<usize>,
    row: &mut dyn FnMut(usize, &mut Vec<Value<'v>>),
) -> Result<usize> {
    values.clear();
    let count = chunk.len();
    chunk.for_each(|i| row(i, values));
    if values.len() != count * width {
        return Err(StoreError::Other(format!(
            "{} values for {count} rows of {width}",
            values.len()
        )));
    }
    Ok(count)
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

    fn each_row_values<'v>(
        &self,
        head: &str,
        width: usize,
        rows: usize,
        row: &mut dyn FnMut(usize, &mut Vec<Value<'v>>),
        tail: &str,
        each: &mut dyn FnMut(&Row<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        let positional = |rows| values_sql(head, width, rows, tail, |sql, _| sql.push('?'));
        let mut full = None; // the text of a full chunk, made once
        let mut values = Vec::with_capacity(width * ROWS_PER_VALUES);
        for chunk in row_chunks(rows) {
            let rows = fill(&mut values, width, chunk, row)?;
            let partial;
            let sql = if rows == ROWS_PER_VALUES {
                full.get_or_insert_with(|| positional(rows))
            } else {
                partial = positional(rows);
                &partial
            };
            let mut statement = self.prepare_cached(sql)?;
            for (index, value) in values.iter().enumerate() {
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
        let (rows, _) = self.run(sql, params, true)?;
        rows.iter().try_for_each(|row| each(&Row::Postgres(row)))
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        Ok(self.run(sql, params, false)?.1)
    }

    fn execute_batch(&self, sql: &str) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        self.begin(&mut *inner.0)?;
        Ok(inner.0.batch(sql)?)
    }

    fn execute_last(&self, sql: &str, params: &[&dyn Param]) -> Result<u64> {
        let alone = self.tx.get() == Tx::NotBegun;
        if alone {
            self.tx.set(Tx::None);
        }
        let changed = self.run(sql, params, false).map(|(_, n)| n);
        if alone {
            self.tx.set(Tx::Done);
        }
        changed
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

    /// Every stored enum value written as a parameter and read back by its
    /// type, and an unknown stored name read as each type.
    fn stored_values(db: &dyn Db) -> Vec<String> {
        /// `values` bound as parameters cast to `column`, read back plain and
        /// as options (one of them NULL).
        fn round_trip<T>(db: &dyn Db, column: &str, values: &[T]) -> Vec<T>
        where
            T: Param + Copy + PartialEq + std::fmt::Debug,
            T: FromStored,
            Option<T>: FromStored,
        {
            let mut out = Vec::new();
            for value in values {
                let (back, some, none) = db
                    .query_one(
                        &format!(
                            "SELECT CAST($1 AS {column}), CAST($2 AS {column}), CAST($3 AS {column})"
                        ),
                        &[value, &Some(*value), &None::<T>],
                        |row| {
                            Ok((
                                row.parse::<T>(0)?,
                                row.parse::<Option<T>>(1)?,
                                row.parse::<Option<T>>(2)?,
                            ))
                        },
                    )
                    .unwrap();
                assert_eq!((back, some, none), (*value, Some(*value), None));
                out.push(back);
                out.extend(some);
            }
            out
        }
        fn unknown<T>(db: &dyn Db) -> String
        where
            T: FromStored + std::fmt::Debug,
            Option<T>: FromStored + std::fmt::Debug,
        {
            let plain = db.query_one("SELECT 'lost'", &[], |row| row.parse::<T>(0));
            let optional = db.query_one("SELECT 'lost'", &[], |row| row.parse::<Option<T>>(0));
            match (plain, optional) {
                (Err(StoreError::Corrupt(a)), Err(StoreError::Corrupt(b))) if a == b => a,
                other => panic!("an unknown stored name was read: {other:?}"),
            }
        }
        let recorded: Vec<RecordedKind> = EventKind::ALL
            .iter()
            .map(|&k| RecordedKind::from(k))
            .chain([RecordedKind::Digest])
            .collect();
        vec![
            format!("{:?}", round_trip(db, "TEXT", Purpose::ALL)),
            format!("{:?}", round_trip(db, "TEXT", Priority::ALL)),
            format!("{:?}", round_trip(db, "TEXT", Status::ALL)),
            format!("{:?}", round_trip(db, "TEXT", Channel::ALL)),
            format!("{:?}", round_trip(db, "TEXT", NotificationStatus::ALL)),
            format!("{:?}", round_trip(db, "TEXT", EmailMode::ALL)),
            format!("{:?}", round_trip(db, "TEXT", EventKind::ALL)),
            format!("{:?}", round_trip(db, "TEXT", &recorded)),
            format!(
                "{:?} {:?} {:?} {:?} {:?}",
                round_trip(db, "BIGINT", &[TicketId(1), TicketId(i64::MAX)]),
                round_trip(db, "BIGINT", &[UserId(2), UserId(-2)]),
                round_trip(db, "BIGINT", &[GroupId(3)]),
                round_trip(db, "BIGINT", &[EventId(4)]),
                round_trip(db, "BIGINT", &[NotificationId(5)]),
            ),
            unknown::<Purpose>(db),
            unknown::<Priority>(db),
            unknown::<Status>(db),
            unknown::<Channel>(db),
            unknown::<NotificationStatus>(db),
            unknown::<EmailMode>(db),
            unknown::<EventKind>(db),
            unknown::<RecordedKind>(db),
            format!("{:?}", round_trip(db, "TEXT", ReceivedAction::ALL)),
            unknown::<ReceivedAction>(db),
        ]
    }

    #[test]
    fn stored_enums_and_ids_round_trip_and_an_unknown_name_is_a_damaged_row_on_both_backends() {
        let sqlite = crate::store::Store::open_in_memory();
        let on_sqlite = stored_values(sqlite.conn());
        assert_eq!(
            on_sqlite[6],
            "[New, New, Update, Update, Comment, Comment, Assign, Assign]"
        );
        assert_eq!(
            on_sqlite[8],
            "[TicketId(1), TicketId(1), TicketId(9223372036854775807), TicketId(9223372036854775807)] \
             [UserId(2), UserId(2), UserId(-2), UserId(-2)] [GroupId(3), GroupId(3)] \
             [EventId(4), EventId(4)] [NotificationId(5), NotificationId(5)]"
        );
        assert_eq!(
            on_sqlite[16],
            "unknown stored value `lost` in column 0: not an event kind"
        );
        let Some(fresh) = FreshDatabase::new() else {
            return;
        };
        let mut pg = client(&fresh.target);
        let mut cache = StatementCache::new();
        assert_eq!(stored_values(&PgDb::new(&mut pg, &mut cache)), on_sqlite);
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
            format!("{:?} {second}", tickets::by_id(db, TicketId(99)).unwrap()),
        ]
    }

    /// Rows of `VALUES` in several statements: positional on SQLite, `$N` on
    /// PostgreSQL (the trait's own way), the same rows back.
    fn values_in_chunks(db: &dyn Db) -> Vec<(i64, String)> {
        db.execute_batch("CREATE TEMPORARY TABLE t (n BIGINT, s TEXT)")
            .unwrap();
        let texts: Vec<String> = (0..70).map(|n| format!("s{n}")).collect();
        let mut back = Vec::new();
        db.each_row_values(
            "INSERT INTO t (n, s) VALUES",
            2,
            70,
            &mut |n, values| {
                let text = if n % 7 == 0 {
                    Value::Null
                } else {
                    Value::Text(&texts[n])
                };
                values.extend([Value::Int(n as i64), text]);
            },
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

    /// A row function that gives the wrong number of values is an error,
    /// before anything is written.
    #[test]
    fn a_row_of_the_wrong_width_is_refused() {
        let sqlite = rusqlite::Connection::open_in_memory().unwrap();
        sqlite
            .execute_batch("CREATE TABLE t (n INTEGER, m INTEGER)")
            .unwrap();
        let db: &dyn Db = &sqlite;
        let err = db
            .each_row_values(
                "INSERT INTO t (n, m) VALUES",
                2,
                3,
                &mut |n, values| values.push(Value::Int(n as i64)),
                "",
                &mut |_| Ok(()),
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "3 values for 3 rows of 2");
        let written: i64 = sqlite
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(written, 0);
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
