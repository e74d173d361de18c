//! Email delivery: `notify flush` against a real SMTP server on 127.0.0.1 (content,
//! headers, TLS and AUTH, transient and permanent failures, retries, overlapping and
//! killed flushes) and the operator commands around the queue (list, show, retry,
//! purge, test, status).

use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::smtp::{ReceivedMail, Tls, Verdict};
use crate::support::*;

const SUBJECT: &str = "A new help desk ticket has been created";

/// `BASE_CONFIG` with a `[queue]` table.
fn with_queue(queue: &str) -> String {
    format!("{BASE_CONFIG}\n[queue]\n{queue}\n")
}

/// The two developers of `BASE_CONFIG`, with accounts.
fn two_devs(sb: &Sandbox) {
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64
}

/// Every email notification, as `notify list --channel email --format json` gives it.
fn emails(sb: &Sandbox) -> Vec<Value> {
    let list = sb
        .run(["notify", "list", "--channel", "email", "--format", "json"])
        .success()
        .json();
    list.as_array().expect("notify list gives an array").clone()
}

/// One notification, as `notify show ID --format json` gives it.
fn show(sb: &Sandbox, id: i64) -> Value {
    sb.run(["notify", "show", &id.to_string(), "--format", "json"])
        .success()
        .json()
}

/// The ID of the email notification of `user` in a `ticket create` result.
#[track_caller]
fn email_id(ticket: &Value, user: &str) -> i64 {
    let found: Vec<i64> = ticket["notifications"]
        .as_array()
        .expect("a notifications array")
        .iter()
        .filter(|n| n["user"] == user && n["channel"] == "email")
        .map(|n| n["id"].as_i64().expect("a numeric id"))
        .collect();
    assert_eq!(found.len(), 1, "one email for {user} in {ticket}");
    found[0]
}

fn ticket_id(ticket: &Value) -> i64 {
    ticket["id"].as_i64().expect("a numeric ticket id")
}

fn status_counts(sb: &Sandbox, status: &str) -> i64 {
    sb.sql_i64(&format!(
        "SELECT count(*) FROM notifications WHERE channel = 'email' AND status = '{status}'"
    ))
}

fn count_emails(sb: &Sandbox) -> i64 {
    sb.sql_i64("SELECT count(*) FROM notifications WHERE channel = 'email'")
}

/// Non-empty lines.
fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// A Message-ID without its angle brackets and spaces.
fn bare_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

fn message_id_of(mail: &ReceivedMail) -> String {
    bare_id(&mail.header("Message-ID").expect("a Message-ID header"))
}

/// notification ID → Message-ID, read from the database.
fn stored_message_ids(sb: &Sandbox) -> HashMap<i64, String> {
    sb.sql_texts("SELECT CAST(id AS TEXT), message_id FROM notifications WHERE channel = 'email'")
        .into_iter()
        .map(|row| {
            let id = row[0]
                .as_deref()
                .and_then(|id| id.parse().ok())
                .expect("an id");
            (
                id,
                bare_id(row[1].as_deref().expect("every email has a Message-ID")),
            )
        })
        .collect()
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    drop(listener);
    port
}

/// Waits for a spawned binary at most `timeout`; kills it (by its handle) on timeout.
pub fn wait_bounded(mut child: Child, timeout: Duration) -> Run {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a spawned helpdesk did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run::from(child.wait_with_output().expect("collect the output"))
}

/// `HELPDESK_NOW` that puts a run's clock past `at` (milliseconds since the epoch).
fn clock_past(at: i64) -> String {
    format!("+{}s", (at - now_ms()).max(0) / 1000 + 1)
}

// ---- delivery and content ---------------------------------------------------------------

#[test]
fn flush_mails_each_developer_with_full_content() {
    let sb = Sandbox::new();
    two_devs(&sb);
    let ticket = sb.ticket("dev", "high", "Printer on fire");
    let id = ticket_id(&ticket);

    let run = sb.run(["notify", "flush"]).success();
    assert_eq!(run.stdout, "", "flush off a terminal prints nothing");
    assert_eq!(run.stderr, "", "flush that sent everything says nothing");

    let mut mail = sb.smtp.received();
    assert_eq!(mail.len(), 2, "one message per developer");
    mail.sort_by(|a, b| a.rcpt_to.cmp(&b.rcpt_to));
    assert_eq!(mail[0].rcpt_to, ["dev2@example.org"]);
    assert_eq!(mail[1].rcpt_to, ["dev@example.org"]);
    let link = format!("https://example.com/help_desk/page/{id}/detail/");
    for m in &mail {
        assert_eq!(m.mail_from, "helpdesk@example.org");
        let from = m.header("From").expect("a From header");
        assert!(from.contains("helpdesk@example.org"), "From: {from}");
        let to = m.header("To").expect("a To header");
        assert!(to.contains(&m.rcpt_to[0]), "To: {to}");
        assert_eq!(m.subject(), format!("[#{id}] {SUBJECT}"));
        assert!(
            m.content_type().starts_with("multipart/alternative"),
            "Content-Type: {}",
            m.content_type()
        );
        for (kind, part) in [("text", m.text_part()), ("html", m.html_part())] {
            for needle in [
                format!("#{id}"),
                "High".to_string(),
                "App".to_string(),
                "Printer on fire".to_string(),
                link.clone(),
            ] {
                assert!(
                    part.contains(&needle),
                    "{kind} part lacks {needle:?}:\n{part}"
                );
            }
        }
        assert_eq!(
            m.header("Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
        assert_eq!(m.header("X-Helpdesk-Ticket"), Some(id.to_string()));
        assert!(
            m.header("Date").is_some_and(|d| !d.is_empty()),
            "a Date header"
        );
        assert!(!message_id_of(m).is_empty(), "a Message-ID");
    }
    assert_ne!(message_id_of(&mail[0]), message_id_of(&mail[1]));

    let queue = emails(&sb);
    assert_eq!(queue.len(), 2);
    for email in &queue {
        assert_eq!(email["status"], "sent", "{email}");
        assert_eq!(email["attempts"], 1, "{email}");
        assert_eq!(email["ticket_id"], id);
    }
}

#[test]
fn html_part_escapes_the_description_and_keeps_line_breaks() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "low", "<script>alert(1)</script>\nsecond line");
    sb.run(["notify", "flush"]).success();

    let mail = sb.smtp.received();
    assert_eq!(mail.len(), 1);
    let html = mail[0].html_part();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        !html.contains("<script>"),
        "raw <script> in the HTML part:\n{html}"
    );
    let br = html
        .find("&lt;/script&gt;")
        .map(|at| &html[at..])
        .expect("the escaped description");
    let between = &br[..br.find("second line").expect("the second line in the HTML")];
    assert!(
        between.contains("<br"),
        "no <br> between the lines:\n{html}"
    );
    let text = mail[0].text_part();
    assert!(
        text.contains("<script>alert(1)</script>\nsecond line"),
        "text part should carry the raw description:\n{text}"
    );
}

