//! `notify flush --dry-run` says what a flush would do now: where each email
//! would go (the debug redirect included, in JSON too), and which would fail
//! unsent because the address is suppressed, by the flush's own rule
//! (`policy::suppressed`).

use serde_json::Value;

use crate::support::*;

fn item<'a>(json: &'a Value, user: &str) -> &'a Value {
    json["would_send"]
        .as_array()
        .expect("would_send is a list")
        .iter()
        .find(|item| item["user"] == user)
        .unwrap_or_else(|| panic!("no email for {user}: {json}"))
}

#[test]
fn a_dry_run_shows_a_suppressed_address_as_the_flush_treats_it() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.ticket("dev", "high", "Look, don't touch");
    sb.sql_exec(
        "INSERT INTO suppressions (address, reason, at) VALUES ('dev2@example.org', '5.1.1 unknown user', 1)",
    );
    let run = sb.run(["notify", "flush", "--dry-run"]).success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["ID", "TO", "TICKET", "SUBJECT", "NOT", "SENT"]
    );
    let dev2 = lines
        .iter()
        .find(|l| l.contains("dev2@example.org"))
        .expect("a row for dev2");
    assert!(dev2.ends_with("suppressed: 5.1.1 unknown user"), "{dev2}");
    assert_eq!(
        lines.last().copied(),
        Some("dry run: 1 would be sent, 1 would fail as suppressed; nothing was changed")
    );
    let json = sb
        .run(["notify", "flush", "--dry-run", "--format", "json"])
        .success()
        .json();
    assert_eq!(
        item(&json, "dev2")["suppressed"],
        "suppressed: 5.1.1 unknown user"
    );
    assert_eq!(item(&json, "dev")["suppressed"], Value::Null);
    assert_eq!(item(&json, "dev")["deliver_to"], "dev@example.org");
    assert_eq!(json["claimed"], 0);
    assert_eq!(sb.smtp.connections(), 0);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM attempts"), 0);
    // The real flush does what the dry run said.
    sb.run(["notify", "flush"]).code(3);
    assert_eq!(
        sb.sql_texts(
            "SELECT to_addr, status, last_error FROM notifications WHERE channel = 'email' ORDER BY to_addr"
        ),
        vec![
            vec![
                Some("dev2@example.org".to_string()),
                Some("failed".to_string()),
                Some("suppressed: 5.1.1 unknown user".to_string())
            ],
            vec![
                Some("dev@example.org".to_string()),
                Some("sent".to_string()),
                None
            ],
        ]
    );
    assert_eq!(sb.smtp.received().len(), 1);
}

#[test]
fn a_dry_run_in_debug_mode_names_the_redirect_in_json_and_its_suppression() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    // Queued before debug mode was turned on: the flush redirects it.
    sb.ticket("dev", "high", "Look, don't touch");
    sb.write_config(&format!(
        "debug = true\ndevelopment_email = \"sink@example.org\"\n{BASE_CONFIG}"
    ));
    let json = sb
        .run(["notify", "flush", "--dry-run", "--format", "json"])
        .success()
        .json();
    for user in ["dev", "dev2"] {
        assert_eq!(item(&json, user)["to"], format!("{user}@example.org"));
        assert_eq!(item(&json, user)["deliver_to"], "sink@example.org");
        assert_eq!(item(&json, user)["suppressed"], Value::Null);
    }
    // The flush asks about the address it would send to: the redirect's.
    sb.sql_exec(
        "INSERT INTO suppressions (address, reason, at) VALUES ('sink@example.org', 'bounced', 1)",
    );
    let run = sb.run(["notify", "flush", "--dry-run"]).success();
    assert_eq!(
        run.stdout.lines().last(),
        Some("dry run: 0 would be sent, 2 would fail as suppressed; nothing was changed")
    );
    assert_eq!(
        run.stdout.matches("sink@example.org").count(),
        2,
        "{}",
        run.stdout
    );
}
