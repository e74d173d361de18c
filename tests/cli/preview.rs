//! `notify preview` (SPEC §6): an event's email exactly as a flush sends
//! it, from the current templates, without sending or writing anything.

use std::time::Duration;

use crate::support::*;
use crate::threading::INBOUND;

/// The tables a preview must leave as they were, with their row counts.
const TABLES: &[&str] = &[
    "users",
    "tickets",
    "events",
    "notifications",
    "ticket_threads",
];

fn row_counts(sb: &Sandbox) -> Vec<(&'static str, i64)> {
    TABLES
        .iter()
        .map(|table| (*table, sb.sql_i64(&format!("SELECT COUNT(*) FROM {table}"))))
        .collect()
}

/// A message as text with its line ends as `\n`, without its `Date`, and
/// with its MIME boundary (random per build) named `BOUNDARY`.
fn comparable(raw: &str) -> String {
    let text = raw.replace("\r\n", "\n");
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no MIME boundary in\n{text}"))
        .to_string();
    text.lines()
        .filter(|line| !line.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(&boundary, "BOUNDARY")
        .trim_end()
        .to_string()
}

/// A ticket by dana, commented on by dev: dana's email about the comment.
fn commented() -> (Sandbox, String) {
    let sb = Sandbox::with(ServerOptions::default(), &format!("{BASE_CONFIG}{INBOUND}"));
    sb.user("dev", "dev@example.org");
    sb.user("dana", "dana@example.com");
    let id = sb.ticket("dana", "high", "Printer on fire")["id"]
        .as_i64()
        .unwrap()
        .to_string();
    sb.run([
        "ticket",
        "comment",
        &id,
        "--by",
        "dev",
        "--body",
        "Looking into it <now>",
    ])
    .success();
    (sb, id)
}

#[test]
fn the_preview_of_a_comment_is_the_email_the_flush_then_sends() {
    let (sb, id) = commented();
    let before = row_counts(&sb);
    let preview = sb
        .run([
            "notify", "preview", "--event", "comment", "--ticket", &id, "--user", "dana",
        ])
        .success();
    assert_eq!(row_counts(&sb), before, "a preview wrote to the database");
    assert_eq!(
        sb.sql_i64("SELECT COUNT(*) FROM notifications WHERE status = 'pending'"),
        2,
        "the preview sent or claimed nothing (dana's comment email and dev's new-ticket one)"
    );
    assert!(sb.smtp.received().is_empty(), "a preview sent mail");
    for needle in [
        "To: dana@example.com\r\n",
        "Subject: New comment on help desk ticket #",
        "Auto-Submitted: auto-generated\r\n",
        &format!("X-Helpdesk-Ticket: {id}\r\n"),
        &format!("Reply-To: Helpdesk <help+{id}@example.org>\r\n"),
        "In-Reply-To: <ticket-",
        "References: <ticket-",
        "Content-Type: multipart/alternative;",
        "You receive this because you opened this ticket.",
    ] {
        assert!(
            preview.stdout.contains(needle),
            "{needle:?} missing:\n{}",
            preview.stdout
        );
    }

    sb.run(["notify", "flush"]).success();
    let mail = sb.smtp.wait_for(2, Duration::from_secs(10));
    let sent = mail
        .iter()
        .find(|m| m.subject().starts_with("New comment"))
        .expect("the comment's email was sent");
    // The same Message-ID (minted when the comment was queued), thread and text.
    assert_eq!(comparable(&preview.stdout), comparable(&sent.data));
    let text = sb
        .run([
            "notify", "preview", "--event", "comment", "--ticket", &id, "--user", "dana", "--text",
        ])
        .success();
    assert_eq!(text.stdout.trim_end(), sent.text_part().trim_end());
    let html = sb
        .run([
            "notify", "preview", "--event", "comment", "--ticket", &id, "--user", "dana", "--html",
        ])
        .success();
    assert_eq!(html.stdout.trim_end(), sent.html_part().trim_end());
}

#[test]
fn text_prints_only_the_decoded_text_part() {
    let (sb, id) = commented();
    let run = sb
        .run([
            "notify", "preview", "--event", "comment", "--ticket", &id, "--user", "dana", "--text",
        ])
        .success();
    assert_eq!(
        run.stdout,
        format!(
            "New comment on help desk ticket #{id}\n\n\
             dev wrote on ticket #{id} (High, App, Ready):\n\n\
             Looking into it <now>\n\n\
             View the ticket: https://example.com/help_desk/page/{id}/detail/\n\n\
             --\n\
             You receive this because you opened this ticket.\n\
             Reply to this email to add a comment to the ticket.\n"
        )
    );
    assert_eq!(
        run.stderr,
        format!("note: the comment event #2 of ticket #{id}\n")
    );
    // The HTML part, decoded (no quoted-printable), the comment escaped.
    sb.run([
        "notify", "preview", "--event", "comment", "--ticket", &id, "--html",
    ])
    .success()
    .stdout_has(">Looking into it &lt;now&gt;</blockquote>");
    // For scripts: the parts and the whole message as JSON.
    let json = sb
        .run([
            "notify", "preview", "--event", "comment", "--ticket", &id, "--user", "dana",
            "--format", "json",
        ])
        .success()
        .json();
    // The part itself; printed alone, it gets a line break after its last line.
    assert_eq!(
        json["text"].as_str().map(|text| format!("{text}\n")),
        Some(run.stdout.clone())
    );
    assert_eq!(json["to"], "dana@example.com");
    assert_eq!(
        json["subject"],
        format!("New comment on help desk ticket #{id}")
    );
    let message_id = json["message_id"].as_str().unwrap();
    assert!(
        json["raw"]
            .as_str()
            .unwrap()
            .contains(&format!("Message-ID: {message_id}\r\n")),
        "{json}"
    );
    // Both at once is wrong usage.
    sb.run(["notify", "preview", "--event", "new", "--html", "--text"])
        .code(2);
}

#[test]
fn without_a_ticket_or_a_user_the_sample_shows_every_header() {
    let sb = Sandbox::with(ServerOptions::default(), &format!("{BASE_CONFIG}{INBOUND}"));
    let before = row_counts(&sb);
    for event in ["new", "update", "comment", "assign"] {
        let run = sb.run(["notify", "preview", "--event", event]).success();
        let parsed = mail_parser::MessageParser::default()
            .parse(run.stdout.as_bytes())
            .expect("the preview is a mail message");
        assert_eq!(
            parsed.header_raw("X-Helpdesk-Ticket").map(str::trim),
            Some("42")
        );
        assert!(
            parsed
                .message_id()
                .is_some_and(|id| id.ends_with("@example.com")),
            "{}",
            run.stdout
        );
        assert!(parsed.header_raw("In-Reply-To").is_some(), "{event}");
        assert!(parsed.header_raw("Reply-To").is_some(), "{event}");
        assert_eq!(parsed.text_bodies().count(), 1, "{event}");
        assert_eq!(parsed.html_bodies().count(), 1, "{event}");
        assert_eq!(
            run.stderr,
            "note: a sample ticket (#42); pass --ticket N for a real one\n\
             note: a sample recipient (recipient@example.org); pass --user U for a real one\n"
        );
    }
    let new = sb.run(["notify", "preview", "--event", "new"]).success();
    new.stdout_has("Subject: [#42] A new help desk ticket has been created\r\n")
        .stdout_has("To: recipient@example.org\r\n")
        .stdout_has("You receive this because you are on the help desk team (admins).");
    assert_eq!(row_counts(&sb), before, "a preview wrote to the database");
}

#[test]
fn without_inbound_mail_there_is_no_reply_to_and_the_footer_says_so() {
    let sb = Sandbox::new();
    let run = sb.run(["notify", "preview", "--event", "update"]).success();
    assert!(!run.stdout.contains("\r\nReply-To:"), "{}", run.stdout);
    run.stdout_has("\r\nIn-Reply-To: <ticket-42.");
    sb.run(["notify", "preview", "--event", "update", "--text"])
        .success()
        .stdout_has("This message was sent automatically; replies are not read.");
}

#[test]
fn a_ticket_without_that_event_is_shown_as_it_stands() {
    let (sb, id) = commented();
    let before = row_counts(&sb);
    sb.run([
        "notify", "preview", "--event", "update", "--ticket", &id, "--user", "dev", "--text",
    ])
    .success()
    .stdout_has(&format!("Help desk ticket #{id} has been updated"))
    .stdout_has("Printer on fire")
    // dev commented, so watches the ticket: the reason they would get it now.
    .stdout_has("You receive this because you watch it.")
    .stderr_is(&format!(
        "note: ticket #{id} has no update event: the ticket as it stands, by its creator\n\
         note: `dev` gets no email for this event yet; the footer gives the reason they would get it now"
    ));
    // The commenter gets no email about their own comment: the default words.
    sb.run([
        "notify", "preview", "--event", "comment", "--ticket", &id, "--user", "dev", "--text",
    ])
    .success()
    .stdout_has("You receive this because of your help desk notification settings.")
    .stderr_has("`dev` would get no email for this event; the footer gives the default reason");
    assert_eq!(row_counts(&sb), before, "a preview wrote to the database");
}

#[test]
fn a_templates_dir_override_shows_up_and_its_errors_name_the_file_and_line() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path("templates/email")).unwrap();
    let file = sb.path("templates/email/ticket_new.txt");
    std::fs::write(
        &file,
        "Custom: {{ title }} for #{{ ticket.id }} ({{ reason }})\n",
    )
    .unwrap();
    sb.write_config(&format!("templates_dir = \"templates\"\n{BASE_CONFIG}"));
    let custom = sb
        .run(["notify", "preview", "--event", "new", "--text"])
        .success();
    assert_eq!(
        custom.stdout,
        "Custom: A new help desk ticket has been created for #42 (you are on the help desk team (admins))\n"
    );
    // The HTML part is still the built-in one.
    sb.run(["notify", "preview", "--event", "new", "--html"])
        .success()
        .stdout_has("<!DOCTYPE html>");

    std::fs::write(&file, "Ticket #{{ ticket.id }}\n\n{{ x }\n").unwrap();
    let shown = sb
        .path("templates")
        .canonicalize()
        .unwrap()
        .join("email/ticket_new.txt");
    let expected = format!(
        "error: template `{}` line 3: syntax error: unexpected `}}`, expected end of variable block",
        shown.display()
    );
    sb.run(["config", "check"]).code(1).stderr_is(&expected);
    sb.run(["notify", "preview", "--event", "new"])
        .code(1)
        .stdout_is_empty()
        .stderr_is(&expected);

    // A value the template names but no email has compiles (`config check`
    // passes) and fails as it renders: the preview names the file and line.
    std::fs::write(&file, "Ticket #{{ ticket.id }}\n{{ tpyo }}\n").unwrap();
    sb.run(["config", "check"]).success();
    sb.run(["notify", "preview", "--event", "new", "--text"])
        .code(1)
        .stdout_is_empty()
        .stderr_is(&format!(
            "error: could not render template `{}` line 2: undefined value",
            shown.display()
        ));
}

