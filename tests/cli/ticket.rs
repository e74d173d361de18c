//! `ticket create` / `list` / `show`: who is notified (SPEC §1 "Recipients"),
//! what they read (§1 "Content"), the queued email and debug mode, the
//! ticket values the command line accepts, and that a refused create writes
//! nothing (§4 "Bad input").

use std::ffi::OsString;

use serde_json::Value;

use crate::support::*;

/// Runs `ticket create --format json` with these values (not asserting success).
fn create(sb: &Sandbox, by: &str, purpose: &str, priority: &str, description: &str) -> Run {
    sb.run([
        "ticket",
        "create",
        "--created-by",
        by,
        "--purpose",
        purpose,
        "--priority",
        priority,
        "--description",
        description,
        "--format",
        "json",
    ])
}

/// `ticket create` reading the description from standard input.
fn create_stdin(sb: &Sandbox, input: &[u8]) -> Run {
    sb.run_stdin(
        [
            "ticket",
            "create",
            "--created-by",
            "bob",
            "--purpose",
            "app",
            "--priority",
            "high",
            "--description",
            "-",
            "--format",
            "json",
        ],
        input,
    )
}

/// The (user, channel, status) of a ticket's notifications, sorted.
fn recipients(ticket: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = ticket["notifications"]
        .as_array()
        .expect("notifications is an array")
        .iter()
        .map(|n| {
            (
                n["user"].as_str().expect("user").to_string(),
                n["channel"].as_str().expect("channel").to_string(),
                n["status"].as_str().expect("status").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn app(user: &str) -> (String, String, String) {
    (user.into(), "app".into(), "sent".into())
}

fn email(user: &str) -> (String, String, String) {
    (user.into(), "email".into(), "pending".into())
}

/// Rows in the tickets and notifications tables.
fn counts(sb: &Sandbox) -> (i64, i64) {
    (
        sb.sql_i64("SELECT count(*) FROM tickets"),
        sb.sql_i64("SELECT count(*) FROM notifications"),
    )
}

/// Notifications stored for a user on a channel, read from the database.
fn stored(sb: &Sandbox, user: &str, channel: &str) -> i64 {
    sb.sql_i64(&format!(
        "SELECT count(*) FROM notifications n JOIN users u ON u.id = n.user_id \
         WHERE u.username = '{user}' AND n.channel = '{channel}'"
    ))
}

#[track_caller]
fn assert_rfc3339_utc(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(text.ends_with('Z'), "not UTC: {text}");
    text.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

#[track_caller]
fn assert_keys(value: &Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    for key in keys {
        assert!(object.contains_key(*key), "no `{key}` in {value}");
    }
}

/// A sandbox with both developers of BASE_CONFIG (one matched only
/// case-insensitively) and a reporter who is neither developer nor manager.
fn with_developers() -> Sandbox {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.user("bob", "bob@example.org");
    sb
}

#[test]
fn developers_get_one_app_and_one_email_matched_case_insensitively() {
    let sb = with_developers();
    let ticket = sb.ticket("bob", "high", "the app crashes");
    assert_eq!(
        recipients(&ticket),
        vec![app("dev"), email("dev"), app("dev2"), email("dev2")]
    );
    assert_eq!(stored(&sb, "dev2", "app"), 1);
    assert_eq!(stored(&sb, "dev2", "email"), 1);
    assert_eq!(stored(&sb, "bob", "app") + stored(&sb, "bob", "email"), 0);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM notifications"), 4);
}

#[test]
fn an_admin_listed_twice_in_any_case_is_notified_once() {
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "admins = [[\"A\", \"dev@example.org\"], [\"B\", \"DEV@example.ORG\"]]\n{}",
        BASE_CONFIG.replacen("admins", "# admins", 1)
    ));
    sb.user("dev", "Dev@Example.Org");
    sb.user("bob", "bob@example.org");
    let ticket = sb.ticket("bob", "high", "twice listed");
    assert_eq!(recipients(&ticket), vec![app("dev"), email("dev")]);
    assert_eq!(email_recipients(&sb), vec!["Dev@Example.Org"]);
}

#[test]
fn a_manager_by_direct_permission_gets_in_app_only() {
    let sb = with_developers();
    sb.user("boss", "boss@example.org");
    sb.user("viewer", "viewer@example.org");
    sb.run(["user", "grant", "boss", "delete_helpdeskticket"])
        .success();
    sb.run(["user", "grant", "viewer", "view_helpdeskticket"])
        .success();
    let ticket = sb.ticket("bob", "low", "printer");
    let all = recipients(&ticket);
    assert!(all.contains(&app("boss")), "{all:?}");
    assert!(!all.contains(&email("boss")), "{all:?}");
    assert!(all.iter().all(|r| r.0 != "viewer"), "{all:?}");
    assert_eq!(stored(&sb, "boss", "app"), 1);
    assert_eq!(stored(&sb, "boss", "email"), 0);
    assert_eq!(stored(&sb, "viewer", "app"), 0);
}

#[test]
fn a_manager_through_a_group_gets_in_app_only() {
    let sb = with_developers();
    sb.manager("boss", "boss@example.org");
    let ticket = sb.ticket("bob", "medium", "vpn");
    assert_eq!(
        recipients(&ticket),
        vec![
            app("boss"),
            app("dev"),
            email("dev"),
            app("dev2"),
            email("dev2")
        ]
    );
    assert_eq!(stored(&sb, "boss", "email"), 0);
}

#[test]
fn a_developer_who_is_also_a_manager_gets_exactly_one_of_each() {
    let sb = with_developers();
    sb.run(["user", "grant", "dev", "delete_helpdeskticket"])
        .success();
    sb.run([
        "group",
        "add",
        "managers",
        "--perm",
        "delete_helpdeskticket",
    ])
    .success();
    sb.run(["group", "add-user", "managers", "dev"]).success();
    let ticket = sb.ticket("bob", "urgent", "down");
    let mine: Vec<_> = recipients(&ticket)
        .into_iter()
        .filter(|r| r.0 == "dev")
        .collect();
    assert_eq!(mine, vec![app("dev"), email("dev")]);
    assert_eq!(stored(&sb, "dev", "app"), 1);
    assert_eq!(stored(&sb, "dev", "email"), 1);
}

#[test]
fn the_permission_through_two_groups_gives_one_notification() {
    let sb = with_developers();
    sb.user("boss", "boss@example.org");
    for group in ["north", "south"] {
        sb.run(["group", "add", group, "--perm", "delete_helpdeskticket"])
            .success();
        sb.run(["group", "add-user", group, "boss"]).success();
    }
    sb.run(["user", "grant", "boss", "delete_helpdeskticket"])
        .success();
    let ticket = sb.ticket("bob", "high", "twice");
    let mine: Vec<_> = recipients(&ticket)
        .into_iter()
        .filter(|r| r.0 == "boss")
        .collect();
    assert_eq!(mine, vec![app("boss")]);
    assert_eq!(stored(&sb, "boss", "app"), 1);
}

#[test]
fn inactive_users_get_nothing() {
    let sb = with_developers();
    sb.manager("boss", "boss@example.org");
    sb.run(["user", "deactivate", "dev2"]).success();
    sb.run(["user", "deactivate", "boss"]).success();
    let ticket = sb.ticket("bob", "high", "quiet please");
    assert_eq!(recipients(&ticket), vec![app("dev"), email("dev")]);
    for user in ["dev2", "boss"] {
        assert_eq!(stored(&sb, user, "app") + stored(&sb, user, "email"), 0);
    }
    let inbox = sb
        .run(["inbox", "--user", "dev2", "--format", "json"])
        .success()
        .json();
    assert_eq!(inbox["unread"], 0);
}

#[test]
fn an_admin_without_an_account_is_a_warning_not_an_error() {
    let sb = Sandbox::new();
    sb.user("dev2", "dev2@example.org");
    sb.user("bob", "bob@example.org");
    let run = create(&sb, "bob", "app", "high", "who is dev?")
        .success()
        .stderr_has("warning")
        .stderr_has("dev@example.org");
    // Warnings go to stderr: stdout stays one JSON document.
    let ticket = run.json();
    assert_eq!(recipients(&ticket), vec![app("dev2"), email("dev2")]);
    assert!(
        !run.stderr.contains("dev2@example.org") && !run.stderr.contains("DEV2@Example.org"),
        "only the missing admin is named:\n{}",
        run.stderr
    );
    assert_eq!(counts(&sb), (1, 2));
}

#[test]
fn no_warning_when_every_admin_has_an_account() {
    let sb = with_developers();
    let run = create(&sb, "bob", "app", "high", "all here").success();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
}

#[test]
fn the_creator_is_notified_of_a_new_ticket_when_the_rules_name_them() {
    let sb = with_developers();
    sb.manager("boss", "boss@example.org");
    let by_dev = sb.ticket("dev", "high", "I found it myself");
    assert!(recipients(&by_dev).contains(&app("dev")));
    assert!(recipients(&by_dev).contains(&email("dev")));
    let by_boss = sb.ticket("boss", "high", "me too");
    assert!(recipients(&by_boss).contains(&app("boss")));
}

#[test]
fn in_app_content_uses_display_names_and_the_relative_url() {
    let sb = with_developers();
    let cases = [
        ("low", "app", "Priority: Low - Purpose: App", "low"),
        (
            "medium",
            "company",
            "Priority: Medium - Purpose: Company",
            "medium",
        ),
        ("high", "app", "Priority: High - Purpose: App", "high"),
        (
            "urgent",
            "company",
            "Priority: Urgent - Purpose: Company",
            "high",
        ),
    ];
    for (priority, purpose, body, notification_priority) in cases {
        let ticket = create(&sb, "bob", purpose, priority, "content check")
            .success()
            .json();
        let id = ticket["id"].as_i64().expect("id");
        let inbox = sb
            .run([
                "inbox", "--user", "dev2", "--limit", "1", "--format", "json",
            ])
            .success()
            .json();
        let n = &inbox["notifications"][0];
        assert_eq!(n["ticket_id"], id, "{inbox}");
        assert_eq!(n["title"], "A new help desk ticket has been created");
        assert_eq!(n["body"], body);
        assert_eq!(n["url"], format!("/help_desk/page/{id}/detail/"));
        assert_eq!(n["priority"], notification_priority, "{priority}");
        assert_eq!(ticket["priority"], priority);
        assert_eq!(ticket["purpose"], purpose);
    }
}

#[test]
fn email_is_queued_pending_to_the_users_address() {
    let sb = with_developers();
    let ticket = sb.ticket("bob", "high", "queue me");
    let id = ticket["id"].as_i64().expect("id");
    let queue = sb
        .run(["notify", "list", "--channel", "email", "--format", "json"])
        .success()
        .json();
    let rows = queue.as_array().expect("an array");
    assert_eq!(rows.len(), 2, "{queue}");
    for row in rows {
        assert_keys(
            row,
            &[
                "id",
                "channel",
                "user",
                "to",
                "ticket_id",
                "status",
                "attempts",
                "next_attempt_at",
                "last_error",
            ],
        );
        assert_eq!(row["channel"], "email");
        assert_eq!(row["status"], "pending");
        assert_eq!(row["ticket_id"], id);
        assert_eq!(row["attempts"], 0);
        assert!(row["next_attempt_at"].is_null(), "{row}");
        assert!(row["last_error"].is_null(), "{row}");
    }
    let mut to: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["user"].as_str().unwrap().into(),
                r["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    to.sort();
    assert_eq!(
        to,
        vec![
            ("dev".into(), "dev@example.org".into()),
            ("dev2".into(), "dev2@example.org".into())
        ]
    );
    // In-app notifications are delivered at once; none is in the email queue.
    let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    for n in ticket["notifications"].as_array().unwrap() {
        let listed = ids.contains(&n["id"].as_i64().unwrap());
        assert_eq!(listed, n["channel"] == "email", "{n}");
    }
}

fn email_recipients(sb: &Sandbox) -> Vec<String> {
    let queue = sb
        .run(["notify", "list", "--channel", "email", "--format", "json"])
        .success()
        .json();
    let mut to: Vec<String> = queue
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["to"].as_str().expect("to").to_string())
        .collect();
    to.sort();
    to
}

#[test]
fn debug_mode_addresses_queued_email_to_the_development_address() {
    let sb = with_developers();
    sb.write_config(&format!(
        "debug = true\ndevelopment_email = \"devnull@example.org\"\n{BASE_CONFIG}"
    ));
    sb.ticket("bob", "high", "debugging");
    assert_eq!(
        email_recipients(&sb),
        vec!["devnull@example.org", "devnull@example.org"]
    );
    // Queued in debug mode, it stays so addressed when debug is turned off.
    sb.write_config(BASE_CONFIG);
    assert_eq!(
        email_recipients(&sb),
        vec!["devnull@example.org", "devnull@example.org"]
    );
    sb.ticket("bob", "high", "production again");
    assert_eq!(
        email_recipients(&sb),
        vec![
            "dev2@example.org",
            "dev@example.org",
            "devnull@example.org",
            "devnull@example.org"
        ]
    );
}

#[test]
fn helpdesk_debug_in_the_environment_turns_debug_mode_on() {
    let sb = with_developers();
    sb.write_config(&format!(
        "development_email = \"devnull@example.org\"\n{BASE_CONFIG}"
    ));
    for value in ["1", "true"] {
        sb.run_env(
            [
                "ticket",
                "create",
                "--created-by",
                "bob",
                "--purpose",
                "app",
                "--priority",
                "low",
                "--description",
                "env debug",
            ],
            &[("HELPDESK_DEBUG", value)],
        )
        .success();
    }
    assert_eq!(email_recipients(&sb), vec!["devnull@example.org"; 4]);
    // Without the variable (and without `debug` in the file) mail goes to the users.
    sb.ticket("bob", "low", "not debug");
    let to = email_recipients(&sb);
    assert!(to.contains(&"dev@example.org".to_string()), "{to:?}");
    assert!(to.contains(&"dev2@example.org".to_string()), "{to:?}");
}

#[test]
fn helpdesk_debug_false_in_the_environment_overrides_the_file() {
    let sb = with_developers();
    sb.write_config(&format!(
        "debug = true\ndevelopment_email = \"devnull@example.org\"\n{BASE_CONFIG}"
    ));
    sb.run_env(
        [
            "ticket",
            "create",
            "--created-by",
            "bob",
            "--purpose",
            "app",
            "--priority",
            "low",
            "--description",
            "env says no debug",
        ],
        &[("HELPDESK_DEBUG", "0")],
    )
    .success();
    assert_eq!(
        email_recipients(&sb),
        vec!["dev2@example.org", "dev@example.org"]
    );
}

#[test]
fn an_unknown_creator_is_refused_and_nothing_is_written() {
    let sb = with_developers();
    sb.ticket("bob", "high", "one that works");
    let before = counts(&sb);
    let run = create(&sb, "x", "app", "high", "nobody made me")
        .code(1)
        .stderr_has("error: no user named `x`")
        .stderr_has("\nhint: ");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(counts(&sb), before);
}

#[test]
fn a_deactivated_creator_is_refused() {
    let sb = with_developers();
    sb.ticket("bob", "high", "before");
    sb.run(["user", "deactivate", "bob"]).success();
    let before = counts(&sb);
    create(&sb, "bob", "app", "high", "after")
        .code(1)
        .stderr_has("bob");
    assert_eq!(counts(&sb), before);
}

#[test]
fn a_blank_description_is_refused() {
    let sb = with_developers();
    sb.ticket("bob", "high", "ok");
    let before = counts(&sb);
    for blank in ["   ", "", " \n\t "] {
        create(&sb, "bob", "app", "high", blank)
            .code(1)
            .stderr_has("description");
        assert_eq!(counts(&sb), before, "{blank:?}");
    }
    create_stdin(&sb, b"  \n\n  ").code(1);
    create_stdin(&sb, b"").code(1);
    assert_eq!(counts(&sb), before);
}

#[test]
fn a_description_from_standard_input_keeps_its_lines() {
    let sb = with_developers();
    let text = "first line\nsecond line\n\n  indented third\n";
    let ticket = create_stdin(&sb, text.as_bytes()).success().json();
    assert_eq!(ticket["description"], text);
    let id = ticket["id"].as_i64().unwrap().to_string();
    let shown = sb
        .run(["ticket", "show", &id, "--format", "json"])
        .success()
        .json();
    assert_eq!(shown["description"], text);
    assert_eq!(recipients(&ticket).len(), 4);
}

#[test]
fn a_description_over_one_mib_is_refused() {
    let sb = with_developers();
    sb.ticket("bob", "high", "small");
    let before = counts(&sb);
    create_stdin(&sb, &vec![b'a'; 1_048_577])
        .code(1)
        .stderr_has("1 MiB");
    assert_eq!(counts(&sb), before);
    // Exactly 1 MiB is allowed.
    let ticket = create_stdin(&sb, &vec![b'a'; 1_048_576]).success().json();
    assert_eq!(ticket["description"].as_str().unwrap().len(), 1_048_576);
    assert_eq!(counts(&sb).0, before.0 + 1);
}

#[test]
fn a_description_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStringExt;
    let sb = with_developers();
    sb.ticket("bob", "high", "valid");
    let before = counts(&sb);
    create_stdin(&sb, b"caf\xe9 au lait\xff")
        .code(1)
        .stderr_has("UTF-8");
    assert_eq!(counts(&sb), before);
    let mut args: Vec<OsString> = [
        "ticket",
        "create",
        "--created-by",
        "bob",
        "--purpose",
        "app",
        "--priority",
        "high",
        "--description",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(OsString::from_vec(b"bad \xff bytes".to_vec()));
    sb.run(args).code(1).stderr_has("UTF-8");
    assert_eq!(counts(&sb), before);
}

#[test]
fn an_unknown_priority_or_purpose_is_wrong_usage_listing_the_accepted_values() {
    let sb = with_developers();
    sb.ticket("bob", "high", "fine");
    let before = counts(&sb);
    let run = create(&sb, "bob", "app", "critical", "too much").code(2);
    for value in ["critical", "low", "medium", "high", "urgent"] {
        assert!(run.stderr.contains(value), "no {value}:\n{}", run.stderr);
    }
    let run = create(&sb, "bob", "website", "high", "wrong purpose").code(2);
    for value in ["website", "app", "company"] {
        assert!(run.stderr.contains(value), "no {value}:\n{}", run.stderr);
    }
    sb.run([
        "ticket",
        "create",
        "--created-by",
        "bob",
        "--purpose",
        "app",
    ])
    .code(2);
    assert_eq!(counts(&sb), before);
}

#[test]
fn value_aliases_are_accepted_in_any_case() {
    let sb = with_developers();
    for (purpose, priority, stored_purpose, stored_priority) in [
        ("comp", "med", "company", "medium"),
        ("COMP", "URGE", "company", "urgent"),
        ("App", "Urge", "app", "urgent"),
        ("Company", "MED", "company", "medium"),
        ("APP", "HIGH", "app", "high"),
    ] {
        let ticket = create(&sb, "bob", purpose, priority, "aliases")
            .success()
            .json();
        assert_eq!(ticket["purpose"], stored_purpose, "{purpose}");
        assert_eq!(ticket["priority"], stored_priority, "{priority}");
    }
    // Status aliases, through the list filter.
    sb.run([
        "ticket",
        "update",
        "2",
        "--by",
        "dev",
        "--status",
        "in_progress",
    ])
    .success();
    for status in ["PROG", "in-progress", "In_Progress"] {
        let list = sb
            .run(["ticket", "list", "--status", status, "--format", "json"])
            .success()
            .json();
        let ids: Vec<i64> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, vec![2], "{status}");
    }
    let ready = sb
        .run(["ticket", "list", "--status", "READ", "--format", "json"])
        .success()
        .json();
    assert_eq!(ready.as_array().unwrap().len(), 4);
}

#[test]
fn create_and_show_print_the_ticket_json() {
    let sb = with_developers();
    sb.manager("boss", "boss@example.org");
    let ticket = create(&sb, "bob", "company", "urgent", "payroll is late")
        .success()
        .json();
    assert_keys(
        &ticket,
        &[
            "id",
            "created_by",
            "purpose",
            "priority",
            "status",
            "description",
            "created_at",
            "notifications",
        ],
    );
    assert_eq!(ticket["id"], 1);
    assert_eq!(ticket["created_by"], "bob");
    assert_eq!(ticket["purpose"], "company");
    assert_eq!(ticket["priority"], "urgent");
    assert_eq!(ticket["status"], "ready");
    assert_eq!(ticket["description"], "payroll is late");
    assert_rfc3339_utc(&ticket["created_at"]);
    for n in ticket["notifications"].as_array().unwrap() {
        assert_keys(n, &["id", "user", "channel", "status"]);
        assert!(n["id"].is_i64(), "{n}");
    }
    assert_eq!(recipients(&ticket).len(), 5);

    let shown = sb
        .run(["ticket", "show", "1", "--format", "json"])
        .success()
        .json();
    for key in [
        "id",
        "created_by",
        "purpose",
        "priority",
        "status",
        "description",
        "created_at",
    ] {
        assert_eq!(shown[key], ticket[key], "{key}");
    }
    assert_eq!(recipients(&shown), recipients(&ticket));
}

#[test]
fn create_says_who_was_notified() {
    let sb = with_developers();
    sb.manager("boss", "boss@example.org");
    let run = sb
        .run([
            "ticket",
            "create",
            "--created-by",
            "bob",
            "--purpose",
            "app",
            "--priority",
            "high",
            "--description",
            "people output",
        ])
        .success()
        .stdout_has("#1");
    for user in ["dev", "dev2", "boss"] {
        assert!(run.stdout.contains(user), "{user}:\n{}", run.stdout);
    }
}

#[test]
fn ticket_list_filters_by_status_and_priority() {
    let sb = with_developers();
    sb.ticket("bob", "high", "one"); // 1
    sb.ticket("bob", "low", "two"); // 2
    sb.ticket("bob", "high", "three"); // 3
    sb.ticket("bob", "urgent", "four"); // 4
    sb.run(["ticket", "update", "3", "--by", "dev", "--status", "done"])
        .success();
    let ids = |args: &[&str]| -> Vec<i64> {
        let mut all = vec!["ticket", "list", "--format", "json"];
        all.extend_from_slice(args);
        let mut ids: Vec<i64> = sb
            .run(all)
            .success()
            .json()
            .as_array()
            .expect("an array")
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&[]), vec![1, 2, 3, 4]);
    assert_eq!(ids(&["--status", "ready", "--priority", "high"]), vec![1]);
    assert_eq!(ids(&["--priority", "high"]), vec![1, 3]);
    assert_eq!(ids(&["--status", "done"]), vec![3]);
    assert_eq!(ids(&["--status", "ready"]), vec![1, 2, 4]);
    assert_eq!(ids(&["--priority", "urgent"]), vec![4]);
    assert!(ids(&["--status", "in_progress"]).is_empty());
}

#[test]
fn global_options_work_before_or_after_the_subcommand() {
    let sb = with_developers();
    sb.ticket("bob", "high", "global options");
    let before = sb.run(["--format", "json", "ticket", "list"]).success();
    let after = sb.run(["ticket", "list", "--format", "json"]).success();
    let middle = sb.run(["ticket", "--format", "json", "list"]).success();
    assert_eq!(before.json(), after.json());
    assert_eq!(middle.json(), after.json());
    assert_eq!(after.json().as_array().unwrap().len(), 1);
    // Other global options too: --db and -q after the subcommand.
    sb.run(["init", "--db", "other.db"]).success();
    sb.run([
        "user",
        "add",
        "zed",
        "--email",
        "zed@example.org",
        "--db",
        "other.db",
        "-q",
    ])
    .success();
    assert!(sb.exists("other.db"));
    let users = sb
        .run(["--db", "other.db", "user", "list", "--format", "json"])
        .success()
        .json();
    assert_eq!(users.as_array().unwrap().len(), 1);
}

#[test]
fn concurrent_creates_all_succeed() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.manager("boss", "boss@example.org");
    const RUNS: usize = 12;
    let children: Vec<std::process::Child> = (0..RUNS)
        .map(|i| {
            sb.command()
                .args([
                    "ticket",
                    "create",
                    "--created-by",
                    "dev",
                    "--purpose",
                    "app",
                    "--priority",
                    "high",
                ])
                .args(["--description", &format!("at the same time {i}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn ticket create")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("ticket create finishes");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "a concurrent create failed: {stderr}"
        );
        assert!(!stderr.contains("locked"), "{stderr}");
    }
    assert_eq!(sb.sql_i64("SELECT count(*) FROM tickets"), RUNS as i64);
    // Each: dev and dev2 in-app + email, boss in-app.
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications"),
        (RUNS * 5) as i64
    );
}

#[test]
fn commands_that_create_the_database_at_the_same_time_all_succeed() {
    for round in 0..4 {
        let sb = Sandbox::new();
        let children: Vec<std::process::Child> = (0..8)
            .map(|_| {
                sb.command()
                    .args(["user", "list"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn user list")
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().expect("user list finishes");
            assert!(
                output.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        sb.user("dev", "dev@example.org");
    }
}

#[test]
fn ticket_list_json_is_the_spec_shape_without_notifications() {
    let sb = with_developers();
    sb.ticket("bob", "high", "one");
    let list = sb
        .run(["ticket", "list", "--format", "json"])
        .success()
        .json();
    let tickets = list.as_array().expect("an array");
    assert_eq!(tickets.len(), 1);
    let ticket = tickets[0].as_object().expect("an object");
    let mut keys: Vec<&str> = ticket.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "assignee",
            "created_at",
            "created_by",
            "description",
            "id",
            "priority",
            "purpose",
            "status"
        ]
    );
    assert_eq!(ticket["assignee"], Value::Null);
    assert_eq!(ticket["created_by"], "bob");
    assert_rfc3339_utc(&ticket["created_at"]);
}

#[test]
fn an_id_may_be_written_with_a_hash_wherever_one_is_taken() {
    let sb = with_developers();
    sb.ticket("bob", "high", "one");
    let shown = sb
        .run(["ticket", "show", "#1", "--format", "json"])
        .success()
        .json();
    assert_eq!(shown["id"], 1);
    sb.run(["ticket", "update", "#1", "--by", "dev", "--status", "done"])
        .success();
    sb.run(["ticket", "comment", "#1", "--by", "dev", "--body", "fixed"])
        .success();
    let email = sb.sql_i64("SELECT min(id) FROM notifications WHERE channel = 'email'");
    let shown = sb
        .run(["notify", "show", &format!("#{email}"), "--format", "json"])
        .success()
        .json();
    assert_eq!(shown["id"], email);
    // Only failed email is retried: the refusal shows the ID was understood.
    sb.run(["notify", "retry", &format!("#{email}")])
        .code(1)
        .stderr_has(&format!("notification {email} is pending"));
    let app = sb.sql_i64(
        "SELECT min(n.id) FROM notifications n JOIN users u ON u.id = n.user_id
          WHERE n.channel = 'app' AND u.username = 'dev'",
    );
    let read = sb
        .run([
            "inbox",
            "read",
            "--user",
            "dev",
            &format!("#{app}"),
            "--format",
            "json",
        ])
        .success()
        .json();
    assert_eq!(read["marked"], 1);
}

#[test]
fn anything_else_as_an_id_is_wrong_usage() {
    let sb = with_developers();
    sb.ticket("bob", "high", "one");
    for args in [
        vec!["ticket", "show", "one"],
        vec!["ticket", "show", "##1"],
        vec!["notify", "show", "#x"],
        vec!["notify", "retry", "1.5"],
        vec!["inbox", "read", "--user", "dev", "1x"],
    ] {
        let value = args.last().unwrap();
        let run = sb.run(&args).code(2);
        let first = run.stderr.lines().next().unwrap_or_default();
        assert!(
            first.ends_with(&format!(
                "`{value}` is not an ID: write a number such as 12 or #12"
            )),
            "{args:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_description_read_from_a_terminal_is_prompted_for_on_stderr() {
    let sb = with_developers();
    let args = [
        "ticket",
        "create",
        "--created-by",
        "bob",
        "--purpose",
        "app",
        "--priority",
        "high",
        "--description",
        "-",
    ];
    // On a terminal (here ended at once with Ctrl-D, so the text is blank).
    let run = crate::tables::on_terminal(&sb, 80, &args, &[]).code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "reading the description from standard input; end with Ctrl-D",
            "error: the description is blank"
        ],
        "{}",
        run.stdout
    );
    // From a pipe: no prompt.
    let piped = create_stdin(&sb, b"Printer on fire\n").success();
    assert!(!piped.stderr.contains("reading the"), "{}", piped.stderr);
}
