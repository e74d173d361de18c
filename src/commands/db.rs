//! `helpdesk db copy --to URL_OR_PATH`: the whole help desk into an empty
//! database of either kind, IDs kept (how a team moves from SQLite to
//! PostgreSQL, or back). The copy is one transaction on the target, read in
//! one transaction on the source, and checks every table's row count.

use anyhow::Result;
use serde::Serialize;

use super::Exit;
use crate::app::App;
use crate::cli::{DbCommand, DbCopyArgs};
use crate::error::{explain_store_error, hinted};
use crate::output::{Table, View};
use crate::store::copy::{self, Copied};
use crate::store::{Database, Store, StoreError};

pub fn run(app: &mut App, cmd: DbCommand) -> Result<Exit> {
    match cmd {
        DbCommand::Copy(args) => copy_to(app, &args),
    }
}

#[derive(Serialize)]
struct CopyView {
    from: Database,
    to: Database,
    tables: Vec<Copied>,
}

impl View for CopyView {
    fn table(&self) -> Option<Table> {
        let mut table = Table::new(&["TABLE", "ROWS"]);
        for copied in &self.tables {
            table.row(vec![copied.table.to_string(), copied.rows.to_string()]);
        }
        Some(table)
    }
}

fn copy_to(app: &mut App, args: &DbCopyArgs) -> Result<Exit> {
    let cwd = std::env::current_dir()?;
    let source = app.config.database.clone();
    let target = Database::from_text(&args.to, &cwd);
    if same_database(&source, &target) {
        return Err(hinted(
            format!("`{target}` is the help desk's own database"),
            "name a new SQLite file or an empty PostgreSQL database with `--to`",
        ));
    }
    let new_file = target.is_new_file();
    let mut copy_store = Store::create(&target, &app.config.access(&app.env))
        .map_err(|e| explain_store_error(e.into(), Some(&target)))?;
    let outcome = app.store.in_tx(|source_db| {
        copy::read_snapshot(source_db)?;
        copy_store.in_tx(|target_db| copy::copy(source_db, target_db))
    });
    drop(copy_store);
    let tables = match outcome {
        Ok(tables) => tables,
        Err(err) => {
            if new_file {
                target.remove_new_file();
            }
            return Err(match err {
                StoreError::Conflict(reason) => hinted(
                    format!("database `{target}` is not empty ({reason}); nothing was copied"),
                    "copy into a new SQLite file or an empty PostgreSQL database (`createdb NAME`)",
                ),
                other => explain_store_error(other.into(), Some(&target)),
            });
        }
    };
    let rows: i64 = tables.iter().map(|t| t.rows).sum();
    app.out.note(&format!(
        "copied {rows} {} in {} tables from `{source}` to `{target}`; every table's count matches",
        if rows == 1 { "row" } else { "rows" },
        tables.len()
    ));
    app.out.show(&CopyView {
        from: source,
        to: target,
        tables,
    })?;
    Ok(Exit::Done)
}

fn same_database(a: &Database, b: &Database) -> bool {
    match (a, b) {
        (Database::File(a), Database::File(b)) => {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
        }
        (Database::Server(a), Database::Server(b)) => a == b,
        _ => false,
    }
}
