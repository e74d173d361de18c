//! SIGINT and SIGTERM during `notify flush` (SPEC §5 "Interrupting a flush"):
//! the run stops claiming, finishes the message in flight, hands every
//! email it did not send back as it was, records the run, and exits 130 or
//! 143; a second signal ends it at once.

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::notify::wait_bounded;
use crate::support::smtp::{Misbehave, ReceivedMail};
use crate::support::*;

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} worked");
}

fn spawn_flush(sb: &Sandbox) -> Child {
    sb.command()
        .args(["notify", "flush"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a flush")
}

fn message_id(mail: &ReceivedMail) -> String {
    mail.header("Message-ID").expect("a Message-ID")
}

fn count(sb: &Sandbox, status: &str) -> i64 {
    sb.sql_i64(&format!(
        "SELECT count(*) FROM notifications WHERE channel = 'email' AND status = '{status}'"
    ))
}

/// Ten tickets for two developers on a slow server; a flush signalled after
/// three messages arrived.
fn interrupted(name: &str, expected: i32) {
    let options = ServerOptions {
        latency: Some(Duration::from_millis(80)),
        ..Default::default()
    };
    let sb = Sandbox::with(options, BASE_CONFIG);
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    for n in 0..10 {
        sb.ticket("dev", "high", &format!("ticket {n}"));
    }
    let total = 20;
    let child = spawn_flush(&sb);
    let before = sb.smtp.wait_for(3, Duration::from_secs(20));
    assert!(before.len() >= 3);
    signal(&child, name);
    let run = wait_bounded(child, Duration::from_secs(20)).code(expected);

    let sent = count(&sb, "sent");
    assert!(sent >= 3 && sent < total, "stopped mid-batch: {sent} sent");
    assert_eq!(count(&sb, "processing"), 0, "nothing left processing");
    assert_eq!(
        count(&sb, "pending"),
        total - sent,
        "the rest handed back as it was"
    );
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'pending' AND attempts > 0"),
        0,
        "no attempt counted for what was handed back"
    );
    assert_eq!(
        sb.smtp.received().len() as i64,
        sent,
        "every sent email arrived"
    );
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM flush_runs"),
        1,
        "the run is recorded"
    );
    let run = run.stderr_has(&format!(
        "interrupted: sent {sent}, handed back {} to the queue",
        total - sent
    ));
    assert!(!run.stderr.contains("possibly"), "{}", run.stderr);

    // The next flush sends the rest at once, and nothing twice.
    sb.run(["notify", "flush"]).success();
    assert_eq!(count(&sb, "sent"), total);
    let mail = sb.smtp.received();
    let ids: HashSet<String> = mail.iter().map(message_id).collect();
    assert_eq!((mail.len(), ids.len()), (total as usize, total as usize));
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM attempts WHERE outcome <> 'sent'"),
        0,
        "no lease_expired, no deferral: the log says only what happened"
    );
}

#[test]
fn sigint_hands_back_the_unsent_and_exits_130() {
    interrupted("INT", 130);
}

#[test]
fn sigterm_hands_back_the_unsent_and_exits_143() {
    interrupted("TERM", 143);
}

#[test]
fn a_second_signal_ends_the_flush_at_once() {
    let options = ServerOptions {
        misbehave: Misbehave::StallAfterMail,
        ..Default::default()
    };
    let sb = Sandbox::with(
        options,
        &BASE_CONFIG.replace("timeout_secs = 5", "timeout_secs = 30"),
    );
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "stalled");
    let started = Instant::now();
    let mut child = spawn_flush(&sb);
    // Wait for the state (a session open and waiting on MAIL), not for time.
    while sb.smtp.connections() == 0 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        sb.smtp.connections() > 0,
        "the flush never reached the server"
    );
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("the flush's state").is_none(),
        "the first signal ended the flush at once: it must wait for the message in flight"
    );
    signal(&child, "INT");
    wait_bounded(child, Duration::from_secs(10)).code(130);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the second signal did not wait for the 30 s timeout"
    );
}
