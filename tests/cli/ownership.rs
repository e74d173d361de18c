//! SPEC §7: assignment, watchers, who hears about updates and comments,
//! mentions, preferences, digests, the reason in every email and `notify why`.
//! Every test drives the binary; none reads SQLite-only SQL.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// dev and dev2 are developers (in `admins`), boss a manager through group
/// `ops`, rita opens tickets, bob and cat are neither.
fn desk() -> Sandbox {
    let sb = Sandbox::new();
    sb.run([
        "user",
        "add",
        "dev",
        "--email",
        "dev@example.org",
        "--name",
        "Dev One",
    ])
    .success();
    sb.user("dev2", "dev2@example.org");
    sb.run([
        "user",
        "add",
        "rita",
        "--email",
        "rita@example.org",
        "--name",
        "Rita Reporter",
    ])
    .success();
    sb.run([
        "user",
        "add",
        "bob",
        "--email",
        "bob@example.org",
        "--name",
        "Bob Builder",
    ])
    .success();
    sb.user("cat", "cat@example.org");
    sb.user("boss", "boss@example.org");
    sb.run(["group", "add", "ops", "--perm", "delete_helpdeskticket"])
        .success();
    sb.run(["group", "add-user", "ops", "boss"]).success();
    sb
}

/// (user, channel) of an event's notifications, sorted.
fn told(event: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = event["notifications"]
        .as_array()
        .unwrap_or_else(|| panic!("no notifications in {event}"))
        .iter()
        .map(|n| {
            (
                n["user"].as_str().unwrap().to_string(),
                n["channel"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .iter()
        .map(|(u, c)| (u.to_string(), c.to_string()))
        .collect();
    out.sort();
    out
}

fn json(sb: &Sandbox, args: &[&str]) -> Value {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--format", "json"]);
    sb.run(all).success().json()
}

fn notification_count(sb: &Sandbox) -> i64 {
    sb.sql_i64("SELECT count(*) FROM notifications")
}

/// The ID of the notification of `user` on `channel` in an event's JSON.
fn id_of(event: &Value, user: &str, channel: &str) -> i64 {
    event["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["user"] == user && n["channel"] == channel)
        .unwrap_or_else(|| panic!("no {channel} notification for {user} in {event}"))["id"]
        .as_i64()
        .unwrap()
}

// ---- assignment ----------------------------------------------------------------------------

#[test]
fn assignment_tells_the_new_assignee_by_both_channels_the_previous_in_app_and_not_the_actor() {
    let sb = desk();
    sb.ticket("rita", "high", "printer on fire");
    let first = json(
        &sb,
        &["ticket", "assign", "1", "--to", "bob", "--by", "dev"],
    );
    assert_eq!(first["assignee"], "bob");
    assert_eq!(told(&first), pairs(&[("bob", "app"), ("bob", "email")]));
    let inbox = json(&sb, &["inbox", "--user", "bob"]);
    let newest = &inbox["notifications"][0];
    assert_eq!(
        newest["title"],
        "Help desk ticket #1 was assigned to Bob Builder"
    );
    assert_eq!(newest["body"], "Assignee: nobody → Bob Builder (by dev)");
    // bob now watches nothing: reassigning tells cat (both) and bob (in-app), never dev.
    let second = json(
        &sb,
        &["ticket", "assign", "1", "--to", "cat", "--by", "dev"],
    );
    assert_eq!(second["assignee"], "cat");
    assert_eq!(
        told(&second),
        pairs(&[("bob", "app"), ("cat", "app"), ("cat", "email")])
    );
    let none = json(&sb, &["ticket", "assign", "1", "--none", "--by", "cat"]);
    assert!(none["assignee"].is_null(), "{none}");
    // cat acted, so only the previous assignee would hear, and that is cat.
    assert_eq!(told(&none), vec![]);
    let show = json(&sb, &["ticket", "show", "1"]);
    let history: Vec<&str> = show["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["created", "assigned", "assigned", "assigned"]);
    assert_eq!(show["history"][1]["changes"][0]["to"], "Bob Builder");
}

#[test]
fn assigning_the_current_assignee_again_is_refused_and_notifies_nobody() {
    let sb = desk();
    sb.ticket("rita", "low", "slow");
    sb.run(["ticket", "assign", "1", "--to", "bob", "--by", "dev"])
        .success();
    let before = notification_count(&sb);
    sb.run(["ticket", "assign", "#1", "--to", "bob", "--by", "dev"])
        .code(1)
        .stderr_is("error: ticket #1 is already assigned to `bob`: nothing to change");
    assert_eq!(notification_count(&sb), before);
    sb.run(["ticket", "assign", "1", "--none", "--by", "dev"])
        .success();
    let before = notification_count(&sb);
    sb.run(["ticket", "assign", "1", "--none", "--by", "dev"])
        .code(1)
        .stderr_is("error: ticket #1 is not assigned to anyone: nothing to change");
    assert_eq!(notification_count(&sb), before);
}

#[test]
fn only_an_active_existing_user_is_assigned_to_an_existing_ticket() {
    let sb = desk();
    sb.ticket("rita", "low", "slow");
    sb.run(["user", "deactivate", "cat"]).success();
    let before = notification_count(&sb);
    sb.run(["ticket", "assign", "1", "--to", "cat", "--by", "dev"])
        .code(1)
        .stderr_is(
            "error: cannot assign ticket #1 to `cat`: the user is deactivated\n\
             hint: only an active user can be assigned; activate them with `helpdesk user activate cat`",
        );
    sb.run(["ticket", "assign", "1", "--to", "zed", "--by", "dev"])
        .code(1)
        .stderr_is(
            "error: no user named `zed`\n\
             hint: list users with `helpdesk user list`, or add one with `helpdesk user add zed --email …`",
        );
    sb.run(["ticket", "assign", "9", "--to", "bob", "--by", "dev"])
        .code(1)
        .stderr_is(
            "error: ticket #9 does not exist\nhint: list tickets with `helpdesk ticket list`",
        );
    sb.run(["ticket", "assign", "1", "--by", "dev"])
        .code(2)
        .stderr_has("<--to <USER>|--none>");
    sb.run([
        "ticket", "assign", "1", "--to", "bob", "--none", "--by", "dev",
    ])
    .code(2);
    assert_eq!(notification_count(&sb), before);
    assert!(json(&sb, &["ticket", "show", "1"])["assignee"].is_null());
}

#[test]
fn ticket_list_filters_by_assignee_and_shows_it() {
    let sb = desk();
    sb.ticket("rita", "low", "one");
    sb.ticket("rita", "low", "two");
    sb.ticket("rita", "low", "three");
    sb.run(["ticket", "assign", "2", "--to", "bob", "--by", "dev"])
        .success();
    let ids = |args: &[&str]| -> Vec<i64> {
        let mut all = vec!["ticket", "list"];
        all.extend(args);
        json(&sb, &all)
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&["--assignee", "bob"]), [2]);
    assert_eq!(ids(&["--assignee", "none"]), [3, 1]);
    assert_eq!(ids(&["--assignee", "cat"]), Vec::<i64>::new());
    let all = json(&sb, &["ticket", "list"]);
    assert_eq!(all[1]["assignee"], "bob");
    assert!(all[0]["assignee"].is_null());
    let table = sb.run(["ticket", "list"]).success();
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("#2") && l.contains("bob")),
        "{}",
        table.stdout
    );
    sb.run(["ticket", "list", "--assignee", "zed"])
        .code(1)
        .stderr_has("error: no user named `zed`");
}

// ---- watchers ------------------------------------------------------------------------------

#[test]
fn watching_and_unwatching_say_what_they_did() {
    let sb = desk();
    sb.ticket("rita", "low", "watch me");
    let watched = json(&sb, &["ticket", "watch", "1", "--user", "cat"]);
    assert_eq!(watched["notifications"], serde_json::json!([]));
    sb.run(["ticket", "watch", "1", "--user", "cat"])
        .success()
        .stdout_has("`cat` already watches ticket #1: nothing changed");
    let show = json(&sb, &["ticket", "show", "1"]);
    assert_eq!(show["watchers"], serde_json::json!(["cat"]));
    sb.run(["ticket", "show", "1"])
        .success()
        .stdout_has("watchers:    cat");
    sb.run(["ticket", "unwatch", "1", "--user", "bob"])
        .code(1)
        .stderr_is("error: `bob` does not watch ticket #1: nothing to change");
    sb.run(["ticket", "unwatch", "1", "--user", "cat"])
        .success()
        .stdout_has("`cat` no longer watches ticket #1");
    assert_eq!(
        json(&sb, &["ticket", "show", "1"])["watchers"],
        serde_json::json!([])
    );
    sb.run(["ticket", "watch", "1", "--user", "zed"])
        .code(1)
        .stderr_has("error: no user named `zed`");
    sb.run(["ticket", "watch", "7", "--user", "cat"])
        .code(1)
        .stderr_has("error: ticket #7 does not exist");
}

#[test]
fn a_commenter_becomes_a_watcher_and_hears_about_later_changes() {
    let sb = desk();
    sb.ticket("rita", "low", "comment me");
    sb.run(["ticket", "comment", "1", "--by", "cat", "--body", "me too"])
        .success();
    assert_eq!(
        json(&sb, &["ticket", "show", "1"])["watchers"],
        serde_json::json!(["cat"])
    );
    let update = json(
        &sb,
        &["ticket", "update", "1", "--by", "dev", "--status", "prog"],
    );
    let got = told(&update);
    assert!(got.contains(&("cat".into(), "app".into())), "{got:?}");
    assert!(got.contains(&("cat".into(), "email".into())), "{got:?}");
}

// ---- who hears what ------------------------------------------------------------------------

#[test]
fn updates_reach_creator_watchers_managers_and_developers_while_unassigned_never_the_actor() {
    let sb = desk();
    sb.ticket("rita", "low", "who hears");
    sb.run(["ticket", "watch", "1", "--user", "cat"]).success();
    let update = json(
        &sb,
        &["ticket", "update", "1", "--by", "dev", "--priority", "high"],
    );
    assert_eq!(
        told(&update),
        pairs(&[
            ("rita", "app"),
            ("rita", "email"),
            ("cat", "app"),
            ("cat", "email"),
            ("dev2", "app"),
            ("dev2", "email"),
            ("boss", "app"),
        ])
    );
    sb.run(["ticket", "assign", "1", "--to", "bob", "--by", "dev"])
        .success();
    // Assigned: the developers stop hearing; the assignee hears.
    let comment = json(
        &sb,
        &[
            "ticket",
            "comment",
            "1",
            "--by",
            "rita",
            "--body",
            "any news?",
        ],
    );
    assert_eq!(
        told(&comment),
        pairs(&[
            ("bob", "app"),
            ("bob", "email"),
            ("cat", "app"),
            ("cat", "email"),
            ("boss", "app"),
        ])
    );
}

#[test]
fn someone_in_several_audiences_hears_once_per_channel() {
    let sb = desk();
    // dev opens the ticket, is a developer, a manager and a watcher, and is assigned.
    sb.run(["group", "add-user", "ops", "dev"]).success();
    sb.ticket("dev", "low", "all of them");
    sb.run(["ticket", "watch", "1", "--user", "dev"]).success();
    sb.run(["ticket", "assign", "1", "--to", "dev", "--by", "boss"])
        .success();
    let comment = json(
        &sb,
        &[
            "ticket",
            "comment",
            "1",
            "--by",
            "cat",
            "--body",
            "ping @dev",
        ],
    );
    let dev: Vec<_> = told(&comment)
        .into_iter()
        .filter(|(u, _)| u == "dev")
        .collect();
    assert_eq!(dev, pairs(&[("dev", "app"), ("dev", "email")]));
}

#[test]
fn a_new_ticket_still_reaches_developers_and_managers_only() {
    let sb = desk();
    let ticket = sb.ticket("rita", "low", "new rules");
    assert_eq!(
        told(&ticket),
        pairs(&[
            ("dev", "app"),
            ("dev", "email"),
            ("dev2", "app"),
            ("dev2", "email"),
            ("boss", "app"),
        ])
    );
}

// ---- mentions ------------------------------------------------------------------------------

#[test]
fn a_mention_notifies_that_active_user_for_that_comment_only() {
    let sb = desk();
    // A user whose name is a domain must not be "mentioned" by an address.
    sb.user("example.org", "domain@example.org");
    sb.user("gone", "gone@example.org");
    sb.run(["user", "deactivate", "gone"]).success();
    sb.ticket("rita", "low", "mentions");
    sb.run(["ticket", "assign", "1", "--to", "bob", "--by", "dev"])
        .success();
    let comment = json(
        &sb,
        &[
            "ticket",
            "comment",
            "1",
            "--by",
            "rita",
            "--body",
            "@cat, see rita@example.org; @nobody and @gone too",
        ],
    );
    assert_eq!(
        told(&comment),
        pairs(&[
            ("bob", "app"),
            ("bob", "email"),
            ("cat", "app"),
            ("cat", "email"),
            ("boss", "app"),
        ])
    );
    let show = json(&sb, &["ticket", "show", "1"]);
    assert_eq!(
        show["comments"][0]["body"],
        "@cat, see rita@example.org; @nobody and @gone too"
    );
    // The mention was for that comment: cat does not watch.
    assert_eq!(show["watchers"], serde_json::json!(["rita"]));
    let next = json(
        &sb,
        &["ticket", "comment", "1", "--by", "rita", "--body", "again"],
    );
    assert!(!told(&next).iter().any(|(u, _)| u == "cat"), "{next}");
}

// ---- preferences ---------------------------------------------------------------------------

#[test]
fn prefs_show_the_defaults_and_set_one_event_or_all() {
    let sb = desk();
    let shown = json(&sb, &["user", "prefs", "cat"]);
    let row = |event: &str, email: &str, app: &str| serde_json::json!({"event": event, "email": email, "app": app});
    assert_eq!(
        shown,
        serde_json::json!({"user": "cat", "prefs": [
            row("new", "immediate", "on"),
            row("update", "immediate", "on"),
            row("comment", "immediate", "on"),
            row("assign", "immediate", "on"),
        ]})
    );
    let set = json(
        &sb,
        &[
            "user", "prefs", "cat", "--event", "comment", "--email", "digest",
        ],
    );
    assert_eq!(set["prefs"][2], row("comment", "digest", "on"));
    assert_eq!(set["prefs"][1], row("update", "immediate", "on"));
    let all = json(&sb, &["user", "prefs", "cat", "--app", "off"]);
    assert_eq!(
        all["prefs"],
        serde_json::json!([
            row("new", "immediate", "off"),
            row("update", "immediate", "off"),
            row("comment", "digest", "off"),
            row("assign", "immediate", "off"),
        ])
    );
}

#[test]
fn prefs_refuse_an_unknown_event_or_value_listing_the_accepted_ones() {
    let sb = desk();
    sb.run(["user", "prefs", "cat", "--event", "bogus", "--email", "off"])
        .code(2)
        .stderr_is(
            "error: invalid value 'bogus' for '--event <EVENT>'\n  [possible values: new, update, comment, assign]\n\nFor more information, try '--help'.",
        );
    sb.run(["user", "prefs", "cat", "--email", "sometimes"])
        .code(2)
        .stderr_is(
            "error: invalid value 'sometimes' for '--email <EMAIL>'\n  [possible values: immediate, digest, off]\n\nFor more information, try '--help'.",
        );
    sb.run(["user", "prefs", "cat", "--app", "maybe"])
        .code(2)
        .stderr_has("[possible values: on, off]");
    sb.run(["user", "prefs", "zed", "--app", "off"])
        .code(1)
        .stderr_has("error: no user named `zed`");
    assert_eq!(sb.sql_i64("SELECT count(*) FROM preferences"), 0);
}

#[test]
fn off_writes_nothing_on_that_channel_and_digest_holds_the_email() {
    let sb = desk();
    sb.run(["user", "prefs", "dev", "--event", "new", "--email", "off"])
        .success();
    sb.run(["user", "prefs", "dev2", "--event", "new", "--app", "off"])
        .success();
    sb.run(["user", "prefs", "boss", "--app", "off"]).success();
    let ticket = sb.ticket("rita", "low", "prefs");
    assert_eq!(told(&ticket), pairs(&[("dev", "app"), ("dev2", "email")]));
    sb.run([
        "user", "prefs", "rita", "--event", "update", "--email", "digest",
    ])
    .success();
    let update = json(
        &sb,
        &["ticket", "update", "1", "--by", "dev", "--status", "done"],
    );
    let rita = update["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["user"] == "rita" && n["channel"] == "email")
        .unwrap()
        .clone();
    assert_eq!(rita["status"], "held");
    let held = json(&sb, &["notify", "list", "--status", "held"]);
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    assert_eq!(held[0]["user"], "rita");
    // A flush does not send held email.
    sb.run(["notify", "flush"]).success();
    let sent: BTreeSet<String> = sb
        .smtp
        .received()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect();
    assert!(!sent.contains("rita@example.org"), "{sent:?}");
    assert!(!sent.contains("dev@example.org"), "{sent:?}");
    // Preferences apply to assignment too.
    sb.run([
        "user", "prefs", "bob", "--event", "assign", "--email", "off",
    ])
    .success();
    let assign = json(
        &sb,
        &["ticket", "assign", "1", "--to", "bob", "--by", "dev"],
    );
    assert_eq!(told(&assign), pairs(&[("bob", "app")]));
}

// ---- digest --------------------------------------------------------------------------------

#[test]
fn a_digest_gathers_held_email_by_ticket_and_the_next_flush_sends_it() {
    let sb = desk();
    sb.run(["user", "prefs", "cat", "--email", "digest"])
        .success();
    sb.ticket("rita", "low", "first");
    sb.ticket("rita", "low", "second");
    sb.run(["ticket", "watch", "1", "--user", "cat"]).success();
    sb.run(["ticket", "watch", "2", "--user", "cat"]).success();
    sb.run([
        "ticket",
        "comment",
        "2",
        "--by",
        "rita",
        "--body",
        "older on two",
    ])
    .success();
    sb.run(["ticket", "comment", "1", "--by", "rita", "--body", "on one"])
        .success();
    sb.run_env(
        [
            "ticket",
            "comment",
            "2",
            "--by",
            "rita",
            "--body",
            "newest on two",
        ],
        &[("HELPDESK_NOW", "+1m")],
    )
    .success();
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'held'"),
        3
    );
    // Under cron (stdout not a terminal) a digest run prints nothing.
    sb.run(["notify", "digest"])
        .success()
        .stdout_is_empty()
        .stderr_is("");
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'held'"),
        0
    );
    let again = json(&sb, &["notify", "digest"]);
    assert_eq!(again, serde_json::json!({"digests": 0, "updates": 0}));
    sb.run(["notify", "digest", "-v"])
        .success()
        .stdout_has("queued 0 digest emails carrying 0 updates");
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.wait_for(1, Duration::from_secs(5));
    let digests: Vec<_> = mail
        .iter()
        .filter(|m| m.rcpt_to == ["cat@example.org"])
        .collect();
    assert_eq!(digests.len(), 1, "one digest for cat");
    let digest = digests[0];
    assert_eq!(digest.subject(), "Help desk digest: 3 updates on 2 tickets");
    let text = digest.text_part();
    let one = text.find("Ticket #1:").expect("ticket 1 listed");
    let two = text.find("Ticket #2:").expect("ticket 2 listed");
    assert!(
        one < two,
        "the ticket with the newest update comes last:\n{text}"
    );
    let older = text.find("older on two").expect("first update");
    let newest = text.find("newest on two").expect("second update");
    assert!(two < older && older < newest, "{text}");
    assert!(
        text.contains("https://example.com/help_desk/page/2/detail/"),
        "{text}"
    );
    assert!(text.contains("(because you watch it)"), "{text}");
    assert!(
        digest
            .html_part()
            .contains("Help desk digest: 3 updates on 2 tickets")
    );
    // The digest is recorded on the ticket of its newest update, whose page
    // lists its email among the notifications.
    let shown = json(&sb, &["ticket", "show", "2"]);
    let sent_to_cat = shown["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter(|n| n["user"] == "cat" && n["channel"] == "email" && n["status"] == "sent")
        .count();
    assert_eq!(sent_to_cat, 3, "two held updates and the digest: {shown}");
}

/// Adds `count` watchers of ticket 1 who take their email as a digest; returns their names.
fn digest_watchers(sb: &Sandbox, count: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("w{i:03}")).collect();
    for name in &names {
        sb.user(name, &format!("{name}@example.org"));
        sb.run(["user", "prefs", name, "--email", "digest"])
            .success();
        sb.run(["ticket", "watch", "1", "--user", name]).success();
    }
    names
}

#[test]
fn overlapping_digest_runs_put_each_held_email_in_exactly_one_digest() {
    let sb = desk();
    sb.ticket("rita", "low", "busy");
    let watchers = digest_watchers(&sb, 30);
    sb.run(["ticket", "comment", "1", "--by", "rita", "--body", "one"])
        .success();
    sb.run(["ticket", "comment", "1", "--by", "rita", "--body", "two"])
        .success();
    let held = sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'held'");
    assert_eq!(held, 60);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = sb.command();
            cmd.args(["notify", "digest", "--format", "json"]);
            cmd.stdout(std::process::Stdio::piped());
            cmd.spawn().expect("spawn a digest run")
        })
        .collect();
    let mut updates = 0;
    let mut digests = 0;
    for run in runs {
        let out = run.wait_with_output().expect("the run ends");
        assert!(out.status.success());
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        updates += summary["updates"].as_i64().unwrap();
        digests += summary["digests"].as_i64().unwrap();
    }
    assert_eq!((digests, updates), (30, 60));
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM events WHERE kind = 'digest'"),
        30
    );
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.wait_for(30, Duration::from_secs(10));
    let digest_mail: Vec<_> = mail
        .iter()
        .filter(|m| m.subject().starts_with("Help desk digest"))
        .collect();
    assert_eq!(digest_mail.len(), watchers.len());
    for m in digest_mail {
        assert_eq!(m.subject(), "Help desk digest: 2 updates on 1 ticket");
    }
}

