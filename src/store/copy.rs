//! `helpdesk db copy`: a whole help desk into an empty database of either
//! backend, IDs kept, in one transaction on the target, the row counts of
//! every table checked before it commits.
//!
//! `TABLES` is the one list of what a help desk holds: every table with its
//! columns and their types, parents before children (foreign keys). A new
//! table is one more entry; the tests compare the list with both schemas, so
//! a table left out fails them. SQLite's derived inbox tables (`inbox`,
//! `inbox_recent`, `inbox_unread`, `inbox_filing`) are not in it: SQLite's
//! triggers rebuild them as `notifications` rows go in, and on PostgreSQL
//! they are views.

use super::db::{Backend, Db, Row, Value};
use super::{Result, StoreError};

/// A column's type, as both backends store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// INTEGER on SQLite, BIGINT on PostgreSQL (IDs, times, counts).
    Int,
    Text,
    /// 0/1 on SQLite, BOOLEAN on PostgreSQL.
    Bool,
}

/// One table of the help desk.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    /// Every column, with its type (nullable or not: both are copied as they are).
    pub columns: &'static [(&'static str, Kind)],
    /// The order rows are read and written in (the primary key).
    pub key: &'static str,
    /// Whether `id` is an identity on PostgreSQL, whose sequence is moved
    /// past the copied IDs.
    pub identity: bool,
}

use Kind::{Bool, Int, Text};

/// Every table of the help desk, parents before children.
pub const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            ("id", Int),
            ("username", Text),
            ("email", Text),
            ("name", Text),
            ("active", Bool),
            ("created_at", Int),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "user_permissions",
        columns: &[("permission", Text), ("user_id", Int)],
        key: "user_id, permission",
        identity: false,
    },
    Table {
        name: "groups",
        columns: &[("id", Int), ("name", Text)],
        key: "id",
        identity: true,
    },
    Table {
        name: "group_permissions",
        columns: &[("permission", Text), ("group_id", Int)],
        key: "group_id, permission",
        identity: false,
    },
    Table {
        name: "group_members",
        columns: &[("group_id", Int), ("user_id", Int)],
        key: "group_id, user_id",
        identity: false,
    },
    Table {
        name: "tickets",
        columns: &[
            ("id", Int),
            ("created_by", Int),
            ("purpose", Text),
            ("priority", Text),
            ("status", Text),
            ("description", Text),
            ("created_at", Int),
            ("updated_at", Int),
            ("assignee_id", Int),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "ticket_threads",
        columns: &[("ticket_id", Int), ("message_id", Text)],
        key: "ticket_id",
        identity: false,
    },
    Table {
        name: "watchers",
        columns: &[("ticket_id", Int), ("user_id", Int), ("since", Int)],
        key: "ticket_id, user_id",
        identity: false,
    },
    Table {
        name: "preferences",
        columns: &[
            ("user_id", Int),
            ("event", Text),
            ("email", Text),
            ("app", Bool),
        ],
        key: "user_id, event",
        identity: false,
    },
    Table {
        name: "events",
        columns: &[
            ("id", Int),
            ("ticket_id", Int),
            ("kind", Text),
            ("actor_id", Int),
            ("data", Text),
            ("title", Text),
            ("body", Text),
            ("url", Text),
            ("created_at", Int),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "notifications",
        columns: &[
            ("id", Int),
            ("event_id", Int),
            ("ticket_id", Int),
            ("user_id", Int),
            ("channel", Text),
            ("priority", Int),
            ("status", Text),
            ("to_addr", Text),
            ("message_id", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("lease_until", Int),
            ("claim", Text),
            ("last_error", Text),
            ("read_at", Int),
            ("created_at", Int),
            ("delivered_at", Int),
            ("reason", Text),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "attempts",
        columns: &[
            ("notification_id", Int),
            ("seq", Int),
            ("at", Int),
            ("outcome", Text),
            ("reply", Text),
        ],
        key: "notification_id, seq",
        identity: false,
    },
    Table {
        name: "flush_runs",
        columns: &[
            ("id", Int),
            ("started_at", Int),
            ("finished_at", Int),
            ("claimed", Int),
            ("sent", Int),
            ("deferred", Int),
            ("failed", Int),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "received",
        columns: &[
            ("id", Int),
            ("message_id", Text),
            ("action", Text),
            ("ticket_id", Int),
            ("reason", Text),
            ("from_addr", Text),
            ("subject", Text),
            ("at", Int),
        ],
        key: "id",
        identity: true,
    },
    Table {
        name: "suppressions",
        columns: &[("address", Text), ("reason", Text), ("at", Int)],
        key: "address",
        identity: false,
    },
];

/// Tables a backend keeps that are not copied: schema bookkeeping, and
/// SQLite's inbox tables, which its triggers rebuild from `notifications`.
#[cfg_attr(not(test), allow(dead_code))]
pub const NOT_COPIED: &[&str] = &[
    "helpdesk_schema",
    "inbox",
    "inbox_recent",
    "inbox_unread",
    "inbox_filing",
];

/// Rows sent to PostgreSQL in one statement.
const BATCH_ROWS: usize = 2000;

/// How many rows one table had.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub table: &'static str,
    pub rows: i64,
}

/// The first table of `db` that holds rows, with how many: None when the
/// help desk is empty.
pub fn first_filled(db: &dyn Db) -> Result<Option<Copied>> {
    for table in TABLES {
        let rows = count(db, table.name)?;
        if rows > 0 {
            return Ok(Some(Copied {
                table: table.name,
                rows,
            }));
        }
    }
    Ok(None)
}

fn count(db: &dyn Db, table: &str) -> Result<i64> {
    db.query_one(&format!("SELECT count(*) FROM {table}"), &[], |r| r.int(0))
}

/// Makes the transaction `source` has just begun one read-only snapshot
/// for the whole copy: its first statement on PostgreSQL; a SQLite
/// transaction reads one snapshot already.
pub fn read_snapshot(source: &dyn Db) -> Result<()> {
    if source.backend() == Backend::Postgres {
        source.execute_batch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
    }
    Ok(())
}

/// Copies every table of `source` into `target`, which must be empty, and
/// checks that each table has as many rows on both sides. Run it inside a
/// transaction on each side (the caller's): the target's is the one
/// transaction the copy writes in, the source's keeps what it reads
/// consistent. A target that holds rows is `Conflict`, nothing written.
pub fn copy(source: &dyn Db, target: &dyn Db) -> Result<Vec<Copied>> {
    if let Some(filled) = first_filled(target)? {
        let rows = if filled.rows == 1 { "row" } else { "rows" };
        return Err(StoreError::Conflict(format!(
            "table `{}` holds {} {rows}",
            filled.table, filled.rows
        )));
    }
    let mut copied = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let expected = count(source, table.name)?;
        let rows = copy_table(source, target, table)?;
        let found = count(target, table.name)?;
        if rows != expected || found != expected {
            return Err(StoreError::Other(format!(
                "table `{}`: the source has {expected} rows, {rows} were read and the target has {found}; nothing was written",
                table.name
            )));
        }
        if table.identity && target.backend() == Backend::Postgres {
            // New rows on the copy must not take a copied ID.
            target.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), max(id)) FROM {0}",
                    table.name
                ),
                &[],
            )?;
        }
        copied.push(Copied {
            table: table.name,
            rows,
        });
    }
    Ok(copied)
}

