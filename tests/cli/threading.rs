//! Outgoing conversations (SPEC §6): every email about a ticket refers to
//! its thread root, so a mail client groups them; with inbound mail set up,
//! replies go to `help+N@…` and the footer invites them.

use std::collections::BTreeMap;

use crate::support::{BASE_CONFIG, Sandbox, ServerOptions};

pub const INBOUND: &str = r#"
[email.inbound]
address = "help@example.org"
trusted_authserv_id = "mx.example.org"
"#;

/// The References root of a message, as a mail client threads it (the
/// first id of References, else In-Reply-To), read with mail-parser.
fn thread_root(raw: &str) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
    let first = |value: &mail_parser::HeaderValue<'_>| match value {
        mail_parser::HeaderValue::Text(id) => Some(id.to_string()),
        mail_parser::HeaderValue::TextList(ids) => ids.first().map(|id| id.to_string()),
        _ => None,
    };
    first(message.references()).or_else(|| first(message.in_reply_to()))
}

/// Two tickets, each created, commented and updated: their emails form two
/// threads, one per ticket, each root minted once and never sent itself.
#[test]
fn the_emails_about_a_ticket_read_as_one_thread_in_a_mail_client() {
    let sb = Sandbox::with(ServerOptions::default(), &format!("{BASE_CONFIG}{INBOUND}"));
    sb.user("dev", "dev@example.org");
    sb.user("dana", "dana@example.com");
    let first = sb.ticket("dana", "high", "Printer on fire")["id"]
        .as_i64()
        .unwrap();
    let second = sb.ticket("dana", "low", "Mouse squeaks")["id"]
        .as_i64()
        .unwrap();
    for id in [first, second] {
        sb.run([
            "ticket",
            "comment",
            &id.to_string(),
            "--by",
            "dev",
            "--body",
            "Looking",
        ])
        .success();
        sb.run([
            "ticket",
            "update",
            &id.to_string(),
            "--by",
            "dev",
            "--status",
            "done",
        ])
        .success();
    }
    sb.run(["notify", "flush"]).success();
    // Per ticket: new → dev; comment → dana; update → dana.
    let mail = sb.smtp.wait_for(6, std::time::Duration::from_secs(10));
    assert_eq!(mail.len(), 6);
    let mut threads: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut message_ids = Vec::new();
    for m in &mail {
        let root = thread_root(&m.data).unwrap_or_else(|| panic!("no thread root:\n{}", m.data));
        assert_eq!(m.header("In-Reply-To"), Some(format!("<{root}>")));
        assert_eq!(m.header("References"), Some(format!("<{root}>")));
        threads.entry(root).or_default().push(m.subject());
        message_ids.push(m.header("Message-ID").unwrap());
    }
    assert_eq!(threads.len(), 2, "{threads:#?}");
    for (root, subjects) in &threads {
        let ticket: i64 = root
            .strip_prefix("ticket-")
            .and_then(|rest| rest.split('.').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("root `{root}` does not name its ticket"));
        assert!(root.ends_with("@example.com"), "{root}");
        assert!(
            !message_ids.iter().any(|id| id.contains(root.as_str())),
            "the root was sent"
        );
        assert_eq!(
            subjects,
            &vec![
                format!("[#{ticket}] A new help desk ticket has been created"),
                format!("New comment on help desk ticket #{ticket}"),
                format!("Help desk ticket #{ticket} has been updated"),
            ]
        );
        let stored = sb.sql_i64(&format!(
            "SELECT count(*) FROM ticket_threads WHERE ticket_id = {ticket} AND message_id = '<{root}>'"
        ));
        assert_eq!(stored, 1, "root of #{ticket} not stored as sent");
    }
    for m in &mail {
        let ticket = m.header("X-Helpdesk-Ticket").unwrap();
        assert_eq!(
            m.header("Reply-To").as_deref(),
            Some(format!("Helpdesk <help+{ticket}@example.org>").as_str())
        );
        assert!(
            m.text_part()
                .contains("Reply to this email to add a comment to the ticket."),
            "{}",
            m.text_part()
        );
        assert!(!m.text_part().contains("replies are not read"));
    }
}

#[test]
fn without_an_inbound_address_there_is_no_reply_to_and_replies_are_not_read() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.user("dana", "dana@example.com");
    sb.ticket("dana", "high", "Printer on fire");
    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.wait_for(1, std::time::Duration::from_secs(10));
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].header("Reply-To"), None);
    assert!(
        thread_root(&mail[0].data).is_some(),
        "threading does not need inbound mail"
    );
    assert!(mail[0].text_part().contains("replies are not read"));
    assert!(mail[0].html_part().contains("replies are not read"));
}

#[test]
fn config_check_warns_when_inbound_mail_trusts_any_from() {
    let sb = Sandbox::with(
        ServerOptions::default(),
        &format!("{BASE_CONFIG}\n[email.inbound]\naddress = \"help@example.org\"\n"),
    );
    sb.run(["config", "check"]).success().stderr_has(
        "warning: `email.inbound.address` is set without `email.inbound.trusted_authserv_id`",
    );
    sb.write_config(&format!("{BASE_CONFIG}{INBOUND}"));
    let run = sb.run(["config", "check"]).success();
    assert!(
        !run.stderr.contains("trusted_authserv_id"),
        "{}",
        run.stderr
    );
    sb.run(["config", "check"]).success().stdout_has(
        "email.inbound:       help@example.org, new tickets app medium, trusted authserv-id mx.example.org",
    );
    sb.write_config(&format!(
        "{BASE_CONFIG}\n[email.inbound]\nadress = \"help@example.org\"\n"
    ));
    sb.run(["config", "check"]).code(1).stderr_has("adress");
    sb.write_config(&format!(
        "{BASE_CONFIG}\n[email.inbound]\naddress = \"help+1@example.org\"\n"
    ));
    sb.run(["config", "check"]).code(1).stderr_has(
        "`email.inbound.address` `help+1@example.org` already has a `+`: give the plain address, helpdesk adds `+N` for each ticket",
    );
}