/// Starts `notify digest` paused (test builds only) at `point`, waits until
/// it is there, and SIGKILLs it.
fn kill_digest_at(sb: &Sandbox, point: &str) {
    let marker = sb.path("digest-paused");
    let _ = std::fs::remove_file(&marker);
    let mut cmd = sb.command();
    cmd.args(["notify", "digest"])
        .env("HELPDESK_TEST_DIGEST_PAUSE", point);
    let mut child = cmd.spawn().expect("spawn a digest run");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never reached {point}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {point}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SIGKILL: no handler runs; an open transaction is simply gone.
    child.kill().expect("kill the digest run");
    child.wait().expect("reap the digest run");
}

#[test]
fn a_digest_run_killed_midway_loses_and_doubles_nothing() {
    let sb = desk();
    sb.ticket("rita", "low", "killed");
    // More users than one transaction takes (200), so a run has a middle.
    digest_watchers(&sb, 250);
    sb.run(["ticket", "comment", "1", "--by", "rita", "--body", "one"])
        .success();
    sb.run(["ticket", "comment", "1", "--by", "rita", "--body", "two"])
        .success();
    let held = || sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'held'");
    let digests = || sb.sql_i64("SELECT count(*) FROM events WHERE kind = 'digest'");
    assert_eq!(held(), 500);
    // Killed inside its first transaction: nothing taken, nothing queued.
    kill_digest_at(&sb, "in_batch");
    assert_eq!((held(), digests()), (500, 0));
    // Killed after its first transaction: those 200 users are done, the rest held.
    kill_digest_at(&sb, "after_batch");
    assert_eq!((held(), digests()), (100, 200));
    sb.run(["notify", "digest"]).success();
    assert_eq!((held(), digests()), (0, 250));
    let two_each = sb.sql_i64(
        "SELECT count(*) FROM events WHERE kind = 'digest' AND title = 'Help desk digest: 2 updates on 1 ticket'",
    );
    assert_eq!(
        two_each, 250,
        "every digest carries both updates, none split"
    );
    assert_eq!(
        sb.sql_i64(
            "SELECT count(*) FROM notifications WHERE reason = 'digest' AND status = 'pending'"
        ),
        250
    );
}

