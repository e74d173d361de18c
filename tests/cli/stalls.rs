//! A server that stalls or breaks PIPELINING (issue: a stalled relay costs one
//! timeout per run, not one per email; broken PIPELINING falls back to one
//! command at a time and never fails an email for good).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::smtp::Misbehave;
use crate::support::*;

/// `BASE_CONFIG` with a 2 s command timeout.
fn config(queue: &str) -> String {
    format!(
        "{}\n[queue]\n{queue}\n",
        BASE_CONFIG.replace("timeout_secs = 5", "timeout_secs = 2")
    )
}

fn sandbox(misbehave: Misbehave, queue: &str) -> Sandbox {
    let options = ServerOptions {
        misbehave,
        ..Default::default()
    };
    let sb = Sandbox::with(options, &config(queue));
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    for n in 0..3 {
        sb.ticket("dev", "high", &format!("ticket {n}"));
    }
    assert_eq!(emails(&sb).len(), 6);
    sb
}

fn emails(sb: &Sandbox) -> Vec<Value> {
    sb.run(["notify", "list", "--channel", "email", "--format", "json"])
        .success()
        .json()
        .as_array()
        .expect("an array")
        .clone()
}

fn count(sb: &Sandbox, status: &str) -> i64 {
    sb.sql_i64(&format!(
        "SELECT count(*) FROM notifications WHERE channel = 'email' AND status = '{status}'"
    ))
}

/// `11:42` for a stored time, in UTC (the runs set `TZ=UTC`).
pub fn clock(ms: i64) -> String {
    let secs = (ms / 1000).rem_euclid(86_400);
    format!("{:02}:{:02}", secs / 3600, secs / 60 % 60)
}

/// Runs a flush with `TZ=UTC`, timing it.
fn timed_flush(sb: &Sandbox) -> (Run, Duration) {
    let started = Instant::now();
    let run = sb.run_env(["notify", "flush"], &[("TZ", "UTC")]);
    (run, started.elapsed())
}

/// The stall costs one timeout, every email is deferred to the same time
/// with one line on stderr, only the email that met the stall counts an
/// attempt, and nothing is left `processing`.
fn one_timeout_and_one_line(sb: &Sandbox, run: Run, took: Duration) {
    let run = run.code(3);
    assert!(
        took < Duration::from_millis(3900),
        "one 2 s timeout, took {took:?}"
    );
    let next = sb.sql_i64("SELECT min(next_attempt_at) FROM notifications WHERE channel = 'email'");
    assert_eq!(
        sb.sql_i64("SELECT max(next_attempt_at) FROM notifications WHERE channel = 'email'"),
        next,
        "all due again at the same time"
    );
    run.stdout_is_empty().stderr_is(&format!(
        "127.0.0.1:{} unreachable (no answer within 2 s): 6 emails deferred, next try at {}",
        sb.smtp.port(),
        clock(next)
    ));
    assert_eq!(count(sb, "errored"), 6);
    assert_eq!(count(sb, "processing"), 0);
    let list = emails(sb);
    let tried: Vec<&Value> = list.iter().filter(|e| e["attempts"] == 1).collect();
    assert_eq!(
        tried.len(),
        1,
        "only the email that met the stall counts: {list:?}"
    );
    assert!(
        list.iter()
            .all(|e| e["attempts"] == 0 || e["attempts"] == 1)
    );
    let id = tried[0]["id"].as_i64().unwrap();
    let shown = sb
        .run(["notify", "show", &id.to_string(), "--format", "json"])
        .success()
        .json();
    let log = shown["attempt_log"].as_array().expect("a log");
    assert_eq!(log.len(), 1, "{shown}");
    assert_eq!(log[0]["outcome"], "deferred");
    assert_eq!(
        log[0]["reply"],
        format!("no answer from 127.0.0.1:{} within 2 s", sb.smtp.port())
    );
    for email in list.iter().filter(|e| e["attempts"] == 0) {
        let id = email["id"].as_i64().unwrap();
        let shown = sb
            .run(["notify", "show", &id.to_string(), "--format", "json"])
            .success()
            .json();
        assert_eq!(
            shown["attempt_log"],
            Value::Array(vec![]),
            "not tried: no attempt logged"
        );
        assert_eq!(
            shown["last_error"],
            format!(
                "not tried: no answer from 127.0.0.1:{} within 2 s",
                sb.smtp.port()
            )
        );
    }
}

#[test]
fn a_server_that_stalls_after_mail_costs_one_timeout_per_run() {
    let sb = sandbox(Misbehave::StallAfterMail, "lease_secs = 10");
    let (run, took) = timed_flush(&sb);
    one_timeout_and_one_line(&sb, run, took);
}

#[test]
fn a_server_that_stalls_without_pipelining_costs_one_timeout_per_run() {
    let options = ServerOptions {
        misbehave: Misbehave::StallAfterMail,
        no_pipelining: true,
        ..Default::default()
    };
    let sb = Sandbox::with(options, &config("lease_secs = 10"));
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    for n in 0..3 {
        sb.ticket("dev", "high", &format!("ticket {n}"));
    }
    let (run, took) = timed_flush(&sb);
    one_timeout_and_one_line(&sb, run, took);
}

