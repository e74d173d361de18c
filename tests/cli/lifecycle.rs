//! Ticket updates and comments: who hears about them, what they say, and
//! how they show up in `ticket show` and in email.

use serde_json::Value;

use crate::support::*;

/// dev and dev2 are developers (BASE_CONFIG's admins), boss is a manager,
/// carol is a plain user who opens the ticket.
fn team() -> Sandbox {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.manager("boss", "boss@example.org");
    sb.user("carol", "carol@example.org");
    sb
}

/// (user, channel) pairs of an event's notifications, sorted.
fn recipients(result: &Value) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = result["notifications"]
        .as_array()
        .expect("notifications array")
        .iter()
        .map(|n| {
            (
                n["user"].as_str().unwrap().to_string(),
                n["channel"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(u, c)| (u.to_string(), c.to_string()))
        .collect();
    v.sort();
    v
}

fn inbox(sb: &Sandbox, user: &str) -> Value {
    sb.run(["inbox", "--user", user, "--format", "json"])
        .success()
        .json()
}

#[test]
fn update_notifies_creator_developers_and_managers_but_not_the_actor() {
    let sb = team();
    sb.ticket("carol", "high", "Printer on fire");
    let result = sb
        .run([
            "ticket",
            "update",
            "1",
            "--by",
            "dev",
            "--status",
            "in-progress",
            "--format",
            "json",
        ])
        .success()
        .json();
    assert_eq!(result["status"], "in_progress");
    assert_eq!(
        recipients(&result),
        pairs(&[
            ("carol", "app"),
            ("carol", "email"),
            ("dev2", "app"),
            ("dev2", "email"),
            ("boss", "app")
        ])
    );
    let carol = inbox(&sb, "carol");
    assert_eq!(
        carol["notifications"][0]["title"],
        "Help desk ticket #1 has been updated"
    );
    assert_eq!(
        carol["notifications"][0]["body"],
        "Status: Ready → In Progress"
    );
    assert_eq!(
        carol["notifications"][0]["url"],
        "/help_desk/page/1/detail/"
    );
    // The actor's inbox holds only the NEW ticket's notification.
    assert_eq!(
        inbox(&sb, "dev")["notifications"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn a_creator_who_is_a_developer_gets_one_of_each() {
    let sb = team();
    sb.ticket("dev", "low", "Slow page");
    let result = sb
        .run([
            "ticket", "comment", "1", "--by", "boss", "--body", "Looking", "--format", "json",
        ])
        .success()
        .json();
    assert_eq!(
        recipients(&result),
        pairs(&[
            ("dev", "app"),
            ("dev", "email"),
            ("dev2", "app"),
            ("dev2", "email")
        ])
    );
}

#[test]
fn inactive_users_hear_nothing() {
    let sb = team();
    sb.ticket("carol", "medium", "Broken link");
    sb.run(["user", "deactivate", "boss"]).success();
    sb.run(["user", "deactivate", "carol"]).success();
    let result = sb
        .run([
            "ticket",
            "update",
            "1",
            "--by",
            "dev",
            "--priority",
            "low",
            "--format",
            "json",
        ])
        .success()
        .json();
    assert_eq!(
        recipients(&result),
        pairs(&[("dev2", "app"), ("dev2", "email")])
    );
}

#[test]
fn update_body_lists_every_change() {
    let sb = team();
    sb.ticket("carol", "urgent", "Database down");
    sb.run([
        "ticket",
        "update",
        "1",
        "--by",
        "dev",
        "--status",
        "done",
        "--priority",
        "low",
    ])
    .success();
    let carol = inbox(&sb, "carol");
    assert_eq!(
        carol["notifications"][0]["body"],
        "Status: Ready → Done, Priority: Urgent → Low"
    );
    assert_eq!(
        carol["notifications"][0]["priority"], "low",
        "the notification follows the new priority"
    );
}

#[test]
fn an_update_that_changes_nothing_is_refused_and_notifies_nobody() {
    let sb = team();
    sb.ticket("carol", "high", "Printer on fire");
    let before = sb.sql_i64("SELECT count(*) FROM notifications");
    sb.run([
        "ticket",
        "update",
        "1",
        "--by",
        "dev",
        "--status",
        "ready",
        "--priority",
        "high",
    ])
    .code(1)
    .stderr_is("error: ticket #1 already has status Ready and priority High: nothing to change");
    assert_eq!(sb.sql_i64("SELECT count(*) FROM notifications"), before);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM events"), 1);
}

#[test]
fn an_update_without_a_change_flag_is_wrong_usage() {
    let sb = team();
    sb.ticket("carol", "high", "Printer on fire");
    let run = sb.run(["ticket", "update", "1", "--by", "dev"]).code(2);
    assert!(
        run.stderr.contains("--status") && run.stderr.contains("--priority"),
        "{}",
        run.stderr
    );
}

#[test]
fn updating_or_commenting_a_missing_ticket_is_an_error() {
    let sb = team();
    sb.run(["ticket", "update", "9", "--by", "dev", "--status", "done"])
        .code(1)
        .stderr_has("error: ticket #9 does not exist");
    sb.run(["ticket", "comment", "9", "--by", "dev", "--body", "hi"])
        .code(1)
        .stderr_has("error: ticket #9 does not exist");
    sb.ticket("carol", "high", "x");
    sb.run(["ticket", "comment", "1", "--by", "nobody", "--body", "hi"])
        .code(1)
        .stderr_has("error: no user named `nobody`");
    assert_eq!(sb.sql_i64("SELECT count(*) FROM events"), 1);
}

#[test]
fn comment_reads_standard_input_and_previews_140_characters() {
    let sb = team();
    sb.ticket("carol", "high", "Printer on fire");
    let long = format!("{}\nsecond line", "x".repeat(200));
    sb.run_stdin(
        ["ticket", "comment", "1", "--by", "dev", "--body", "-"],
        long.as_bytes(),
    )
    .success();
    let carol = inbox(&sb, "carol");
    assert_eq!(
        carol["notifications"][0]["title"],
        "New comment on help desk ticket #1"
    );
    assert_eq!(
        carol["notifications"][0]["body"],
        format!("dev: {}…", "x".repeat(140))
    );
    let shown = sb
        .run(["ticket", "show", "1", "--format", "json"])
        .success()
        .json();
    assert_eq!(shown["comments"][0]["body"], long.as_str());
    assert_eq!(shown["comments"][0]["author"], "dev");
}

#[test]
fn a_blank_comment_is_refused() {
    let sb = team();
    sb.ticket("carol", "high", "Printer on fire");
    sb.run(["ticket", "comment", "1", "--by", "dev", "--body", " \n "])
        .code(1)
        .stderr_is("error: the comment is blank");
    assert_eq!(sb.sql_i64("SELECT count(*) FROM events"), 1);
}

#[test]
fn show_lists_comments_and_history_oldest_first() {
    let sb = team();
    sb.ticket("carol", "high", "Printer on fire");
    sb.run(["ticket", "update", "1", "--by", "dev", "--status", "prog"])
        .success();
    sb.run(["ticket", "comment", "1", "--by", "dev", "--body", "On it"])
        .success();
    sb.run([
        "ticket", "comment", "1", "--by", "carol", "--body", "Thanks",
    ])
    .success();
    sb.run(["ticket", "update", "1", "--by", "dev", "--status", "done"])
        .success();
    let shown = sb
        .run(["ticket", "show", "1", "--format", "json"])
        .success()
        .json();
    assert_eq!(shown["status"], "done");
    let history: Vec<(String, String)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap().to_string(),
                h["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [("created", "carol"), ("updated", "dev"), ("updated", "dev")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(
        shown["history"][1]["changes"][0],
        serde_json::json!({"field": "Status", "from": "Ready", "to": "In Progress"})
    );
    assert_eq!(shown["history"][2]["changes"][0]["to"], "Done");
    let comments: Vec<&str> = shown["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(comments, ["On it", "Thanks"]);
    assert!(shown["history"][0]["at"].as_str().unwrap().ends_with('Z'));
    let text = sb.run(["ticket", "show", "1"]).success().stdout;
    let on_it = text.find("On it").expect("comment shown");
    let thanks = text.find("Thanks").expect("comment shown");
    assert!(on_it < thanks, "{text}");
}

#[test]
fn comment_and_update_emails_are_delivered_with_escaped_content() {
    let sb = team();
    sb.ticket("carol", "high", "Printer <on> fire");
    sb.run(["notify", "flush"]).success();
    let before = sb.smtp.received().len();
    sb.run([
        "ticket",
        "comment",
        "1",
        "--by",
        "dev",
        "--body",
        "<b>bold</b>\nline two",
    ])
    .success();
    sb.run(["notify", "flush"]).success().stdout_is_empty();
    let mail = sb.smtp.received();
    let new: Vec<_> = mail[before..].to_vec();
    let mut to: Vec<String> = new.iter().flat_map(|m| m.rcpt_to.clone()).collect();
    to.sort();
    assert_eq!(to, ["carol@example.org", "dev2@example.org"]);
    for m in &new {
        assert_eq!(m.subject(), "New comment on help desk ticket #1");
        assert_eq!(m.header("X-Helpdesk-Ticket").as_deref(), Some("1"));
        let html = m.html_part();
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;<br>"), "{html}");
        assert!(!html.contains("<b>bold"), "{html}");
        assert!(
            html.contains("https://example.com/help_desk/page/1/detail/"),
            "{html}"
        );
        assert!(m.text_part().contains("<b>bold</b>\nline two"));
    }

    let before = sb.smtp.received().len();
    sb.run(["ticket", "update", "1", "--by", "dev", "--status", "done"])
        .success();
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.received();
    let update = &mail[before];
    assert_eq!(update.subject(), "Help desk ticket #1 has been updated");
    let text = update.text_part();
    assert!(text.contains("Status: Ready → Done"), "{text}");
    assert!(
        text.contains("Priority:  High") && text.contains("Purpose:   App"),
        "{text}"
    );
    assert!(text.contains("Printer <on> fire"), "{text}");
    assert!(update.html_part().contains("Printer &lt;on&gt; fire"));
}

#[test]
fn event_templates_can_be_overridden_file_by_file() {
    let sb = team();
    std::fs::create_dir_all(sb.path("tpl/email")).unwrap();
    std::fs::write(
        sb.path("tpl/email/ticket_comment.txt"),
        "Custom: {{ actor }} said {{ comment }}",
    )
    .unwrap();
    let config = format!("{BASE_CONFIG}\n")
        .replace("[email.smtp]", "templates_dir = \"tpl\"\n\n[email.smtp]");
    sb.write_config(&config);
    sb.ticket("carol", "high", "x");
    sb.run(["ticket", "comment", "1", "--by", "dev", "--body", "<hi>"])
        .success();
    sb.run(["notify", "flush"]).success();
    let comment_mail: Vec<_> = sb
        .smtp
        .received()
        .into_iter()
        .filter(|m| m.subject().starts_with("New comment"))
        .collect();
    assert!(!comment_mail.is_empty());
    assert_eq!(
        comment_mail[0].text_part().trim_end(),
        "Custom: dev said <hi>"
    );
    assert!(
        comment_mail[0].html_part().contains("&lt;hi&gt;"),
        "the HTML part keeps the built-in template"
    );
}

#[test]
fn the_demo_prints_commands_that_paste_with_real_line_breaks() {
    let sb = Sandbox::new();
    std::fs::remove_file(sb.path("helpdesk.toml")).unwrap();
    let run = sb.run(["demo"]).success();
    assert!(
        !run.stdout.contains("\\n"),
        "a literal \\n:\n{}",
        run.stdout
    );
    let start = run
        .stdout
        .find("$ helpdesk ticket create")
        .expect("the ticket command is shown");
    let shown = &run.stdout[start + "$ helpdesk ".len()..];
    let end = shown
        .find("sign in.'")
        .expect("the quoted description ends")
        + "sign in.'".len();
    let command = &shown[..end];
    assert!(command.contains('\n'), "{command}");
    // Pasted into a shell, it stores the description with its line break.
    let pasted = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec \"$0\" --config helpdesk-demo/helpdesk.toml {command} --format json"
        ))
        .arg(env!("CARGO_BIN_EXE_helpdesk"))
        .current_dir(sb.dir.path())
        .env("HOME", sb.dir.path())
        .output()
        .expect("sh runs");
    assert!(pasted.status.success(), "{pasted:?}");
    let ticket: Value = serde_json::from_slice(&pasted.stdout).expect("JSON");
    assert_eq!(
        ticket["description"],
        "The login page shows an error after the update.\nSteps: open /login, sign in."
    );
}

#[test]
fn a_second_demo_in_the_same_folder_says_so() {
    let sb = Sandbox::new();
    std::fs::remove_file(sb.path("helpdesk.toml")).unwrap();
    let first = sb.run(["demo"]).success();
    assert!(!first.stderr.contains("already holds"), "{}", first.stderr);
    let second = sb.run(["demo"]).success();
    assert_eq!(
        second.stderr.lines().next(),
        Some(
            "demo folder `helpdesk-demo` already holds a demo: adding one more ticket to it \
             (remove the folder to start over)"
        ),
        "{}",
        second.stderr
    );
}