// ---- the reason in every email, and notify why ---------------------------------------------

#[test]
fn every_email_says_why_its_reader_got_it_and_names_people() {
    let sb = desk();
    sb.ticket("rita", "low", "reasons");
    sb.run(["ticket", "watch", "1", "--user", "cat"]).success();
    sb.run([
        "ticket", "comment", "1", "--by", "boss", "--body", "hi @dev2",
    ])
    .success();
    sb.run(["notify", "flush"]).success();
    sb.run(["ticket", "assign", "1", "--to", "bob", "--by", "boss"])
        .success();
    sb.run(["ticket", "comment", "1", "--by", "cat", "--body", "thanks"])
        .success();
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.received();
    let find = |to: &str, subject: &str| {
        mail.iter()
            .find(|m| m.rcpt_to == [to] && m.subject() == subject)
            .unwrap_or_else(|| panic!("no {subject:?} to {to}"))
            .text_part()
    };
    let new = find(
        "dev@example.org",
        "[#1] A new help desk ticket has been created",
    );
    assert!(new.contains("Opened by: Rita Reporter"), "{new}");
    assert!(new.contains("You receive this because you are on the help desk team (admins)."));
    let comment = "New comment on help desk ticket #1";
    let to_rita = find("rita@example.org", comment);
    assert!(
        to_rita.contains("You receive this because you opened this ticket."),
        "{to_rita}"
    );
    assert!(!to_rita.contains("help desk team"), "{to_rita}");
    assert!(find("cat@example.org", comment).contains("because you watch it."));
    assert!(find("dev2@example.org", comment).contains("because you were mentioned."));
    assert!(
        find("dev@example.org", comment)
            .contains("because you are on the help desk team (admins).")
    );
    let assigned = find(
        "bob@example.org",
        "Help desk ticket #1 was assigned to Bob Builder",
    );
    assert!(
        assigned.contains("because you are assigned to it."),
        "{assigned}"
    );
    let later: Vec<_> = mail
        .iter()
        .filter(|m| m.rcpt_to == ["bob@example.org"] && m.subject() == comment)
        .collect();
    assert_eq!(later.len(), 1);
    assert!(later[0].text_part().contains("cat wrote on ticket #1"));
}