#[test]
fn flush_json_counts_each_outcome() {
    let config = r#"database = "helpdesk.db"
admins = [["Dev One", "dev@example.org"], ["Dev Two", "dev2@example.org"], ["Dev Three", "dev3@example.org"]]
default_from_email = "Helpdesk <helpdesk@example.org>"

[email.smtp]
host = "127.0.0.1"
port = {port}
timeout_secs = 5
"#;
    let options = ServerOptions::default().with_verdict(|env, _| {
        if env.rcpt_to.iter().any(|r| r == "dev2@example.org") {
            Verdict::Reply(550, "5.1.1 no such user".into())
        } else if env.rcpt_to.iter().any(|r| r == "dev3@example.org") {
            Verdict::Reply(451, "4.3.0 try later".into())
        } else {
            Verdict::Accept
        }
    });
    let sb = Sandbox::with(options, config);
    two_devs(&sb);
    sb.user("dev3", "dev3@example.org");
    sb.ticket("dev", "medium", "Three recipients");

    let run = sb.run(["notify", "flush", "--format", "json"]).code(3);
    let json = run.json();
    assert_eq!(
        json,
        serde_json::json!({"sent": 1, "deferred": 1, "failed": 1, "claimed": 3}),
        "{}",
        run.stdout
    );

    // Nothing due now (the deferred one waits its backoff): all zero, exit 0.
    let json = sb
        .run(["notify", "flush", "--format", "json"])
        .success()
        .json();
    assert_eq!(
        json,
        serde_json::json!({"sent": 0, "deferred": 0, "failed": 0, "claimed": 0})
    );
}

#[test]
fn verbose_flush_prints_a_one_line_summary() {
    let sb = Sandbox::new();
    two_devs(&sb);
    sb.ticket("dev", "high", "Summary please");
    let run = sb.run(["notify", "flush", "-v"]).success();
    let out = lines(&run.stdout);
    assert_eq!(out.len(), 1, "one summary line:\n{}", run.stdout);
    let seconds = out[0]
        .strip_prefix("sent 2, deferred 0, failed 0 in ")
        .and_then(|rest| rest.strip_suffix(" s"))
        .unwrap_or_else(|| panic!("unexpected summary {:?}", out[0]));
    let (whole, frac) = seconds.split_once('.').expect("seconds with decimals");
    assert!(
        whole.parse::<u64>().is_ok() && frac.len() == 2 && frac.parse::<u64>().is_ok(),
        "seconds like 0.84: {seconds:?}"
    );
    assert_eq!(sb.smtp.received().len(), 2);
}

#[test]
fn flush_sends_high_then_medium_then_low() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    let low = ticket_id(&sb.ticket("dev", "low", "low one"));
    let high = ticket_id(&sb.ticket("dev", "high", "high one"));
    let medium = ticket_id(&sb.ticket("dev", "medium", "medium one"));
    sb.run(["notify", "flush"]).success();

    let order: Vec<String> = sb
        .smtp
        .received()
        .iter()
        .map(|m| m.header("X-Helpdesk-Ticket").unwrap_or_default())
        .collect();
    assert_eq!(
        order,
        [high.to_string(), medium.to_string(), low.to_string()]
    );
}

#[test]
fn urgent_counts_as_high_and_equal_priorities_go_oldest_first() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    let high = ticket_id(&sb.ticket("dev", "high", "first high"));
    let low = ticket_id(&sb.ticket("dev", "low", "low one"));
    let urgent = ticket_id(&sb.ticket("dev", "urgent", "then urgent"));
    sb.run(["notify", "flush"]).success();

    let order: Vec<String> = sb
        .smtp
        .received()
        .iter()
        .map(|m| m.header("X-Helpdesk-Ticket").unwrap_or_default())
        .collect();
    assert_eq!(
        order,
        [high.to_string(), urgent.to_string(), low.to_string()]
    );
}

// ---- debug mode -------------------------------------------------------------------------

fn debug_config() -> String {
    format!("debug = true\ndevelopment_email = \"devnull@example.org\"\n{BASE_CONFIG}")
}

#[test]
fn debug_flush_redirects_email_queued_without_debug() {
    let sb = Sandbox::new();
    two_devs(&sb);
    sb.ticket("dev", "high", "Queued for real people");
    sb.write_config(&debug_config());
    sb.run(["notify", "flush"]).success();

    let mail = sb.smtp.received();
    assert_eq!(mail.len(), 2);
    for m in &mail {
        assert_eq!(m.rcpt_to, ["devnull@example.org"]);
        let to = m.header("To").expect("a To header");
        assert!(to.contains("devnull@example.org"), "To: {to}");
        assert!(!to.contains("dev@example.org") && !to.contains("dev2@example.org"));
    }
}