#[test]
fn a_stall_during_ehlo_costs_one_timeout() {
    let sb = sandbox(Misbehave::StallOnEhlo, "lease_secs = 10");
    let (run, took) = timed_flush(&sb);
    let run = run.code(3);
    assert!(
        took < Duration::from_millis(3900),
        "one 2 s timeout, took {took:?}"
    );
    let next = sb.sql_i64("SELECT min(next_attempt_at) FROM notifications WHERE channel = 'email'");
    run.stderr_is(&format!(
        "127.0.0.1:{} unreachable (no answer within 2 s): 6 emails deferred, next try at {}",
        sb.smtp.port(),
        clock(next)
    ));
    assert_eq!(count(&sb, "processing"), 0);
}

#[test]
fn max_time_returns_within_the_limit_plus_one_timeout_on_a_stalled_server() {
    let sb = sandbox(Misbehave::StallAfterMail, "lease_secs = 10");
    let started = Instant::now();
    sb.run(["notify", "flush", "--max-time", "1s"]).code(3);
    assert!(
        started.elapsed() < Duration::from_millis(3900),
        "1 s plus one 2 s timeout, took {:?}",
        started.elapsed()
    );
    assert_eq!(count(&sb, "processing"), 0);
}

#[test]
fn the_lease_is_kept_alive_while_a_reply_is_awaited() {
    // A 5 s stall with a 3 s lease renewed every second: a second flush whose clock is
    // past the first lease must find nothing to claim.
    let options = ServerOptions {
        misbehave: Misbehave::StallAfterMail,
        ..Default::default()
    };
    let sb = Sandbox::with(
        options,
        &format!("{BASE_CONFIG}\n[queue]\nlease_secs = 3\n"),
    );
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "stalled");
    let first = sb
        .command()
        .args(["notify", "flush"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn a flush");
    let later = sb.past_the_first_lease(3);
    let second = sb
        .run_env(
            ["notify", "flush", "--format", "json"],
            &[("HELPDESK_NOW", &later)],
        )
        .success()
        .json();
    assert_eq!(
        second["claimed"], 0,
        "the stalled flush still holds its claim: {second}"
    );
    let mut first = first;
    let deadline = Instant::now() + Duration::from_secs(20);
    while first.try_wait().expect("try_wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = first.kill();
    let status = first.wait().expect("reap");
    assert_eq!(status.code(), Some(3));
    let log = sb.sql_i64("SELECT count(*) FROM attempts WHERE outcome = 'lease_expired'");
    assert_eq!(log, 0, "no claim was taken over");
    assert_eq!(
        sb.sql_i64("SELECT attempts FROM notifications WHERE channel = 'email'"),
        1
    );
}

fn all_sent_none_failed(sb: &Sandbox) {
    assert_eq!(count(sb, "sent"), 6);
    assert_eq!(count(sb, "failed"), 0);
    let mail = sb.smtp.received();
    assert_eq!(mail.len(), 6, "each email once");
}

#[test]
fn a_server_refusing_pipelined_commands_with_503_gets_one_at_a_time() {
    let sb = sandbox(Misbehave::RejectPipelined(503), "");
    sb.run(["notify", "flush"]).success().stderr_is("");
    all_sent_none_failed(&sb);
}

#[test]
fn a_server_refusing_pipelined_commands_with_554_gets_one_at_a_time() {
    let sb = sandbox(Misbehave::RejectPipelined(554), "");
    sb.run(["notify", "flush"]).success().stderr_is("");
    all_sent_none_failed(&sb);
}

#[test]
fn a_server_dropping_pipelined_commands_costs_one_timeout() {
    let sb = sandbox(Misbehave::DropPipelined, "");
    let started = Instant::now();
    sb.run(["notify", "flush"]).success().stderr_is("");
    assert!(
        started.elapsed() < Duration::from_millis(3900),
        "one 2 s timeout, took {:?}",
        started.elapsed()
    );
    all_sent_none_failed(&sb);
}

#[test]
fn max_time_bounds_a_slow_but_answering_server_too() {
    // Every reply takes 0.8 s (under the 2 s timeout), so one message takes
    // about five seconds: the run still ends by 1 s plus one timeout.
    let options = ServerOptions {
        latency: Some(Duration::from_millis(800)),
        ..Default::default()
    };
    let sb = Sandbox::with(options, &config(""));
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "slow");
    let started = Instant::now();
    sb.run(["notify", "flush", "--max-time", "1s"]).success();
    assert!(
        started.elapsed() < Duration::from_millis(3600),
        "1 s plus one 2 s timeout, took {:?}",
        started.elapsed()
    );
    assert_eq!(count(&sb, "processing"), 0);
    assert_eq!(count(&sb, "pending"), 1, "handed back untried");
}