#[test]
fn notify_why_names_the_event_audience_fact_and_preference() {
    let sb = desk();
    let new = sb.ticket("rita", "low", "why");
    sb.run(["ticket", "watch", "1", "--user", "cat"]).success();
    sb.run([
        "user", "prefs", "cat", "--event", "comment", "--email", "digest",
    ])
    .success();
    let comment = json(
        &sb,
        &[
            "ticket", "comment", "1", "--by", "dev", "--body", "ask @bob",
        ],
    );
    let assign = json(
        &sb,
        &["ticket", "assign", "1", "--to", "bob", "--by", "dev2"],
    );
    let why = |id: i64| json(&sb, &["notify", "why", &id.to_string()]);
    let check = |id: i64, audience: &str, reason: &str, detail: &str, preference: &str| {
        let got = why(id);
        assert_eq!(got["audience"], audience, "{got}");
        assert_eq!(got["reason"], reason, "{got}");
        assert!(got["detail"].as_str().unwrap().starts_with(detail), "{got}");
        assert_eq!(got["preference"], preference, "{got}");
    };
    check(
        id_of(&new, "dev", "email"),
        "developers",
        "you are on the help desk team (admins)",
        "developer because `admins` lists their address `dev@example.org`",
        "email immediate for new events (the default)",
    );
    check(
        id_of(&new, "boss", "app"),
        "managers",
        "you manage the help desk",
        "manager (delete_helpdeskticket) through group `ops`",
        "in-app on for new events (the default)",
    );
    check(
        id_of(&comment, "rita", "email"),
        "creator",
        "you opened this ticket",
        "they opened ticket #1",
        "email immediate for comment events (the default)",
    );
    check(
        id_of(&comment, "cat", "email"),
        "watchers",
        "you watch it",
        "watcher of ticket #1 since 20",
        "email digest for comment events (their choice)",
    );
    check(
        id_of(&comment, "bob", "email"),
        "mentioned",
        "you were mentioned",
        "mentioned as `@bob` in the comment",
        "email immediate for comment events (the default)",
    );
    check(
        id_of(&assign, "bob", "email"),
        "assignee",
        "you are assigned to it",
        "ticket #1 was assigned to them at the time",
        "email immediate for assign events (the default)",
    );
    let full = why(id_of(&comment, "cat", "email"));
    assert_eq!(full["event"], "comment");
    assert_eq!(full["status"], "held");
    assert_eq!(full["actor"], "dev");
    let table = sb
        .run([
            "notify",
            "why",
            &id_of(&comment, "dev2", "email").to_string(),
        ])
        .success();
    assert!(
        table
            .stdout
            .contains("because:     you are on the help desk team (admins)"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("and ticket #1 had no assignee"),
        "{}",
        table.stdout
    );
    sb.run(["notify", "why", "999"])
        .code(1)
        .stderr_is(
            "error: notification #999 does not exist\nhint: list notifications with `helpdesk notify list`",
        );
}