#[test]
fn email_queued_in_debug_mode_stays_redirected() {
    let sb = Sandbox::with(ServerOptions::default(), &debug_config());
    two_devs(&sb);
    sb.ticket("dev", "high", "Queued in debug");
    sb.write_config(BASE_CONFIG);
    sb.run(["notify", "flush"]).success();

    let mail = sb.smtp.received();
    assert_eq!(mail.len(), 2);
    for m in &mail {
        assert_eq!(m.rcpt_to, ["devnull@example.org"]);
        assert!(
            m.header("To")
                .is_some_and(|to| to.contains("devnull@example.org"))
        );
    }
}

// ---- TLS and AUTH -----------------------------------------------------------------------

const PASSWORD: &str = "pw-secret-123";

fn tls_sandbox(tls: Tls, security: &str) -> Sandbox {
    let options = ServerOptions {
        tls,
        auth: Some(("helpdesk".into(), PASSWORD.into())),
        ..Default::default()
    };
    let config = format!(
        r#"database = "helpdesk.db"
admins = [["Dev One", "dev@example.org"]]
default_from_email = "Helpdesk <helpdesk@example.org>"

[email.smtp]
host = "localhost"
port = {{port}}
security = "{security}"
ca_file = "ca.pem"
username = "helpdesk"
password_env = "HD_SMTP_PW"
timeout_secs = 5
"#
    );
    let sb = Sandbox::with(options, &config);
    std::fs::write(
        sb.path("ca.pem"),
        sb.smtp.ca_pem().expect("a TLS server has a CA"),
    )
    .expect("write ca.pem");
    sb.user("dev", "dev@example.org");
    sb
}

#[test]
fn starttls_and_auth() {
    let sb = tls_sandbox(Tls::StartTls, "starttls");
    sb.ticket("dev", "high", "Over TLS");
    let run = sb
        .run_env(["notify", "flush"], &[("HD_SMTP_PW", PASSWORD)])
        .success();
    assert_eq!(run.stdout, "");
    let mail = sb.smtp.received();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].tls, "the message went over TLS");
    assert_eq!(mail[0].authenticated_as.as_deref(), Some("helpdesk"));
    assert_eq!(mail[0].rcpt_to, ["dev@example.org"]);
    assert_eq!(emails(&sb)[0]["status"], "sent");
    // PIPELINING is asked about once, after TLS and before AUTH: never an EHLO after AUTH.
    let verbs = sb.smtp.verbs(1);
    let auth = verbs.iter().position(|v| v == "AUTH").expect("an AUTH");
    assert!(!verbs[auth..].contains(&"EHLO".to_string()), "{verbs:?}");
    assert_eq!(
        verbs.iter().filter(|v| *v == "EHLO").count(),
        3,
        "before TLS, after TLS, and the PIPELINING check: {verbs:?}"
    );
}

#[test]
fn implicit_tls_and_auth() {
    let sb = tls_sandbox(Tls::Implicit, "tls");
    sb.ticket("dev", "high", "Over implicit TLS");
    sb.run_env(["notify", "flush"], &[("HD_SMTP_PW", PASSWORD)])
        .success();
    let mail = sb.smtp.received();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].tls);
    assert_eq!(mail[0].authenticated_as.as_deref(), Some("helpdesk"));
}

#[test]
fn wrong_password_defers_and_is_never_shown() {
    let sb = tls_sandbox(Tls::StartTls, "starttls");
    let ticket = sb.ticket("dev", "high", "Bad credentials");
    let id = email_id(&ticket, "dev");
    let wrong = "wrong-pw-456";
    let run = sb
        .run_env(["notify", "flush"], &[("HD_SMTP_PW", wrong)])
        .code(3);
    assert!(
        sb.smtp
            .auth_attempts()
            .contains(&("helpdesk".into(), wrong.into())),
        "the flush tried the configured credentials: {:?}",
        sb.smtp.auth_attempts()
    );
    assert!(sb.smtp.received().is_empty());
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(wrong) && !text.contains(PASSWORD), "{text}");
    }
    assert_eq!(lines(&run.stderr).len(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!(
            "localhost:{} unreachable (authentication failed: 535 5.7.8 Authentication credentials invalid): 1 email deferred, next try at ",
            sb.smtp.port()
        )),
        "{}",
        run.stderr
    );

    let shown = sb
        .run_env(
            ["notify", "show", &id.to_string(), "--format", "json"],
            &[("HD_SMTP_PW", wrong)],
        )
        .success();
    assert!(!shown.stdout.contains(wrong) && !shown.stderr.contains(wrong));
    let shown = shown.json();
    assert_eq!(shown["status"], "errored");
    assert_eq!(shown["attempts"], 1);
    assert_eq!(status_counts(&sb, "processing"), 0);
}

// ---- transient and permanent failures ---------------------------------------------------

