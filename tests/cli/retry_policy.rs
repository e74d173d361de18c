//! The retry policy (SPEC §4): a transient failure is retried, with backoff
//! capped at an hour, until the email is older than `queue.max_age`
//! (default 5d); `queue.max_attempts` is an optional cap. Time is moved with
//! `HELPDESK_NOW` instead of slept.

use std::net::TcpListener;

use serde_json::Value;

use crate::support::smtp::Verdict;
use crate::support::*;

fn show(sb: &Sandbox, id: i64) -> Value {
    sb.run(["notify", "show", &id.to_string(), "--format", "json"])
        .success()
        .json()
}

fn only_email(sb: &Sandbox) -> i64 {
    sb.sql_i64("SELECT id FROM notifications WHERE channel = 'email'")
}

fn flush_at(sb: &Sandbox, ahead: &str) -> Run {
    sb.run_env(["notify", "flush"], &[("HELPDESK_NOW", ahead)])
}

#[test]
fn a_transient_failure_is_retried_until_max_age_then_failed() {
    let options =
        ServerOptions::default().with_verdict(|_, _| Verdict::Reply(451, "4.3.0 try later".into()));
    let sb = Sandbox::with(options, BASE_CONFIG);
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Greylisted for days");
    let id = only_email(&sb);

    sb.run(["notify", "flush"]).code(3);
    // Far more attempts than the old cap of 5, each after its backoff (at most 1 h + 10 %).
    for hours in [2, 4, 6, 8, 10, 12] {
        flush_at(&sb, &format!("+{hours}h")).code(3);
    }
    let shown = show(&sb, id);
    assert_eq!(shown["status"], "errored", "{shown}");
    assert_eq!(shown["attempts"], 7);

    let port = sb.smtp.port();
    flush_at(&sb, "+5d").code(3).stderr_is(&format!(
        "email {id} to dev@example.org failed: 127.0.0.1:{port}: 451 4.3.0 try later (not delivered within 5d (`queue.max_age`), giving up)"
    ));
    let shown = show(&sb, id);
    assert_eq!(shown["status"], "failed", "{shown}");
    assert_eq!(shown["attempts"], 8);
    assert_eq!(sb.smtp.data_count(), 8);
}

#[test]
fn max_age_is_configurable() {
    let options =
        ServerOptions::default().with_verdict(|_, _| Verdict::Reply(421, "4.7.0 busy".into()));
    let sb = Sandbox::with(
        options,
        &format!("{BASE_CONFIG}\n[queue]\nmax_age = \"2h\"\n"),
    );
    sb.run(["config", "check"])
        .success()
        .stdout_has("max_attempts none, max_age 2h,");
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Short-lived");
    let id = only_email(&sb);
    sb.run(["notify", "flush"]).code(3);
    assert_eq!(show(&sb, id)["status"], "errored");
    flush_at(&sb, "+3h").code(3);
    let shown = show(&sb, id);
    assert_eq!(shown["status"], "failed", "{shown}");
    assert!(
        shown["last_error"]
            .as_str()
            .is_some_and(|e| e.ends_with("(not delivered within 2h (`queue.max_age`), giving up)")),
        "{shown}"
    );
}

#[test]
fn an_outage_shorter_than_max_age_loses_no_email() {
    // Fifteen minutes of a refused connection, tried as cron would, then the relay is back.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let sb = Sandbox::with(ServerOptions::default(), BASE_CONFIG);
    sb.write_config(&BASE_CONFIG.replace("{port}", &closed.to_string()));
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    for n in 0..3 {
        sb.ticket("dev", "high", &format!("ticket {n}"));
    }
    for minutes in 0..=15 {
        flush_at(&sb, &format!("+{minutes}m"));
    }
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'failed'"),
        0,
        "nothing given up during a short outage"
    );
    sb.write_config(BASE_CONFIG);
    flush_at(&sb, "+2h").success();
    assert_eq!(
        sb.sql_i64(
            "SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'sent'"
        ),
        6
    );
    assert_eq!(sb.smtp.received().len(), 6);
}
