//! `helpdesk db copy --to URL_OR_PATH` (SPEC §8): the whole help desk into an
//! empty database of either kind, IDs kept, every table compared after a
//! round trip (SQLite → PostgreSQL → SQLite on the SQLite run), and the
//! copies work: the inbox counts, a flush sends what was pending, a new
//! ticket takes the next ID. A target that holds anything is refused.

use std::time::Duration;

use crate::support::*;

/// SQLite's inbox tables are rebuilt by its triggers, and PostgreSQL's are
/// views: they are not copied, so not compared.
const DERIVED: &[&str] = &["inbox", "inbox_recent", "inbox_unread", "inbox_filing"];

/// The tables and columns of a helpdesk SQLite file, as the schema says.
fn sqlite_tables(path: &std::path::Path) -> Vec<(String, Vec<String>)> {
    let conn = rusqlite::Connection::open(path).expect("open the SQLite copy");
    let mut stmt = conn
        .prepare(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
              WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid",
        )
        .unwrap();
    let pairs: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (table, column) in pairs {
        if DERIVED.contains(&table.as_str()) {
            continue;
        }
        match out.last_mut() {
            Some((t, columns)) if *t == table => columns.push(column),
            _ => out.push((table, vec![column])),
        }
    }
    out
}

/// Every row of `table` as text, sorted; booleans as 0/1 on both backends.
fn rows(
    query: &dyn Fn(&str) -> Vec<Vec<Option<String>>>,
    table: &str,
    columns: &[String],
) -> Vec<Vec<Option<String>>> {
    let cells: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST({c} AS TEXT)"))
        .collect();
    let mut rows = query(&format!("SELECT {} FROM {table}", cells.join(", ")));
    for row in &mut rows {
        for cell in row.iter_mut() {
            match cell.as_deref() {
                Some("true") => *cell = Some("1".into()),
                Some("false") => *cell = Some("0".into()),
                _ => {}
            }
        }
    }
    rows.sort();
    rows
}

/// Every table a help desk holds (`store::copy::TABLES`).
const TABLE_COUNT: usize = 15;