#[test]
fn a_4xx_defers_then_a_later_flush_sends() {
    let options = ServerOptions::default().with_verdict(|_, n| {
        if n == 1 {
            Verdict::Reply(451, "4.3.0 try later".into())
        } else {
            Verdict::Accept
        }
    });
    let sb = Sandbox::with(options, &with_queue("retry_backoff_secs = 1"));
    sb.user("dev", "dev@example.org");
    let ticket = sb.ticket("dev", "high", "Greylisted");
    let id = email_id(&ticket, "dev");

    let run = sb.run(["notify", "flush"]).code(3);
    assert_eq!(run.stdout, "");
    let problems = lines(&run.stderr);
    assert_eq!(
        problems.len(),
        1,
        "one line per deferred email:\n{}",
        run.stderr
    );
    assert!(
        problems[0].contains(&id.to_string()) && problems[0].contains("dev@example.org"),
        "the line names the email: {}",
        problems[0]
    );

    let shown = show(&sb, id);
    assert_eq!(shown["status"], "errored");
    assert_eq!(shown["attempts"], 1);
    assert!(
        shown["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("451")),
        "{shown}"
    );
    assert!(shown["next_attempt_at"].is_string(), "{shown}");
    let next = sb.sql_i64(&format!(
        "SELECT next_attempt_at FROM notifications WHERE id = {id}"
    ));
    assert!(next > now_ms(), "next attempt is in the future");

    // Not due yet: nothing is sent, nothing is said.
    let run = sb.run(["notify", "flush"]).success();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    assert_eq!(sb.smtp.data_count(), 1);

    sb.run_env(["notify", "flush"], &[("HELPDESK_NOW", &clock_past(next))])
        .success();
    assert_eq!(sb.smtp.received().len(), 1);
    let shown = show(&sb, id);
    assert_eq!(shown["status"], "sent");
    assert_eq!(shown["attempts"], 2);
    let log = shown["attempt_log"].as_array().expect("an attempt log");
    assert_eq!(log.len(), 2, "{shown}");
    assert!(log[0]["reply"].as_str().unwrap_or_default().contains("451"));
    assert!(log[1]["reply"].as_str().unwrap_or_default().contains("250"));
    assert!(log.iter().all(|a| a["at"].is_string()));
}

#[test]
fn a_5xx_fails_that_email_and_the_batch_goes_on() {
    let options = ServerOptions::default().with_verdict(|env, _| {
        if env.rcpt_to.iter().any(|r| r == "dev2@example.org") {
            Verdict::Reply(550, "5.1.1 mailbox unavailable".into())
        } else {
            Verdict::Accept
        }
    });
    let sb = Sandbox::with(options, BASE_CONFIG);
    two_devs(&sb);
    let first = sb.ticket("dev", "high", "First");
    let second = sb.ticket("dev", "high", "Second");

    let run = sb.run(["notify", "flush"]).code(3);
    assert_eq!(run.stdout, "");
    assert_eq!(lines(&run.stderr).len(), 2, "{}", run.stderr);
    for ticket in [&first, &second] {
        let failed = show(&sb, email_id(ticket, "dev2"));
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["attempts"], 1);
        assert!(
            failed["last_error"]
                .as_str()
                .unwrap_or_default()
                .contains("550")
        );
        let sent = show(&sb, email_id(ticket, "dev"));
        assert_eq!(sent["status"], "sent", "{sent}");
    }
    assert_eq!(sb.smtp.received().len(), 2);
}

#[test]
fn max_attempts_turns_transient_failures_into_failed() {
    let options =
        ServerOptions::default().with_verdict(|_, _| Verdict::Reply(451, "4.3.0 try later".into()));
    let sb = Sandbox::with(
        options,
        &with_queue("max_attempts = 2\nretry_backoff_secs = 0"),
    );
    sb.user("dev", "dev@example.org");
    let id = email_id(&sb.ticket("dev", "high", "Never accepted"), "dev");

    // With no backoff the email is due again at once, so the first run may already
    // make the second attempt; a second run covers a flush that tries once per run.
    sb.run(["notify", "flush"]).code(3);
    if show(&sb, id)["status"] == "errored" {
        sb.run(["notify", "flush"]).code(3);
    }
    let shown = show(&sb, id);
    assert_eq!(shown["status"], "failed", "{shown}");
    assert_eq!(shown["attempts"], 2);
    let log = shown["attempt_log"].as_array().expect("an attempt log");
    assert_eq!(log.len(), 2, "{shown}");
    assert!(
        log.iter()
            .all(|a| a["reply"].as_str().unwrap_or_default().contains("451"))
    );

    let run = sb.run(["notify", "flush"]).success();
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    assert_eq!(sb.smtp.data_count(), 2, "a failed email is not tried again");
}

#[test]
fn a_server_that_is_down_defers_every_claimed_email() {
    let port = closed_port();
    let config = BASE_CONFIG.replace("{port}", &port.to_string());
    let sb = Sandbox::with(ServerOptions::default(), &config);
    two_devs(&sb);
    sb.ticket("dev", "high", "One");
    sb.ticket("dev", "low", "Two");
    assert_eq!(count_emails(&sb), 4);

    let run = sb.run_env(["notify", "flush"], &[("TZ", "UTC")]).code(3);
    assert_eq!(run.stdout, "");
    // One line for the run, not one per email (cron mails it every minute).
    let next = sb.sql_i64("SELECT min(next_attempt_at) FROM notifications WHERE channel = 'email'");
    run.stderr_is(&format!(
        "127.0.0.1:{port} unreachable (connection refused): 4 emails deferred, next try at {}",
        crate::stalls::clock(next)
    ));
    assert_eq!(status_counts(&sb, "errored"), 4);
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'processing'"),
        0
    );
    assert_eq!(count_emails(&sb), 4, "nothing lost");
    let list = emails(&sb);
    // The email that met the refusal counts an attempt; the rest were not tried.
    assert_eq!(
        list.iter().filter(|e| e["attempts"] == 1).count(),
        1,
        "{list:?}"
    );
    assert_eq!(
        list.iter().filter(|e| e["attempts"] == 0).count(),
        3,
        "{list:?}"
    );
    for email in &list {
        assert!(email["next_attempt_at"].is_string(), "{email}");
        assert!(
            email["last_error"]
                .as_str()
                .is_some_and(|e| e.ends_with(&format!(
                    "could not connect to 127.0.0.1:{port}: connection refused"
                ))),
            "{email}"
        );
    }
    assert!(
        sb.sql_i64(&format!(
            "SELECT count(*) FROM notifications WHERE channel = 'email' AND next_attempt_at <= {}",
            now_ms()
        )) == 0,
        "each waits its backoff"
    );
}

#[test]
fn exit_3_speaks_of_this_run_only() {
    let options =
        ServerOptions::default().with_verdict(|_, _| Verdict::Reply(550, "5.7.1 rejected".into()));
    let sb = Sandbox::with(options, BASE_CONFIG);
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Rejected");
    sb.run(["notify", "flush"]).code(3);
    assert_eq!(status_counts(&sb, "failed"), 1);

    let run = sb.run(["notify", "flush"]).success();
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr, "");
}

