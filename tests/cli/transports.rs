//! The sendmail and file transports: a sendmail command that hangs is killed
//! after the command timeout, a missing one is named with its path, and
//! `.eml` files are readable by their owner only.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::support::*;

fn sendmail_sandbox(script: Option<&str>, timeout_secs: u64) -> (Sandbox, String) {
    let sb = Sandbox::new();
    let command = match script {
        Some(body) => {
            let path = sb.path("fake-sendmail");
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path.display().to_string()
        }
        None => sb.path("no-such-sendmail").display().to_string(),
    };
    sb.write_config(&format!(
        "{}\n[email]\ntransport = \"sendmail\"\n\n[email.sendmail]\ncommand = \"{command}\"\n",
        BASE_CONFIG.replace(
            "timeout_secs = 5",
            &format!("timeout_secs = {timeout_secs}")
        )
    ));
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.ticket("dev", "high", "Mail me");
    (sb, command)
}

fn next_try(sb: &Sandbox) -> String {
    crate::stalls::clock(
        sb.sql_i64("SELECT min(next_attempt_at) FROM notifications WHERE channel = 'email'"),
    )
}

#[test]
fn a_hanging_sendmail_is_killed_after_the_timeout() {
    let (sb, command) = sendmail_sandbox(
        Some(&format!("echo $$ > {}/pid\nexec sleep 30", "$(dirname $0)")),
        1,
    );
    let started = Instant::now();
    let run = sb
        .run_env(["notify", "flush", "--max-time", "3s"], &[("TZ", "UTC")])
        .code(3);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "one 1 s timeout, took {:?}",
        started.elapsed()
    );
    run.stderr_is(&format!(
        "sendmail `{command}` unreachable (no answer within 1 s): 2 emails deferred, next try at {}",
        next_try(&sb)
    ));
    assert_eq!(
        sb.sql_i64("SELECT count(*) FROM notifications WHERE status = 'processing'"),
        0
    );
    let pid = std::fs::read_to_string(sb.path("pid")).expect("the command ran");
    let alive = std::process::Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run kill -0");
    assert!(!alive.success(), "the hanging command was killed");
}

#[test]
fn a_missing_sendmail_stops_only_what_would_run_it() {
    let (sb, command) = sendmail_sandbox(None, 5);
    let expected = format!(
        "error: `{}`: `email.sendmail.command` `{command}` does not exist: install a mail server that provides it, or set `email.transport` to `smtp`",
        sb.path("helpdesk.toml").display()
    );
    // Tickets are still taken and their email queued.
    sb.ticket("dev2", "low", "Queued meanwhile");
    sb.run(["notify", "flush"]).code(1).stderr_is(&expected);
    sb.run(["notify", "test", "--to", "someone@example.org"])
        .code(1)
        .stderr_is(&expected);
    // Nothing was claimed or tried.
    assert_eq!(
        sb.sql_i64(
            "SELECT count(*) FROM notifications WHERE channel = 'email' AND status = 'pending' AND attempts = 0"
        ),
        sb.sql_i64("SELECT count(*) FROM notifications WHERE channel = 'email'")
    );
}

#[test]
fn a_failing_sendmail_defers_with_its_words() {
    let (sb, command) = sendmail_sandbox(Some("cat >/dev/null\necho 'queue full' >&2\nexit 75"), 5);
    let run = sb.run(["notify", "flush"]).code(3);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    for line in lines {
        assert!(
            line.ends_with(&format!(
                "deferred: sendmail `{command}` exited with status 75: queue full"
            )),
            "{line}"
        );
    }
}

#[test]
fn eml_files_are_written_0600_in_a_0700_folder() {
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "{BASE_CONFIG}\n[email]\ntransport = \"file\"\n\n[email.file]\ndir = \"outbox\"\n"
    ));
    sb.user("dev", "dev@example.org");
    sb.ticket("dev", "high", "Private");
    sb.run(["notify", "flush"]).success();
    let dir = sb.path("outbox");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "the folder");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(mode(&files[0]), 0o600, "the file");
}
