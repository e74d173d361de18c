//! A real mail server in the loop (SPEC §6): Debian's Postfix, started with
//! its own configuration directory on a free loopback port, delivers mail
//! for the help desk's domain through its `pipe` transport into `helpdesk
//! mail receive`, and relays helpdesk's outgoing mail to the harness's SMTP
//! server (the catch-all mailbox). A ticket email goes out through Postfix;
//! a user replies through Postfix; the comment appears and its notifications
//! go out threaded. An address Postfix does not know gets Postfix's own
//! bounce, which fails the email and suppresses the address.
//!
//! Postfix must start as root (its daemons drop to `postfix`), and `pipe`
//! runs the command as `nobody`: so every helpdesk command here runs as
//! `nobody` too, on files `nobody` owns. `.ci/run` installs Postfix; without
//! it (or without root) the test says NOT RUN, except under `CI=true`, where
//! that fails. Everything it started is stopped by PID.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Run, Sandbox, ServerOptions, smtp::ReceivedMail};

const NOBODY: u32 = 65_534;

/// A Postfix instance under a test's temporary folder, stopped on drop.
struct Postfix {
    config_dir: PathBuf,
    queue_dir: PathBuf,
    log: PathBuf,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.config_dir)
            .arg("stop")
            .output();
        // `stop` asks the master to end; make sure it did, by its PID.
        let Some(pid) = std::fs::read_to_string(self.queue_dir.join("pid/master.pid"))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok())
        else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        // SAFETY: signal 0 only asks whether the process exists.
        while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: signals the master this test started, by its PID.
        unsafe {
            if libc::kill(pid, 0) == 0 {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

impl Postfix {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Whether this machine can run the test; says NOT RUN (or fails under CI) otherwise.
fn can_run() -> bool {
    let problem = if !Path::new("/usr/sbin/postfix").exists() {
        Some("/usr/sbin/postfix is missing: install Debian's `postfix` (.ci/run does)")
    // SAFETY: geteuid has no preconditions and cannot fail.
    } else if unsafe { libc::geteuid() } != 0 {
        Some("Postfix must be started as root")
    } else {
        None
    };
    match problem {
        None => true,
        Some(message) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{message}"),
        Some(message) => {
            eprintln!("NOT RUN: {message}");
            false
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// Starts Postfix in `dir`: SMTP on `port`, mail for `desk.test` piped into
/// helpdesk (`config` is its configuration file), `local.test` delivered
/// locally (no such users: each gets Postfix's bounce), everything else
/// relayed to the catch-all on `relay_port`.
fn start_postfix(dir: &Path, port: u16, relay_port: u16, config: &Path) -> Postfix {
    let config_dir = dir.join("etc");
    let queue_dir = dir.join("queue");
    let data_dir = dir.join("data");
    let log = dir.join("maillog");
    for sub in [&config_dir, &queue_dir, &data_dir] {
        std::fs::create_dir_all(sub).unwrap();
    }
    std::os::unix::fs::chown(&data_dir, Some(postfix_uid()), None).unwrap();
    let main_cf = format!(
        "compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = {log}
maillog_file_prefixes = {dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.desk.test
mydomain = desk.test
myorigin = desk.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination = desk.test, local.test
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [127.0.0.1]:{relay_port}
transport_maps = inline:{{ desk.test=helpdesk: }}
recipient_delimiter = +
local_recipient_maps =
alias_maps =
alias_database =
biff = no
helpdesk_destination_recipient_limit = 1
",
        queue = queue_dir.display(),
        data = data_dir.display(),
        log = log.display(),
        dir = dir.display(),
    );
    let master_cf = format!(
        "127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
helpdesk  unix  - n n - - pipe
  flags=DR user=nobody argv={binary} --config {config} mail receive
",
        binary = env!("CARGO_BIN_EXE_helpdesk"),
        config = config.display(),
    );
    std::fs::write(config_dir.join("main.cf"), main_cf).unwrap();
    std::fs::write(config_dir.join("master.cf"), master_cf).unwrap();
    let postfix = Postfix {
        config_dir,
        queue_dir,
        log,
    };
    let out = Command::new("/usr/sbin/postfix")
        .arg("-c")
        .arg(&postfix.config_dir)
        .arg("start")
        .output()
        .expect("run postfix start");
    assert!(
        out.status.success(),
        "postfix did not start ({}): {}{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        postfix.log()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "postfix did not listen on {port}:\n{}",
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    postfix
}

fn postfix_uid() -> u32 {
    let out = Command::new("id").args(["-u", "postfix"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a postfix user")
}

/// Runs helpdesk as `nobody`, as Postfix's pipe does.
fn run(sb: &Sandbox, args: &[&str]) -> Run {
    let mut cmd = sb.command();
    cmd.args(args).uid(NOBODY).gid(NOBODY);
    Run::from(cmd.output().expect("the helpdesk binary runs"))
}

/// Polls `args`' JSON until `done` says so (Postfix delivers in the background).
fn wait_json(
    sb: &Sandbox,
    postfix: &Postfix,
    args: &[&str],
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let value = run(sb, args).success().json();
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting on {args:?}: {value}\n--- maillog\n{}",
            postfix.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends a message to Postfix's SMTP port, as a user's mail client would.
fn submit(port: u16, from: &str, to: &str, message: &str) {
    use lettre::Transport;
    let envelope =
        lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
            .unwrap();
    lettre::SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .build()
        .send_raw(&envelope, message.as_bytes())
        .expect("postfix accepts the reply");
}

fn wait_mail(sb: &Sandbox, postfix: &Postfix, n: usize) -> Vec<ReceivedMail> {
    let mail = sb.smtp.wait_for(n, Duration::from_secs(60));
    assert!(
        mail.len() >= n,
        "{} of {n} emails arrived\n--- maillog\n{}",
        mail.len(),
        postfix.log()
    );
    mail
}

#[test]
fn a_conversation_and_a_bounce_through_postfix() {
    if !can_run() {
        return;
    }
    let smtp_port = free_port();
    let sb = Sandbox::without_database(
        ServerOptions::default(),
        &format!(
            r#"database = "helpdesk.db"
admins = [["Dev", "dev@example.org"], ["Gone", "gone@local.test"]]
default_from_email = "Helpdesk <help@desk.test>"

[site]
domain = "desk.test"

[email.smtp]
host = "127.0.0.1"
port = {smtp_port}
timeout_secs = 10

[email.inbound]
address = "help@desk.test"
"#
        ),
    );
    // The folder is `nobody`'s, so helpdesk (run as `nobody`) trusts its database.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(sb.dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let postfix_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(postfix_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let postfix = start_postfix(
        postfix_dir.path(),
        smtp_port,
        sb.smtp.port(),
        &sb.path("helpdesk.toml"),
    );

    run(&sb, &["init"]).success();
    for (name, email) in [
        ("dev", "dev@example.org"),
        ("gone", "gone@local.test"),
        ("dana", "dana@example.com"),
    ] {
        run(&sb, &["user", "add", name, "--email", email]).success();
    }
    run(
        &sb,
        &[
            "ticket",
            "create",
            "--created-by",
            "dana",
            "--purpose",
            "app",
            "--priority",
            "high",
            "--description",
            "Printer on fire",
        ],
    )
    .success();
    // Out through Postfix: dev's relayed to the catch-all, gone's bounced by Postfix.
    run(&sb, &["notify", "flush"]).success();
    let first = wait_mail(&sb, &postfix, 1);
    let new_ticket = first
        .iter()
        .find(|m| m.rcpt_to == ["dev@example.org"])
        .expect("dev's email");
    assert_eq!(
        new_ticket.subject(),
        "[#1] A new help desk ticket has been created"
    );
    let root = new_ticket.header("References").expect("References");
    assert!(
        root.starts_with("<ticket-1.") && root.ends_with("@desk.test>"),
        "{root}"
    );
    assert_eq!(
        new_ticket.header("Reply-To").as_deref(),
        Some("Helpdesk <help+1@desk.test>")
    );

    let suppressed = wait_json(
        &sb,
        &postfix,
        &["notify", "suppressed", "--format", "json"],
        |v| v.as_array().is_some_and(|a| !a.is_empty()),
    );
    assert_eq!(suppressed[0]["address"], "gone@local.test");
    let reason = suppressed[0]["reason"].as_str().unwrap().to_string();
    assert!(reason.starts_with("bounced: 5.1.1"), "{reason}");
    let bounces = run(
        &sb,
        &["mail", "list", "--action", "bounce", "--format", "json"],
    )
    .success()
    .json();
    assert_eq!(bounces[0]["ticket_id"], 1);
    assert_eq!(
        bounces[0]["from"].as_str().map(|f| f.to_ascii_lowercase()),
        Some("mailer-daemon@desk.test".into())
    );

    // dev replies through Postfix, as a mail client does.
    let reply = format!(
        "From: Dev <dev@example.org>\r\nTo: Helpdesk <help+1@desk.test>\r\nSubject: Re: {}\r\n\
         Date: Mon, 30 Nov 2026 10:00:00 +0000\r\nMessage-ID: <reply-1@example.org>\r\n\
         In-Reply-To: {}\r\nReferences: {root} {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         New toner is in.\r\n\r\nOn Mon, Helpdesk wrote:\r\n> Printer on fire\r\n",
        new_ticket.subject(),
        new_ticket.header("Message-ID").unwrap(),
        new_ticket.header("Message-ID").unwrap(),
    );
    submit(smtp_port, "dev@example.org", "help+1@desk.test", &reply);
    let ticket = wait_json(
        &sb,
        &postfix,
        &["ticket", "show", "1", "--format", "json"],
        |v| v["comments"].as_array().is_some_and(|c| !c.is_empty()),
    );
    assert_eq!(ticket["comments"][0]["author"], "dev");
    assert_eq!(ticket["comments"][0]["body"], "New toner is in.");

    // The comment's emails: dana's goes out in the same thread; gone's fails suppressed.
    run(&sb, &["notify", "flush"]).code(3);
    let mail = wait_mail(&sb, &postfix, 2);
    let to_dana = mail
        .iter()
        .find(|m| m.rcpt_to == ["dana@example.com"])
        .expect("dana's email");
    assert_eq!(to_dana.subject(), "New comment on help desk ticket #1");
    assert_eq!(to_dana.header("References").as_deref(), Some(root.as_str()));
    assert_eq!(
        to_dana.header("In-Reply-To").as_deref(),
        Some(root.as_str())
    );
    let failed = run(
        &sb,
        &["notify", "list", "--status", "failed", "--format", "json"],
    )
    .success()
    .json();
    let errors: Vec<&str> = failed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["last_error"].as_str())
        .collect();
    assert_eq!(errors.len(), 2, "{failed}");
    assert!(errors.contains(&reason.as_str()), "{errors:?}");
    assert!(
        errors.contains(&format!("suppressed: {reason}").as_str()),
        "{errors:?}"
    );
    assert_eq!(mail.len(), 2, "nothing else reached the catch-all");
}