// ---- retry and purge --------------------------------------------------------------------

#[test]
fn retry_requeues_failed_email_and_keeps_the_log() {
    let options = ServerOptions::default().with_verdict(|_, n| {
        if n <= 2 {
            Verdict::Reply(550, "5.1.1 no such user".into())
        } else {
            Verdict::Accept
        }
    });
    let sb = Sandbox::with(options, BASE_CONFIG);
    two_devs(&sb);
    let ticket = sb.ticket("dev", "high", "Retry me");
    let a = email_id(&ticket, "dev");
    let b = email_id(&ticket, "dev2");
    sb.run(["notify", "flush"]).code(3);
    assert_eq!(status_counts(&sb, "failed"), 2);

    sb.run(["notify", "retry", &a.to_string()]).success();
    let shown = show(&sb, a);
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["attempts"], 0);
    assert_eq!(shown["attempt_log"].as_array().map(Vec::len), Some(1));
    assert_eq!(show(&sb, b)["status"], "failed");

    sb.run(["notify", "retry", "--failed"]).success();
    let shown = show(&sb, b);
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["attempts"], 0);
    assert_eq!(shown["attempt_log"].as_array().map(Vec::len), Some(1));

    sb.run(["notify", "flush"]).success();
    assert_eq!(sb.smtp.received().len(), 2);
    assert_eq!(status_counts(&sb, "sent"), 2);

    let run = sb.run(["notify", "retry", &a.to_string()]).code(1);
    assert!(run.stderr.starts_with("error:"), "{}", run.stderr);
    assert_eq!(
        show(&sb, a)["status"],
        "sent",
        "a refused retry changes nothing"
    );
}

#[test]
fn purge_removes_sent_and_failed_but_never_pending() {
    let options = ServerOptions::default().with_verdict(|env, _| {
        if env.rcpt_to.iter().any(|r| r == "dev2@example.org") {
            Verdict::Reply(550, "5.1.1 no such user".into())
        } else {
            Verdict::Accept
        }
    });
    let sb = Sandbox::with(options, BASE_CONFIG);
    two_devs(&sb);
    sb.ticket("dev", "high", "Old news");
    sb.run(["notify", "flush"]).code(3);
    assert_eq!(status_counts(&sb, "sent"), 1);
    assert_eq!(status_counts(&sb, "failed"), 1);
    let waiting = sb.ticket("dev", "low", "Still queued");
    std::thread::sleep(Duration::from_millis(20));

    sb.run(["notify", "purge", "--older-than", "0s"]).success();
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE channel = 'email' AND status IN ('sent', 'failed')"),
        0
    );
    assert_eq!(status_counts(&sb, "pending"), 2);
    assert_eq!(count_emails(&sb), 2);
    let left: HashSet<i64> = emails(&sb)
        .iter()
        .map(|e| e["id"].as_i64().expect("an id"))
        .collect();
    assert_eq!(
        left,
        HashSet::from([email_id(&waiting, "dev"), email_id(&waiting, "dev2")])
    );
    assert_eq!(sb.sql_i64("SELECT count(*) FROM attempts"), 0);
}

#[test]
fn purge_with_a_bad_duration_is_wrong_usage() {
    let sb = Sandbox::new();
    let run = sb.run(["notify", "purge", "--older-than", "5x"]).code(2);
    assert!(run.stderr.contains("5x"), "{}", run.stderr);
}

// ---- notify test --------------------------------------------------------------------------

#[test]
fn notify_test_sends_one_message() {
    let sb = Sandbox::new();
    sb.run(["notify", "test", "--to", "someone@example.org"])
        .success();
    let mail = sb.smtp.received();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].rcpt_to, ["someone@example.org"]);
    assert_eq!(mail[0].mail_from, "helpdesk@example.org");
}

#[test]
fn notify_test_in_debug_mode_goes_to_the_development_address() {
    let sb = Sandbox::new();
    sb.write_config(&debug_config());
    sb.run(["notify", "test", "--to", "someone@example.org"])
        .success()
        .stderr_has("devnull@example.org");
    let mail = sb.smtp.received();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].rcpt_to, ["devnull@example.org"]);
    assert!(
        mail[0]
            .header("To")
            .unwrap()
            .contains("devnull@example.org")
    );
}

#[test]
fn notify_test_against_a_down_server_exits_1() {
    let config = BASE_CONFIG.replace("{port}", &closed_port().to_string());
    let sb = Sandbox::with(ServerOptions::default(), &config);
    let port = config
        .lines()
        .find_map(|l| l.strip_prefix("port = "))
        .expect("a port line")
        .to_string();
    // A connection failure is said as one, not as a refusal of the message.
    sb.run(["notify", "test", "--to", "someone@example.org"])
        .code(1)
        .stderr_is(&format!(
            "error: could not connect to 127.0.0.1:{port}: connection refused"
        ));
    assert_eq!(sb.smtp.connections(), 0);
}

// ---- dry run and limit --------------------------------------------------------------------

#[test]
fn dry_run_lists_and_changes_nothing() {
    let sb = Sandbox::new();
    two_devs(&sb);
    sb.ticket("dev", "high", "Look, don't touch");
    let run = sb
        .run(["notify", "flush", "--dry-run"])
        .success()
        .stdout_has("dev@example.org")
        .stdout_has("dev2@example.org");
    assert!(run.stdout.contains(SUBJECT), "{}", run.stdout);
    assert_eq!(sb.smtp.connections(), 0);
    assert!(sb.smtp.received().is_empty());
    assert_eq!(status_counts(&sb, "pending"), 2);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM attempts"), 0);
    assert_eq!(sb.sql_i64("SELECT count(*) FROM flush_runs"), 0);

    let json = sb
        .run(["notify", "flush", "--limit", "1", "--format", "json"])
        .success()
        .json();
    assert_eq!(json["sent"], 1);
    assert_eq!(json["claimed"], 1);
    assert_eq!(sb.smtp.received().len(), 1);
    assert_eq!(status_counts(&sb, "sent"), 1);
    assert_eq!(status_counts(&sb, "pending"), 1);
}