/// A batch of rows, column by column.
enum Column {
    Ints(Vec<Option<i64>>),
    Texts(Vec<Option<String>>),
    Bools(Vec<Option<bool>>),
}

impl Column {
    fn new(kind: Kind) -> Column {
        match kind {
            Int => Column::Ints(Vec::new()),
            Text => Column::Texts(Vec::new()),
            Bool => Column::Bools(Vec::new()),
        }
    }

    fn push(&mut self, row: &Row<'_, '_>, i: usize) -> Result<()> {
        match self {
            Column::Ints(v) => v.push(row.opt_int(i)?),
            Column::Texts(v) => v.push(row.opt_text(i)?),
            Column::Bools(v) => v.push(Some(row.bool(i)?)),
        }
        Ok(())
    }

    fn len(&self) -> usize {
        match self {
            Column::Ints(v) => v.len(),
            Column::Texts(v) => v.len(),
            Column::Bools(v) => v.len(),
        }
    }

    fn clear(&mut self) {
        match self {
            Column::Ints(v) => v.clear(),
            Column::Texts(v) => v.clear(),
            Column::Bools(v) => v.clear(),
        }
    }

    /// Row `i`'s value, for a one-row insert.
    fn at(&self, i: usize) -> Value<'_> {
        match self {
            Column::Ints(v) => v[i].map_or(Value::Null, Value::Int),
            Column::Texts(v) => v[i].as_deref().map_or(Value::Null, Value::Text),
            Column::Bools(v) => v[i].map_or(Value::Null, Value::Bool),
        }
    }
}

/// Streams one table across in batches; how many rows went.
fn copy_table(source: &dyn Db, target: &dyn Db, table: &Table) -> Result<i64> {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let select = format!(
        "SELECT {} FROM {} ORDER BY {}",
        names.join(", "),
        table.name,
        table.key
    );
    let insert = insert_sql(table, target.backend());
    let mut batch: Vec<Column> = table.columns.iter().map(|(_, k)| Column::new(*k)).collect();
    let mut rows = 0i64;
    source.each_row(&select, &[], &mut |row| {
        for (i, column) in batch.iter_mut().enumerate() {
            column.push(row, i)?;
        }
        rows += 1;
        if batch[0].len() >= BATCH_ROWS {
            write(target, &insert, &mut batch)?;
        }
        Ok(())
    })?;
    write(target, &insert, &mut batch)?;
    Ok(rows)
}

