//! `inbox`: a user's in-app notifications, newest first, with the total
//! unread count; `--unread`, `--limit` (default 50), `--mark-read`, and
//! `inbox read` (IDs or `--all`), which marks nothing when any ID is not the
//! user's (SPEC §2).

use serde_json::Value;

use crate::support::*;

/// A sandbox where `dev` and `dev2` are developers and `bob` opens tickets.
fn setup() -> Sandbox {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.user("bob", "bob@example.org");
    sb
}

/// Creates `n` tickets as `bob`, cheaply (no JSON parsing).
fn tickets(sb: &Sandbox, n: usize) {
    for i in 0..n {
        let description = format!("ticket number {i}");
        sb.run([
            "ticket",
            "create",
            "--created-by",
            "bob",
            "--purpose",
            "app",
            "--priority",
            "low",
            "--description",
            &description,
            "-q",
        ])
        .success();
    }
}

fn inbox(sb: &Sandbox, user: &str, extra: &[&str]) -> Value {
    let mut args = vec!["inbox", "--user", user, "--format", "json"];
    args.extend_from_slice(extra);
    sb.run(args).success().json()
}

fn items(inbox: &Value) -> &Vec<Value> {
    inbox["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no notifications array: {inbox}"))
}

fn ids(inbox: &Value) -> Vec<i64> {
    items(inbox)
        .iter()
        .map(|n| n["id"].as_i64().expect("id"))
        .collect()
}

fn ticket_ids(inbox: &Value) -> Vec<i64> {
    items(inbox)
        .iter()
        .map(|n| n["ticket_id"].as_i64().expect("ticket_id"))
        .collect()
}

fn unread(sb: &Sandbox, user: &str) -> i64 {
    inbox(sb, user, &[])["unread"]
        .as_i64()
        .expect("unread is a number")
}

/// Unread in-app notifications of a user, read from the database.
fn unread_in_db(sb: &Sandbox, user: &str) -> i64 {
    sb.sql_i64(&format!(
        "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id \
         WHERE u.username = '{user}' AND n.channel = 'app' AND n.read_at IS NULL"
    ))
}

#[test]
fn the_inbox_is_newest_first_in_the_documented_json_shape() {
    let sb = setup();
    tickets(&sb, 3);
    let view = inbox(&sb, "dev", &[]);
    let keys: Vec<&str> = view
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    for key in ["user", "unread", "notifications"] {
        assert!(keys.contains(&key), "no `{key}` in {view}");
    }
    assert_eq!(view["user"], "dev");
    assert_eq!(view["unread"], 3);
    assert_eq!(ticket_ids(&view), vec![3, 2, 1]);
    let ids = ids(&view);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    for n in items(&view) {
        for key in [
            "id",
            "ticket_id",
            "title",
            "body",
            "url",
            "priority",
            "read",
            "delivered_at",
        ] {
            assert!(n.get(key).is_some(), "no `{key}` in {n}");
        }
        assert_eq!(n["read"], false);
        assert_eq!(n["title"], "A new help desk ticket has been created");
        assert_eq!(n["body"], "Priority: Low - Purpose: App");
        assert_eq!(n["priority"], "low");
        let at = n["delivered_at"].as_str().expect("delivered_at is set");
        assert!(at.ends_with('Z'), "{at}");
        at.parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{at}: {e}"));
    }
}

#[test]
fn unread_is_the_total_whatever_limit_or_unread_show() {
    let sb = setup();
    tickets(&sb, 5);
    let view = inbox(&sb, "dev", &["--limit", "2"]);
    assert_eq!(ticket_ids(&view), vec![5, 4]);
    assert_eq!(view["unread"], 5);

    let newest = ids(&view)[0].to_string();
    sb.run(["inbox", "read", "--user", "dev", &newest])
        .success();

    let view = inbox(&sb, "dev", &["--unread"]);
    assert_eq!(ticket_ids(&view), vec![4, 3, 2, 1]);
    assert_eq!(view["unread"], 4);
    let view = inbox(&sb, "dev", &["--unread", "--limit", "1"]);
    assert_eq!(ticket_ids(&view), vec![4]);
    assert_eq!(view["unread"], 4);
    let view = inbox(&sb, "dev", &[]);
    assert_eq!(ticket_ids(&view), vec![5, 4, 3, 2, 1]);
    assert_eq!(items(&view)[0]["read"], true);
    assert_eq!(view["unread"], 4);
}

#[test]
fn the_default_limit_is_fifty() {
    let sb = setup();
    tickets(&sb, 55);
    let view = inbox(&sb, "dev", &[]);
    assert_eq!(items(&view).len(), 50);
    assert_eq!(view["unread"], 55);
    assert_eq!(ticket_ids(&view)[0], 55);
    assert_eq!(ticket_ids(&view)[49], 6);
    assert_eq!(items(&inbox(&sb, "dev", &["--limit", "100"])).len(), 55);
    assert_eq!(items(&inbox(&sb, "dev", &["--unread"])).len(), 50);
}