// ---- overlapping and killed flushes -------------------------------------------------------

#[test]
fn overlapping_flushes_send_each_email_exactly_once() {
    const DEVS: usize = 24;
    const TICKETS: usize = 10;
    let admins: Vec<String> = (1..=DEVS)
        .map(|i| format!("[\"Dev {i}\", \"dev{i:02}@example.org\"]"))
        .collect();
    let config = format!(
        r#"database = "helpdesk.db"
admins = [{}]
default_from_email = "Helpdesk <helpdesk@example.org>"

[email.smtp]
host = "127.0.0.1"
port = {{port}}
timeout_secs = 5

[queue]
batch_size = 10
"#,
        admins.join(", ")
    );
    let options = ServerOptions {
        latency: Some(Duration::from_millis(1)),
        ..Default::default()
    };
    let sb = Sandbox::with(options, &config);
    for i in 1..=DEVS {
        sb.user(&format!("dev{i:02}"), &format!("dev{i:02}@example.org"));
    }
    for t in 0..TICKETS {
        sb.ticket(
            "dev01",
            ["low", "medium", "high"][t % 3],
            &format!("ticket {t}"),
        );
    }
    let total = count_emails(&sb);
    assert_eq!(total, (DEVS * TICKETS) as i64);

    let children: Vec<Child> = (0..4)
        .map(|_| {
            sb.command()
                .args(["notify", "flush", "--format", "json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a flush")
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|child| wait_bounded(child, Duration::from_secs(120)))
        .collect();
    let (mut claimed, mut sent) = (0, 0);
    for run in runs {
        let run = run.success();
        let json = run.json();
        claimed += json["claimed"].as_i64().expect("claimed");
        sent += json["sent"].as_i64().expect("sent");
    }
    assert_eq!(
        (claimed, sent),
        (total, total),
        "each email claimed and sent once"
    );

    assert_eq!(status_counts(&sb, "sent"), total);
    let mail = sb.smtp.received();
    assert_eq!(mail.len() as i64, total, "one message per email");
    let received: HashSet<String> = mail.iter().map(message_id_of).collect();
    assert_eq!(received.len(), mail.len(), "every Message-ID distinct");
    let stored: HashSet<String> = stored_message_ids(&sb).into_values().collect();
    assert_eq!(received, stored);
}

#[test]
fn a_killed_flush_is_finished_by_the_next_after_its_lease() {
    let options = ServerOptions {
        latency: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let sb = Sandbox::with(options, &with_queue("lease_secs = 1"));
    two_devs(&sb);
    for description in ["one", "two", "three"] {
        sb.ticket("dev", "high", description);
    }
    let total = count_emails(&sb);
    assert_eq!(total, 6);

    let mut child = sb
        .command()
        .args(["notify", "flush"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a flush");
    let before_kill = sb.smtp.wait_for(2, Duration::from_secs(15));
    child.kill().expect("kill the flush");
    child.wait().expect("reap the flush");
    assert_eq!(before_kill.len(), 2, "two messages arrived before the kill");
    let connections = sb.smtp.connections();
    let in_flight = message_id_of(&before_kill[1]);

    // The next flush runs after the killed one's lease (1 s) has expired.
    sb.run_env(["notify", "flush"], &[("HELPDESK_NOW", "+2s")])
        .success();

    assert_eq!(status_counts(&sb, "sent"), total);
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'processing'"),
        0
    );
    let mail = sb.smtp.received();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &mail {
        *seen.entry(message_id_of(m)).or_default() += 1;
    }
    let stored = stored_message_ids(&sb);
    for mid in stored.values() {
        assert!(seen.contains_key(mid), "{mid} never arrived");
    }
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= connections,
        "{duplicates} resent, but only {connections} message(s) could be in flight"
    );
    for (mid, n) in &seen {
        assert!(*n == 1 || *mid == in_flight, "{mid} arrived {n} times");
    }

    let (&resent, _) = stored
        .iter()
        .find(|(_, mid)| **mid == in_flight)
        .expect("the in-flight message is a stored email");
    let shown = show(&sb, resent);
    assert_eq!(shown["status"], "sent");
    let log = shown["attempt_log"].as_array().expect("an attempt log");
    assert!(
        log.iter().any(|a| {
            let text = format!("{} {}", a["outcome"], a["reply"]).to_lowercase();
            text.contains("lease") || text.contains("possibly sent")
        }),
        "the log says the lease expired: {shown}"
    );
}

#[test]
fn a_slow_flush_keeps_its_claim_against_an_overlapping_one() {
    // The first message of a run takes six replies (about 2.4 s) and the run renews
    // its lease every second: a second flush whose clock is past the first lease
    // must still not take the live run's email over.
    let options = ServerOptions {
        latency: Some(Duration::from_millis(400)),
        ..Default::default()
    };
    let sb = Sandbox::with(options, &with_queue("lease_secs = 3"));
    two_devs(&sb);
    sb.ticket("dev", "high", "one");
    sb.ticket("dev", "high", "two");
    let total = count_emails(&sb);
    assert_eq!(total, 4);

    let first = sb
        .command()
        .args(["notify", "flush"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a flush");
    let later = sb.past_the_first_lease(3);
    let second = sb.run_env(["notify", "flush"], &[("HELPDESK_NOW", &later)]);
    let first = wait_bounded(first, Duration::from_secs(60));

    let mail = sb.smtp.received();
    let ids: Vec<String> = mail.iter().map(message_id_of).collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        (mail.len(), distinct.len()),
        (total as usize, total as usize),
        "each email sent exactly once, got Message-IDs {ids:?}\n--- first flush (exit {})\n{}\n--- second flush (exit {})\n{}",
        first.code,
        first.stderr,
        second.code,
        second.stderr
    );
    assert_eq!(status_counts(&sb, "sent"), total);
}

#[test]
fn a_dropped_connection_defers_that_email_and_the_rest_go_out() {
    let options = ServerOptions::default().with_verdict(|_, n| {
        if n == 1 {
            Verdict::Drop
        } else {
            Verdict::Accept
        }
    });
    let sb = Sandbox::with(options, BASE_CONFIG);
    two_devs(&sb);
    sb.ticket("dev", "high", "one");
    sb.ticket("dev", "low", "two");

    let run = sb.run(["notify", "flush"]).code(3);
    assert_eq!(lines(&run.stderr).len(), 1, "{}", run.stderr);
    assert_eq!(status_counts(&sb, "errored"), 1);
    assert_eq!(status_counts(&sb, "sent"), 3);
    assert_eq!(sb.smtp.received().len(), 3);
    assert!(sb.smtp.connections() >= 2, "it reconnected after the drop");
}

// ---- status -------------------------------------------------------------------------------

#[test]
fn status_counts_and_check() {
    let sb = Sandbox::new();
    two_devs(&sb);
    sb.ticket("dev", "high", "Count me");

    let status = sb
        .run(["notify", "status", "--format", "json"])
        .success()
        .json();
    assert_eq!(status["email"]["pending"], 2, "{status}");
    assert_eq!(status["email"]["sent"], 0, "{status}");
    assert_eq!(status["in_app"]["sent"], 2, "{status}");
    assert_eq!(status["due"], 2, "{status}");
    // Due email and no flush yet: a zero max age is already exceeded.
    sb.run(["notify", "status", "--check", "--max-age", "0s"])
        .code(1);

    sb.run(["notify", "flush"]).success();
    let status = sb
        .run(["notify", "status", "--format", "json"])
        .success()
        .json();
    assert_eq!(status["email"]["pending"], 0, "{status}");
    assert_eq!(status["email"]["sent"], 2, "{status}");
    assert_eq!(status["due"], 0, "{status}");
    assert_eq!(status["last_flush"]["sent"], 2, "{status}");
    sb.run(["notify", "status", "--check", "--max-age", "10m"])
        .success();
}

#[test]
fn concurrent_connections_send_each_email_exactly_once() {
    const DEVS: usize = 12;
    const TICKETS: usize = 10;
    let admins: Vec<String> = (1..=DEVS)
        .map(|i| format!("[\"Dev {i}\", \"dev{i:02}@example.org\"]"))
        .collect();
    let config = format!(
        "database = \"helpdesk.db\"\nadmins = [{}]\n\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {{port}}\n\n[queue]\nbatch_size = 7\nretry_backoff_secs = 0\n",
        admins.join(", ")
    );
    // A few refusals on the way, so retries and reconnections happen under concurrency too.
    let options = ServerOptions::default().with_verdict(|_, n| {
        if n % 17 == 0 {
            Verdict::Reply(451, "4.3.0 try later".into())
        } else {
            Verdict::Accept
        }
    });
    let sb = Sandbox::with(options, &config);
    for i in 1..=DEVS {
        sb.user(&format!("dev{i:02}"), &format!("dev{i:02}@example.org"));
    }
    for t in 0..TICKETS {
        sb.ticket("dev01", "high", &format!("ticket {t}"));
    }
    let total = count_emails(&sb);
    assert_eq!(total, (DEVS * TICKETS) as i64);

    let first = sb
        .run(["notify", "flush", "--concurrency", "4", "--format", "json"])
        .code(3)
        .json();
    assert_eq!(first["claimed"].as_i64(), Some(total));
    assert!(sb.smtp.connections() >= 4, "four SMTP sessions were used");
    let deferred = first["deferred"].as_i64().unwrap();
    assert!(deferred > 0, "the server refused some");
    assert_eq!(first["sent"].as_i64().unwrap() + deferred, total);

    sb.run(["notify", "flush", "--concurrency", "4"]).code(0);

    assert_eq!(status_counts(&sb, "sent"), total);
    let mail = sb.smtp.received();
    assert_eq!(mail.len() as i64, total, "one accepted message per email");
    let ids: HashSet<String> = mail.iter().map(message_id_of).collect();
    assert_eq!(ids.len(), mail.len(), "every Message-ID distinct");
}

#[test]
fn the_file_transport_writes_one_eml_per_email() {
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "{BASE_CONFIG}\n[email]\ntransport = \"file\"\n\n[email.file]\ndir = \"outbox\"\n"
    ));
    two_devs(&sb);
    sb.ticket("dev", "high", "Printer <on> fire");
    sb.run(["notify", "flush"]).success().stdout_is_empty();
    let mut files: Vec<_> = std::fs::read_dir(sb.path("outbox"))
        .expect("the outbox folder exists")
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "one file per developer");
    for file in &files {
        assert_eq!(file.extension().and_then(|e| e.to_str()), Some("eml"));
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(&format!("Subject: [#1] {SUBJECT}")), "{text}");
        assert!(text.contains("X-Helpdesk-Ticket: 1"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
    }
    assert_eq!(status_counts(&sb, "sent"), 2);
    assert!(sb.smtp.received().is_empty(), "nothing went over SMTP");
}

#[cfg(unix)]
#[test]
fn the_sendmail_transport_pipes_each_email_to_the_command() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    // A stand-in for sendmail: keeps its arguments and the message it was given.
    let script = sb.path("fake-sendmail");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nn=$(ls {dir}/got/*.eml 2>/dev/null | wc -l)\nmkdir -p {dir}/got\necho \"$@\" > {dir}/got/$n.args\ncat > {dir}/got/$n.eml\n",
            dir = sb.dir.path().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.write_config(&format!(
        "{BASE_CONFIG}\n[email]\ntransport = \"sendmail\"\n\n[email.sendmail]\ncommand = \"{}\"\n",
        script.display()
    ));
    two_devs(&sb);
    sb.ticket("dev", "low", "Slow page");
    sb.run(["notify", "flush"]).success();
    let got = sb.path("got");
    let mut args: Vec<String> = (0..2)
        .map(|n| std::fs::read_to_string(got.join(format!("{n}.args"))).unwrap())
        .collect();
    args.sort();
    for to in ["dev@example.org", "dev2@example.org"] {
        assert!(
            args.iter().any(|a| a.split_whitespace().any(|w| w == to)),
            "{to} in {args:?}"
        );
    }
    let message = std::fs::read_to_string(got.join("0.eml")).unwrap();
    assert!(
        message.contains(&format!("Subject: [#1] {SUBJECT}")),
        "{message}"
    );
    assert_eq!(status_counts(&sb, "sent"), 2);
}

#[test]
fn max_time_stops_claiming_and_gives_the_rest_back() {
    let options = ServerOptions {
        latency: Some(Duration::from_millis(60)),
        ..Default::default()
    };
    let sb = Sandbox::with(options, &with_queue("batch_size = 50"));
    two_devs(&sb);
    for t in 0..10 {
        sb.ticket("dev", "high", &format!("ticket {t}"));
    }
    let total = count_emails(&sb);
    assert_eq!(total, 20);
    let started = Instant::now();
    let report = sb
        .run(["notify", "flush", "--max-time", "1s", "--format", "json"])
        .success()
        .json();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run was bounded"
    );
    let sent = report["sent"].as_i64().unwrap();
    assert!(
        sent > 0 && sent < total,
        "some but not all were sent: {report}"
    );
    assert_eq!(status_counts(&sb, "sent"), sent);
    assert_eq!(
        status_counts(&sb, "pending"),
        total - sent,
        "the rest is due again at once"
    );
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'processing'"),
        0
    );
    sb.run(["notify", "flush"]).success();
    assert_eq!(status_counts(&sb, "sent"), total);
}

/// Message-ID → the address the email is for, read from the database.
fn addressee_by_message_id(sb: &Sandbox) -> HashMap<String, String> {
    sb.sql_texts("SELECT message_id, to_addr FROM notifications WHERE channel = 'email'")
        .into_iter()
        .map(|row| {
            let [id, to] = [&row[0], &row[1]].map(|v| v.clone().expect("a value"));
            (bare_id(&id), to)
        })
        .collect()
}

#[test]
fn every_message_reaches_its_own_addressee_with_and_without_pipelining() {
    for no_pipelining in [false, true] {
        // Refusals and dropped connections mid-stream, so sessions restart
        // while a next message may already be announced.
        let options = ServerOptions {
            no_pipelining,
            ..Default::default()
        }
        .with_verdict(|_, n| match n % 7 {
            3 => Verdict::Reply(451, "4.3.0 try later".into()),
            5 => Verdict::Drop,
            _ => Verdict::Accept,
        });
        let sb = Sandbox::with(
            options,
            &with_queue("retry_backoff_secs = 0\nmax_attempts = 10"),
        );
        two_devs(&sb);
        sb.manager("boss", "boss@example.org");
        for t in 0..8 {
            sb.ticket("dev", "high", &format!("ticket {t}"));
            sb.run([
                "ticket",
                "comment",
                &(t + 1).to_string(),
                "--by",
                "boss",
                "--body",
                "seen",
            ])
            .success();
        }
        let total = count_emails(&sb);
        assert_eq!(
            total,
            8 * 2 + 8 * 2,
            "two developers per new ticket and per comment"
        );
        for _ in 0..10 {
            if status_counts(&sb, "sent") == total {
                break;
            }
            let _ = sb.run(["notify", "flush"]);
        }
        assert_eq!(
            status_counts(&sb, "sent"),
            total,
            "no_pipelining = {no_pipelining}"
        );
        let addressee = addressee_by_message_id(&sb);
        let mail = sb.smtp.received();
        assert_eq!(mail.len() as i64, total, "each email accepted once");
        for m in &mail {
            let id = message_id_of(m);
            assert_eq!(m.rcpt_to, [addressee[&id].clone()], "envelope of {id}");
            let to = m.header("To").expect("a To header");
            assert!(to.contains(&addressee[&id]), "To header of {id}: {to}");
        }
    }
}

#[test]
fn one_connection_carries_a_whole_batch() {
    let sb = Sandbox::new();
    two_devs(&sb);
    for t in 0..10 {
        sb.ticket("dev", "high", &format!("ticket {t}"));
    }
    sb.run(["notify", "flush"]).success();
    assert_eq!(sb.smtp.received().len(), 20);
    assert_eq!(
        sb.smtp.connections(),
        1,
        "one SMTP session for the whole run"
    );
}

/// A damaged event (a kind this version does not know) fails its own emails
/// with the reason; it never stops the claim, and the rest of the queue goes.
#[test]
fn a_damaged_event_fails_its_own_emails_and_the_rest_are_sent() {
    let sb = Sandbox::new();
    two_devs(&sb);
    sb.ticket("dev", "low", "one");
    sb.ticket("dev", "low", "two");
    sb.sql_exec("UPDATE events SET kind = 'from_the_future' WHERE ticket_id = 1");
    let run = sb.run(["notify", "flush"]).code(3);
    let mail = sb.smtp.wait_for(2, Duration::from_secs(5));
    assert_eq!(mail.len(), 2, "{}", run.stderr);
    for m in &mail {
        assert_eq!(m.header("X-Helpdesk-Ticket").as_deref(), Some("2"));
    }
    let failed = sb.sql_texts("SELECT last_error FROM notifications WHERE status = 'failed'");
    assert_eq!(failed.len(), 2);
    for row in failed {
        let reason = row[0].clone().unwrap_or_default();
        assert_eq!(
            reason,
            "could not render: the database is damaged (unknown stored value `from_the_future` in column 2: not an event kind)"
        );
        assert!(run.stderr.contains(&reason), "{}", run.stderr);
    }
}