#[test]
fn an_unknown_ticket_or_user_is_an_error_a_deactivated_user_is_not() {
    let (sb, id) = commented();
    let before = row_counts(&sb);
    sb.run(["notify", "preview", "--event", "comment", "--ticket", "99"])
        .code(1)
        .stdout_is_empty()
        .stderr_is(
            "error: ticket #99 does not exist\n\
             hint: list tickets with `helpdesk ticket list`",
        );
    sb.run([
        "notify", "preview", "--event", "comment", "--ticket", &id, "--user", "zed",
    ])
    .code(1)
    .stdout_is_empty()
    .stderr_is(
        "error: no user named `zed`\n\
         hint: list users with `helpdesk user list`, or add one with `helpdesk user add zed --email …`",
    );
    sb.run(["notify", "preview", "--event", "reopen"]).code(2);
    assert_eq!(
        row_counts(&sb),
        before,
        "a failed preview wrote to the database"
    );
    // A deactivated user's email can be previewed, with a word about it.
    sb.run(["user", "deactivate", "dana"]).success();
    let before = row_counts(&sb);
    sb.run([
        "notify", "preview", "--event", "comment", "--ticket", &id, "--user", "dana",
    ])
    .success()
    .stdout_has("To: dana@example.com\r\n")
    .stderr_has("note: `dana` is deactivated: no email goes to them\n");
    assert_eq!(row_counts(&sb), before, "a preview wrote to the database");
}