#[test]
fn mark_read_marks_only_the_notifications_shown() {
    let sb = setup();
    tickets(&sb, 4);
    let view = inbox(&sb, "dev", &["--limit", "2", "--mark-read"]);
    assert_eq!(ticket_ids(&view), vec![4, 3]);
    assert_eq!(view["unread"], 2);
    assert_eq!(unread_in_db(&sb, "dev"), 2);
    let view = inbox(&sb, "dev", &[]);
    let read: Vec<bool> = items(&view)
        .iter()
        .map(|n| n["read"].as_bool().unwrap())
        .collect();
    assert_eq!(read, vec![true, true, false, false]);
    assert_eq!(view["unread"], 2);
    // The other developer's notifications are untouched.
    assert_eq!(unread(&sb, "dev2"), 4);
}

#[test]
fn inbox_read_marks_the_given_ids() {
    let sb = setup();
    tickets(&sb, 3);
    let all = ids(&inbox(&sb, "dev", &[]));
    let (first, last) = (all[0].to_string(), all[2].to_string());
    sb.run(["inbox", "read", "--user", "dev", &first, &last])
        .success();
    let view = inbox(&sb, "dev", &[]);
    let read: Vec<bool> = items(&view)
        .iter()
        .map(|n| n["read"].as_bool().unwrap())
        .collect();
    assert_eq!(read, vec![true, false, true]);
    assert_eq!(view["unread"], 1);
    // Reading one that is already read is fine.
    sb.run(["inbox", "read", "--user", "dev", &first]).success();
    assert_eq!(unread(&sb, "dev"), 1);
    assert_eq!(unread(&sb, "dev2"), 3);
}

#[test]
fn inbox_read_all_marks_everything_of_that_user() {
    let sb = setup();
    tickets(&sb, 3);
    sb.run(["inbox", "read", "--user", "dev", "--all"])
        .success();
    assert_eq!(unread(&sb, "dev"), 0);
    assert_eq!(unread_in_db(&sb, "dev"), 0);
    assert!(
        items(&inbox(&sb, "dev", &["--unread"])).is_empty(),
        "nothing is left unread"
    );
    assert_eq!(unread(&sb, "dev2"), 3);
    // Without IDs or --all it is wrong usage.
    sb.run(["inbox", "read", "--user", "dev"]).code(2);
}

#[test]
fn reading_another_users_notification_is_an_error_and_marks_nothing() {
    let sb = setup();
    tickets(&sb, 2);
    let mine = ids(&inbox(&sb, "dev", &[]));
    let theirs = ids(&inbox(&sb, "dev2", &[]));
    let (mine0, theirs0) = (mine[0].to_string(), theirs[0].to_string());
    let before = (unread_in_db(&sb, "dev"), unread_in_db(&sb, "dev2"));
    assert_eq!(before, (2, 2));

    let run = sb
        .run(["inbox", "read", "--user", "dev", &theirs0])
        .code(1)
        .stderr_has(&theirs0);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    // One of mine with one of theirs: still nothing is marked.
    sb.run(["inbox", "read", "--user", "dev", &mine0, &theirs0])
        .code(1);
    // An ID that does not exist at all.
    sb.run(["inbox", "read", "--user", "dev", &mine0, "999999"])
        .code(1)
        .stderr_has("999999");
    assert_eq!(
        (unread_in_db(&sb, "dev"), unread_in_db(&sb, "dev2")),
        before
    );
    assert_eq!(unread(&sb, "dev"), 2);
    assert_eq!(unread(&sb, "dev2"), 2);
}

#[test]
fn users_see_only_their_own_notifications() {
    let sb = setup();
    sb.manager("boss", "boss@example.org");
    tickets(&sb, 2);
    for user in ["dev", "dev2", "boss"] {
        let view = inbox(&sb, user, &[]);
        assert_eq!(view["user"], user);
        assert_eq!(items(&view).len(), 2, "{user}: {view}");
        let list: Vec<String> = ids(&view).iter().map(i64::to_string).collect();
        let foreign = sb.sql_i64(&format!(
            "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id \
             WHERE n.id IN ({}) AND (u.username <> '{user}' OR n.channel <> 'app')",
            list.join(",")
        ));
        assert_eq!(foreign, 0, "{user} sees notifications that are not theirs");
    }
    let all: Vec<i64> = ["dev", "dev2", "boss"]
        .iter()
        .flat_map(|u| ids(&inbox(&sb, u, &[])))
        .collect();
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "{all:?}");
    // The reporter is neither developer nor manager: an empty inbox.
    let view = inbox(&sb, "bob", &[]);
    assert!(items(&view).is_empty(), "{view}");
    assert_eq!(view["unread"], 0);
}

#[test]
fn the_inbox_of_an_unknown_user_is_an_error() {
    let sb = setup();
    sb.run(["inbox", "--user", "nobody"])
        .code(1)
        .stderr_has("no user named `nobody`");
    sb.run(["inbox", "read", "--user", "nobody", "--all"])
        .code(1)
        .stderr_has("no user named `nobody`");
    sb.run(["inbox"]).code(2);
}

#[test]
fn the_table_shows_the_unread_count() {
    let sb = setup();
    tickets(&sb, 2);
    sb.run(["inbox", "--user", "dev"])
        .success()
        .stdout_has("A new help desk ticket has been created")
        .stdout_has("unread");
}
