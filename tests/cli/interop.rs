//! Interoperability: the client against SMTP servers nobody on this project
//! wrote. Postfix's `smtp-sink` (with and without PIPELINING) and aiosmtpd
//! (plain, and with STARTTLS required) each receive a flush of real ticket
//! email, written to files that the test reads back.
//!
//! `.ci/run` installs both (Debian's `postfix` and `python3-aiosmtpd`). Where
//! one is missing, the test says so and passes, except under `CI=true`, where
//! a missing server fails the run: CI must never hide an untested guarantee.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Sandbox, certs};

/// A server process started by a test, stopped by its PID when dropped.
struct External {
    child: Child,
    /// Where the server writes each message it accepts.
    spool: tempfile::TempDir,
    port: u16,
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl External {
    /// The messages accepted so far, each as the file the server wrote.
    fn messages(&self, want: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(self.spool.path())
                .expect("read the spool")
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_none_or(|ext| ext != "tmp"))
                .collect();
            if files.len() >= want || Instant::now() >= deadline {
                files.sort();
                return files
                    .iter()
                    .map(|path| std::fs::read_to_string(path).expect("read a message"))
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A tool the test needs, or None (and a loud note) when it is not installed.
/// Under `CI=true` a missing tool fails the test.
fn tool(path: &str, package: &str) -> Option<PathBuf> {
    if Path::new(path).exists() {
        return Some(PathBuf::from(path));
    }
    let message = format!("{path} is missing: install Debian's `{package}` (.ci/run does)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("NOT RUN: {message}");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn wait_listening(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the SMTP server exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the SMTP server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A world-writable spool: smtp-sink, started as root, writes as `nobody`.
fn spool() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a spool folder");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("open the spool to the server's user");
    dir
}

/// Postfix's `smtp-sink`, dumping each transaction to a file; `-p` turns
/// PIPELINING off.
fn smtp_sink(pipelining: bool) -> Option<External> {
    let binary = tool("/usr/sbin/smtp-sink", "postfix")?;
    let spool = spool();
    let port = free_port();
    let mut command = Command::new(binary);
    command
        .arg("-u")
        .arg("nobody")
        .arg("-d")
        .arg(format!("{}/%M.", spool.path().display()));
    if !pipelining {
        command.arg("-p");
    }
    let mut child = command
        .arg(format!("127.0.0.1:{port}"))
        .arg("16")
        .stdout(Stdio::null())
        .spawn()
        .expect("start smtp-sink");
    wait_listening(port, &mut child);
    Some(External { child, spool, port })
}

/// aiosmtpd, through `tests/interop/aiosmtpd_sink.py`; with `tls`, STARTTLS
/// is offered and required. Returns the CA to trust too.
fn aiosmtpd(tls: bool) -> Option<(External, Option<String>)> {
    let python = tool("/usr/bin/python3", "python3")?;
    let has_module = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_module {
        tool("/nonexistent/python3-aiosmtpd", "python3-aiosmtpd")?;
    }
    let spool = spool();
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/aiosmtpd_sink.py");
    let mut command = Command::new(python);
    command.arg(script).arg(port.to_string()).arg(spool.path());
    let ca = if tls {
        let certs = certs::make();
        let cert = spool.path().join("server.crt.tmp");
        let key = spool.path().join("server.key.tmp");
        std::fs::write(&cert, &certs.server_cert_pem).unwrap();
        std::fs::write(&key, &certs.server_key_pem).unwrap();
        command.arg(cert).arg(key);
        Some(certs.ca_pem)
    } else {
        None
    };
    let mut child = command
        .stdout(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    wait_listening(port, &mut child);
    Some((External { child, spool, port }, ca))
}

/// A help desk whose transport points at `port`, with two developers, one
/// manager, and three tickets: six emails due.
fn help_desk(port: u16, smtp_extra: &str) -> Sandbox {
    let sb = Sandbox::new();
    sb.write_config(&format!(
        "database = \"helpdesk.db\"\n\
         admins = [[\"Dev One\", \"dev@example.org\"], [\"Dev Two\", \"dev2@example.org\"]]\n\
         default_from_email = \"Helpdesk <helpdesk@example.org>\"\n\
         [email.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntimeout_secs = 5\n{smtp_extra}"
    ));
    sb.user("dev", "dev@example.org");
    sb.user("dev2", "dev2@example.org");
    sb.manager("boss", "boss@example.org");
    for description in ["Printer on fire", "VPN drops", "Disk full"] {
        sb.ticket("boss", "high", description);
    }
    sb
}

/// Flushes, and checks that the server got each of the six emails exactly
/// once, whole, to the right recipient.
fn flush_and_check(sb: &Sandbox, server: &External) -> Vec<String> {
    let summary = sb
        .run(["notify", "flush", "--format", "json"])
        .success()
        .json();
    assert_eq!(summary["sent"], 6, "{summary}");
    assert_eq!(summary["deferred"], 0, "{summary}");
    let messages = server.messages(6);
    assert_eq!(messages.len(), 6, "the server kept {messages:#?}");
    let mut ids: Vec<&str> = messages
        .iter()
        .map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .expect("every message has a Message-ID")
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "a message arrived twice: {ids:?}");
    for recipient in ["dev@example.org", "dev2@example.org"] {
        let count = messages
            .iter()
            .filter(|m| m.contains(&format!("<{recipient}>")))
            .count();
        assert_eq!(count, 3, "{recipient} got {count} of 3");
    }
    for description in ["Printer on fire", "VPN drops", "Disk full"] {
        assert!(
            messages.iter().any(|m| m.contains(description)),
            "no message holds {description:?}"
        );
    }
    assert_eq!(
        sb.sql_i64(
            "SELECT count(*) FROM notifications WHERE channel = 'email' AND status <> 'sent'"
        ),
        0
    );
    messages
}

#[test]
fn smtp_sink_with_pipelining_gets_every_email_once() {
    let Some(server) = smtp_sink(true) else {
        return;
    };
    let sb = help_desk(server.port, "");
    flush_and_check(&sb, &server);
}

#[test]
fn smtp_sink_without_pipelining_gets_every_email_once() {
    let Some(server) = smtp_sink(false) else {
        return;
    };
    let sb = help_desk(server.port, "");
    flush_and_check(&sb, &server);
}

#[test]
fn aiosmtpd_gets_every_email_once() {
    let Some((server, _)) = aiosmtpd(false) else {
        return;
    };
    let sb = help_desk(server.port, "");
    let messages = flush_and_check(&sb, &server);
    assert!(messages.iter().all(|m| m.contains("X-Tls: no")));
}

#[test]
fn aiosmtpd_with_starttls_required_gets_every_email_encrypted() {
    let Some((server, ca)) = aiosmtpd(true) else {
        return;
    };
    let sb = help_desk(
        server.port,
        "security = \"starttls\"\nca_file = \"ca.pem\"\n",
    );
    std::fs::write(sb.path("ca.pem"), ca.expect("a CA for the TLS server")).unwrap();
    let messages = flush_and_check(&sb, &server);
    assert!(
        messages.iter().all(|m| m.contains("X-Tls: yes")),
        "a message went in clear"
    );
}

#[test]
fn notify_test_reaches_aiosmtpd() {
    let Some((server, _)) = aiosmtpd(false) else {
        return;
    };
    let sb = help_desk(server.port, "");
    sb.run(["notify", "test", "--to", "someone@example.org"])
        .success();
    let messages = server.messages(1);
    assert_eq!(messages.len(), 1);
    assert!(messages[0].contains("X-Rcpt-To: <someone@example.org>"));
}
