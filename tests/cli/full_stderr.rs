//! A stderr that cannot be written (`2>/dev/full`, a closed or full log)
//! never turns a command into a crash: its work and exit status stand.

use crate::support::{BASE_CONFIG, Run, Sandbox, ServerOptions, smtp::Verdict};

/// Runs the binary with stderr on `/dev/full`, where every write fails.
fn with_full_stderr(sb: &Sandbox, args: &[&str]) -> Run {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");
    let mut cmd = sb.command();
    cmd.args(args).stderr(full);
    Run::from(cmd.output().expect("the helpdesk binary runs"))
}

#[test]
fn an_error_with_stderr_full_still_exits_1() {
    let sb = Sandbox::new();
    sb.user("dev", "dev@example.org");
    let run = with_full_stderr(&sb, &["ticket", "show", "999"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let run = with_full_stderr(&sb, &["ticket", "show", "#999"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
}

#[test]
fn a_flush_that_deferred_email_with_stderr_full_still_exits_3() {
    let sb = Sandbox::with(
        ServerOptions::default().with_verdict(|_, _| Verdict::Reply(451, "4.3.0 try later".into())),
        BASE_CONFIG,
    );
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Printer on fire");
    let run = with_full_stderr(&sb, &["notify", "flush"]);
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'errored'"),
        1
    );
}

#[test]
fn a_warning_with_stderr_full_does_not_stop_the_command() {
    let sb = Sandbox::new();
    // BASE_CONFIG's second admin has no account: creating a ticket warns.
    sb.user("dev", "dev@example.org");
    let run = with_full_stderr(
        &sb,
        &[
            "ticket",
            "create",
            "--created-by",
            "dev",
            "--purpose",
            "app",
            "--priority",
            "high",
            "--description",
            "Printer on fire",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("ticket #1 created"), "{}", run.stdout);
}