fn sqlite_query(path: &std::path::Path) -> impl Fn(&str) -> Vec<Vec<Option<String>>> + '_ {
    move |sql| {
        let conn = rusqlite::Connection::open(path).expect("open the SQLite copy");
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = stmt.column_count();
        stmt.query_map([], |row| (0..n).map(|i| row.get(i)).collect())
            .and_then(|rows| rows.collect())
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// A help desk with something in every table: users (one deactivated),
/// direct and group permissions, members, tickets with events and thread
/// roots, an assignee, watchers, preferences, in-app notifications (one
/// read), sent email with attempts, a flush run, emails still pending, a
/// received message and a suppressed address.
fn filled() -> Sandbox {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.user("bob", "bob@example.org");
    sb.user("gone", "gone@example.org");
    sb.run(["user", "grant", "bob", "view_helpdeskticket"])
        .success();
    sb.run(["user", "deactivate", "gone"]).success();
    sb.manager("m1", "m1@example.org");
    sb.ticket("bob", "high", "first <b>ticket</b>\nline two");
    sb.run(["notify", "flush"]).success();
    sb.smtp.wait_for(2, Duration::from_secs(10));
    sb.ticket("bob", "low", "second ticket");
    sb.run(["ticket", "comment", "1", "--by", "dev", "--body", "on it"])
        .success();
    let first = sb
        .run(["inbox", "--user", "m1", "--format", "json"])
        .success()
        .json();
    let oldest = first["notifications"]
        .as_array()
        .and_then(|n| n.last())
        .and_then(|n| n["id"].as_i64())
        .expect("m1 has notifications");
    sb.run(["inbox", "read", "--user", "m1", &oldest.to_string()])
        .success();
    sb.run(["ticket", "assign", "2", "--to", "dev2", "--by", "bob"])
        .success();
    sb.run(["user", "prefs", "m1", "--event", "comment", "--app", "off"])
        .success();
    // A message from nobody the help desk knows: refused, and recorded.
    sb.run_stdin(
        ["mail", "receive"],
        b"From: stranger@example.net\r\nTo: help@example.org\r\nSubject: hello\r\n\
          Message-ID: <stranger-1@example.net>\r\n\r\nhi\r\n",
    )
    .success();
    // An address a bounce put on the list, as `mail receive` records it.
    sb.sql_exec(
        "INSERT INTO suppressions (address, reason, at) VALUES ('gone@example.org', '5.1.1 unknown user', 1)",
    );
    sb
}

/// The pending emails' count, read through the binary on `db`.
fn pending(sb: &Sandbox, db: &str) -> usize {
    sb.run([
        "--db", db, "notify", "list", "--status", "pending", "--format", "json",
    ])
    .success()
    .json()
    .as_array()
    .map_or(0, Vec::len)
}

fn unread(sb: &Sandbox, db: Option<&str>, user: &str) -> i64 {
    let mut args = vec![];
    if let Some(db) = db {
        args.extend(["--db", db]);
    }
    args.extend(["inbox", "--user", user, "--format", "json"]);
    sb.run(args).success().json()["unread"]
        .as_i64()
        .expect("an unread count")
}

#[test]
fn a_round_trip_through_postgres_keeps_every_row_and_the_copies_work() {
    if pg::cluster().is_none() {
        eprintln!("NOT RUN: set HELPDESK_TEST_PG (tests/pg/cluster.sh) to copy to PostgreSQL");
        return;
    }
    let sb = filled();
    let server = pg::FreshDatabase::new();
    let back = sb.path("back.db");
    let back_text = back.display().to_string();

    let there = sb
        .run(["db", "copy", "--to", &server.url, "--format", "json"])
        .success();
    let copied = there.json();
    let users = copied["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == "users"))
        .expect("users were copied");
    assert_eq!(users["rows"], 5, "{copied}");
    assert!(
        there.stderr.contains("every table's count matches"),
        "{}",
        there.stderr
    );
    sb.run(["--db", &server.url, "db", "copy", "--to", &back_text])
        .success();

    // Every table, every row, on all three.
    let tables = sqlite_tables(&back);
    assert_eq!(tables.len(), TABLE_COUNT, "{tables:?}");
    let original = |sql: &str| sb.sql_texts(sql);
    let on_server = |sql: &str| server.sql_texts(sql);
    let on_back = sqlite_query(&back);
    for (table, columns) in &tables {
        let want = rows(&original, table, columns);
        assert!(!want.is_empty(), "the fixture fills `{table}`");
        assert_eq!(
            rows(&on_server, table, columns),
            want,
            "{table} on PostgreSQL"
        );
        assert_eq!(
            rows(&on_back, table, columns),
            want,
            "{table} back on SQLite"
        );
    }

    // SQLite's inbox tables were rebuilt by its triggers: the counts agree.
    for user in ["m1", "dev", "bob"] {
        let want = unread(&sb, None, user);
        assert_eq!(
            unread(&sb, Some(&back_text), user),
            want,
            "{user} on the copy"
        );
        assert_eq!(
            unread(&sb, Some(&server.url), user),
            want,
            "{user} on PostgreSQL"
        );
    }
    assert_eq!(unread(&sb, Some(&back_text), "m1"), 2);

    // A flush on the copy sends what was pending, and only that.
    let due = pending(&sb, &back_text);
    assert_eq!(
        due, 5,
        "two for ticket 2, two for the comment, one for the assignment"
    );
    let before = sb.smtp.received().len();
    sb.run(["--db", &back_text, "notify", "flush"]).success();
    assert_eq!(
        sb.smtp
            .wait_for(before + due, Duration::from_secs(10))
            .len(),
        before + due
    );
    assert_eq!(pending(&sb, &back_text), 0);

    // The PostgreSQL copy's identities were moved past the copied IDs.
    let made = sb
        .run([
            "--db",
            &server.url,
            "ticket",
            "create",
            "--created-by",
            "bob",
            "--purpose",
            "app",
            "--priority",
            "low",
            "--description",
            "after the move",
            "--format",
            "json",
        ])
        .success()
        .json();
    assert_eq!(made["id"], 3, "{made}");
    sb.run([
        "--db",
        &server.url,
        "user",
        "add",
        "new",
        "--email",
        "new@example.org",
    ])
    .success();
    assert_eq!(server.sql_i64("SELECT max(id) FROM users"), 6);
}

#[test]
fn a_copy_into_sqlite_keeps_ids_and_inbox_counts() {
    let sb = filled();
    let copy = sb.path("copy.db");
    let copy_text = copy.display().to_string();
    sb.run(["db", "copy", "--to", "copy.db"]).success();
    let original = |sql: &str| sb.sql_texts(sql);
    let on_copy = sqlite_query(&copy);
    for (table, columns) in &sqlite_tables(&copy) {
        assert_eq!(
            rows(&on_copy, table, columns),
            rows(&original, table, columns),
            "{table}"
        );
    }
    assert_eq!(unread(&sb, Some(&copy_text), "m1"), unread(&sb, None, "m1"));
}

#[test]
fn a_target_that_is_not_empty_is_refused_and_left_as_it_was() {
    let sb = filled();
    sb.run(["db", "copy", "--to", "copy.db"]).success();
    let copy = sb.path("copy.db");
    let tickets = || sqlite_query(&copy)("SELECT CAST(count(*) AS TEXT) FROM tickets");
    let before = tickets();
    let run = sb.run(["db", "copy", "--to", "copy.db"]).code(1);
    let shown = copy.display().to_string();
    run.stderr_is(&format!(
        "error: database `{shown}` is not empty (table `users` holds 5 rows); nothing was copied\n\
         hint: copy into a new SQLite file or an empty PostgreSQL database (`createdb NAME`)\n"
    ));
    assert_eq!(tickets(), before);
}

#[test]
fn the_help_desk_is_not_copied_onto_itself() {
    let sb = Sandbox::new();
    let own = if sb.on_postgres() {
        sb.pg.as_ref().unwrap().url.clone()
    } else {
        "helpdesk.db".to_string()
    };
    let run = sb.run(["db", "copy", "--to", &own]).code(1);
    assert!(
        run.stderr.starts_with("error: `")
            && run.stderr.contains("is the help desk's own database"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_postgres_target_that_holds_a_help_desk_is_refused() {
    if pg::cluster().is_none() {
        eprintln!("NOT RUN: set HELPDESK_TEST_PG (tests/pg/cluster.sh) to copy to PostgreSQL");
        return;
    }
    let sb = filled();
    let server = pg::FreshDatabase::new();
    sb.run(["db", "copy", "--to", &server.url]).success();
    let run = sb.run(["db", "copy", "--to", &server.url]).code(1);
    assert!(
        run.stderr
            .contains("is not empty (table `users` holds 5 rows); nothing was copied"),
        "{}",
        run.stderr
    );
    assert_eq!(server.sql_i64("SELECT count(*) FROM users"), 5);
}

/// More than 8,192 notifications: on a SQLite target the triggers file a
/// batch of the copied in-app notifications into the per-user table while
/// the copy runs; every user's inbox and unread count still match.
#[test]
fn a_copy_past_a_filing_batch_keeps_every_inbox() {
    let sb = filled();
    // 3,000 more events of ticket 1, each with an in-app notification for
    // three users, a third of them read. Portable SQL: both backends run it.
    sb.sql_exec(
        "WITH RECURSIVE seq(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM seq WHERE k < 3000)
         INSERT INTO events (ticket_id, kind, actor_id, data, title, body, url, created_at)
           SELECT e.ticket_id, e.kind, e.actor_id, e.data, e.title, e.body, e.url, e.created_at + seq.k
             FROM events e, seq WHERE e.id = 1;
         INSERT INTO notifications (event_id, ticket_id, user_id, channel, priority, status,
                                    created_at, delivered_at, read_at)
           SELECT e.id, e.ticket_id, u.id, 'app', 1, 'sent', e.created_at, e.created_at,
                  CASE WHEN e.id % 3 = 0 THEN e.created_at END
             FROM events e, users u
            WHERE e.id > 4 AND u.username IN ('dev', 'dev2', 'm1');",
    );
    assert!(sb.sql_i64("SELECT max(id) FROM notifications") > 8192);
    sb.run(["db", "copy", "--to", "big.db"]).success();
    let copy = sb.path("big.db").display().to_string();
    for user in ["dev", "dev2", "m1", "bob"] {
        let page = |db: Option<&str>| {
            let mut args = vec![];
            if let Some(db) = db {
                args.extend(["--db", db]);
            }
            args.extend([
                "inbox", "--user", user, "--limit", "200", "--format", "json",
            ]);
            sb.run(args).success().json()
        };
        let (want, got) = (page(None), page(Some(&copy)));
        assert_eq!(got["unread"], want["unread"], "{user}'s unread count");
        assert_eq!(
            got["notifications"], want["notifications"],
            "{user}'s inbox"
        );
    }
    assert!(unread(&sb, Some(&copy), "dev") > 1000);
}