/// The insert for one table: on PostgreSQL one statement per batch, its
/// columns as arrays (`unnest`); on SQLite one prepared statement per row.
fn insert_sql(table: &Table, backend: Backend) -> String {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let params: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match backend {
            Backend::Sqlite => format!("${}", i + 1),
            Backend::Postgres => {
                let ty = match kind {
                    Int => "BIGINT",
                    Text => "TEXT",
                    Bool => "BOOLEAN",
                };
                format!("CAST(${} AS {ty}[])", i + 1)
            }
        })
        .collect();
    match backend {
        Backend::Sqlite => format!(
            "INSERT INTO {} ({}) VALUES ({})",
            table.name,
            names.join(", "),
            params.join(", ")
        ),
        Backend::Postgres => format!(
            "INSERT INTO {} ({}) SELECT * FROM unnest({})",
            table.name,
            names.join(", "),
            params.join(", ")
        ),
    }
}

fn write(target: &dyn Db, insert: &str, batch: &mut [Column]) -> Result<()> {
    let rows = batch[0].len();
    if rows == 0 {
        return Ok(());
    }
    match target.backend() {
        Backend::Postgres => {
            let texts: Vec<Vec<Option<&str>>> = batch
                .iter()
                .map(|c| match c {
                    Column::Texts(v) => v.iter().map(|t| t.as_deref()).collect(),
                    _ => Vec::new(),
                })
                .collect();
            let values: Vec<Value<'_>> = batch
                .iter()
                .zip(&texts)
                .map(|(c, t)| match c {
                    Column::Ints(v) => Value::Ints(v),
                    Column::Texts(_) => Value::Texts(t),
                    Column::Bools(v) => Value::Bools(v),
                })
                .collect();
            let params: Vec<&dyn super::db::Param> =
                values.iter().map(|v| v as &dyn super::db::Param).collect();
            target.execute(insert, &params)?;
        }
        Backend::Sqlite => {
            for i in 0..rows {
                let values: Vec<Value<'_>> = batch.iter().map(|c| c.at(i)).collect();
                let params: Vec<&dyn super::db::Param> =
                    values.iter().map(|v| v as &dyn super::db::Param).collect();
                target.execute(insert, &params)?;
            }
        }
    }
    for column in batch.iter_mut() {
        column.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// The tables and columns a schema holds, by name, less `NOT_COPIED`.
    fn schema_of(db: &dyn Db) -> Vec<(String, Vec<String>)> {
        let sql = match db.backend() {
            Backend::Sqlite => {
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
                  WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
                  ORDER BY m.name, p.name"
            }
            Backend::Postgres => {
                "SELECT c.table_name::TEXT, c.column_name::TEXT FROM information_schema.columns c
                   JOIN information_schema.tables t USING (table_schema, table_name)
                  WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
                  ORDER BY 1, 2"
            }
        };
        let pairs = db
            .query(sql, &[], |r| Ok((r.text(0)?, r.text(1)?)))
            .unwrap();
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (table, column) in pairs {
            if NOT_COPIED.contains(&table.as_str()) {
                continue;
            }
            match out.last_mut() {
                Some((t, columns)) if *t == table => columns.push(column),
                _ => out.push((table, vec![column])),
            }
        }
        out
    }

    fn listed() -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = TABLES
            .iter()
            .map(|t| {
                let mut columns: Vec<String> =
                    t.columns.iter().map(|(c, _)| c.to_string()).collect();
                columns.sort();
                (t.name.to_string(), columns)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_table_list_is_the_whole_sqlite_schema() {
        let store = Store::open_in_memory();
        assert_eq!(schema_of(store.conn()), listed());
    }

    #[test]
    fn the_table_list_is_the_whole_postgres_schema() {
        let Some(fresh) = crate::store::postgres::testing::FreshDatabase::new() else {
            return;
        };
        let env = std::collections::HashMap::new();
        let access = crate::store::Access {
            env: &env,
            timeout: std::time::Duration::from_secs(10),
        };
        let store = Store::create(&crate::store::Database::Server(fresh.url()), &access).unwrap();
        assert_eq!(schema_of(store.conn()), listed());
    }

    #[test]
    fn parents_come_before_their_children() {
        let position = |name: &str| TABLES.iter().position(|t| t.name == name).unwrap();
        for (child, parent) in [
            ("user_permissions", "users"),
            ("group_members", "groups"),
            ("group_members", "users"),
            ("tickets", "users"),
            ("events", "tickets"),
            ("notifications", "events"),
            ("attempts", "notifications"),
        ] {
            assert!(
                position(parent) < position(child),
                "{parent} before {child}"
            );
        }
    }
}
