//! Soak: for `SOAK_SECS` seconds (default 60), tickets are created while
//! overlapping `notify flush` runs send to an SMTP server that answers at
//! random (accept, 4xx, 5xx, or a dropped connection) and some flushes are
//! SIGKILLed mid-run. Then the queue is drained and the ledger checked: every
//! email is `sent` once or `failed` with a reason, none is left `processing`,
//! none is lost, and a message reaches the server twice only when a flush
//! holding it was killed. Not part of the default run:
//!
//! ```sh
//! cargo test --release --test cli soak -- --ignored --nocapture
//! SOAK_SECS=600 SOAK_SEED=42 cargo test --release --test cli soak -- --ignored --nocapture
//! ```

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::smtp::Verdict;
use crate::support::*;

const DEVELOPERS: usize = 4;
/// Flushes running at once, at most.
const OVERLAP: usize = 3;
/// Chance that a flush is SIGKILLed, in percent, after 0 to `KILL_WITHIN_MS`.
const KILL_PERCENT: u32 = 35;
const KILL_WITHIN_MS: u64 = 600;

fn config() -> String {
    let admins: Vec<String> = (1..=DEVELOPERS)
        .map(|i| format!("[\"Dev {i}\", \"dev{i}@example.org\"]"))
        .collect();
    format!(
        r#"database = "helpdesk.db"
admins = [{}]
default_from_email = "Helpdesk <helpdesk@example.org>"

[email.smtp]
host = "127.0.0.1"
port = {{port}}
timeout_secs = 1

[queue]
batch_size = 5
max_attempts = 4
retry_backoff_secs = 1
lease_secs = 3
"#,
        admins.join(", ")
    )
}

/// A flush this test started.
struct Flush {
    child: Child,
    number: usize,
    kill_at: Option<Instant>,
    killed: bool,
}

#[derive(Default)]
struct Tally {
    started: u64,
    exit_0: u64,
    exit_3: u64,
    killed: u64,
    /// Flushes that ended otherwise: (number, exit status, stderr).
    errors: Vec<(usize, Option<i32>, String)>,
}

impl Tally {
    fn ended(&mut self, sb: &Sandbox, flush: &Flush, code: Option<i32>) {
        if flush.killed {
            self.killed += 1;
            return;
        }
        match code {
            Some(0) => self.exit_0 += 1,
            Some(3) => self.exit_3 += 1,
            other => {
                let stderr =
                    std::fs::read_to_string(sb.path(&format!("flush-{}.err", flush.number)))
                        .unwrap_or_default();
                self.errors.push((flush.number, other, stderr));
            }
        }
    }
}

/// Starts `notify flush` (with `--limit` when given), its output to files.
fn spawn_flush(sb: &Sandbox, number: usize, limit: Option<u64>) -> Child {
    let out = File::create(sb.path(&format!("flush-{number}.out"))).expect("a log file");
    let err = File::create(sb.path(&format!("flush-{number}.err"))).expect("a log file");
    let mut cmd = sb.command();
    cmd.args(["notify", "flush"]);
    if let Some(limit) = limit {
        cmd.args(["--limit", &limit.to_string()]);
    }
    cmd.stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn a flush")
}

/// Waits for a child at most `timeout`; SIGKILLs it (by its handle) past that.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a helpdesk process did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn bare_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

/// One email notification as the ledger holds it.
struct Row {
    status: String,
    message_id: String,
    last_error: Option<String>,
    sent_attempts: i64,
    failed_attempts_with_reason: i64,
    lease_expiries: i64,
}

fn ledger(sb: &Sandbox) -> HashMap<i64, Row> {
    let conn = rusqlite::Connection::open(sb.db()).expect("open the database");
    let mut stmt = conn
        .prepare(
            "SELECT n.id, n.status, n.message_id, n.last_error,
                    (SELECT count(*) FROM attempts a WHERE a.notification_id = n.id AND a.outcome = 'sent'),
                    (SELECT count(*) FROM attempts a WHERE a.notification_id = n.id
                        AND a.outcome = 'failed' AND length(a.reply) > 0),
                    (SELECT count(*) FROM attempts a WHERE a.notification_id = n.id
                        AND a.outcome = 'lease_expired')
               FROM notifications n WHERE n.channel = 'email'",
        )
        .expect("prepare");
    stmt.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            Row {
                status: row.get(1)?,
                message_id: bare_id(&row.get::<_, Option<String>>(2)?.unwrap_or_default()),
                last_error: row.get(3)?,
                sent_attempts: row.get(4)?,
                failed_attempts_with_reason: row.get(5)?,
                lease_expiries: row.get(6)?,
            },
        ))
    })
    .expect("query")
    .map(|r| r.expect("a row"))
    .collect()
}

fn open_emails(sb: &Sandbox) -> i64 {
    sb.sql_i64(
        "SELECT count(*) FROM notifications
          WHERE channel = 'email' AND status IN ('pending', 'errored', 'processing')",
    )
}

#[test]
#[ignore = "long: cargo test --release --test cli soak -- --ignored --nocapture"]
fn soak_random_replies_and_killed_flushes_lose_nothing_and_resend_only_in_flight_mail() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("soak: {secs} s, seed {seed} (SOAK_SEED={seed} repeats the server's answers)");

    // The server: 55 % accept, 20 % 451, 10 % 550, 15 % dropped connection, each
    // after 0-20 ms, so that kills land mid-send.
    let server_rng = Mutex::new(fastrand::Rng::with_seed(seed));
    let answers: [AtomicU64; 4] = Default::default();
    let answers = std::sync::Arc::new(answers);
    let counted = std::sync::Arc::clone(&answers);
    let options = ServerOptions::default().with_verdict(move |_, _| {
        let (roll, pause) = {
            let mut rng = server_rng.lock().unwrap_or_else(|p| p.into_inner());
            (rng.u32(0..100), rng.u64(0..20))
        };
        std::thread::sleep(Duration::from_millis(pause));
        let (slot, verdict) = match roll {
            0..55 => (0, Verdict::Accept),
            55..75 => (1, Verdict::Reply(451, "4.3.0 Try again later".into())),
            75..85 => (2, Verdict::Reply(550, "5.7.1 Rejected by policy".into())),
            _ => (3, Verdict::Drop),
        };
        counted[slot].fetch_add(1, Ordering::Relaxed);
        verdict
    });
    let sb = Sandbox::with(options, &config());
    for i in 1..=DEVELOPERS {
        sb.user(&format!("dev{i}"), &format!("dev{i}@example.org"));
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let created = AtomicU64::new(0);
    let create_errors = Mutex::new(Vec::<String>::new());
    let mut tally = Tally::default();
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);

    std::thread::scope(|scope| {
        // Two creators, each one `ticket create` after another.
        for creator in 0..2u64 {
            let (sb, created, create_errors) = (&sb, &created, &create_errors);
            scope.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(creator));
                let mut n = 0;
                while Instant::now() < deadline {
                    let priority = ["low", "medium", "high", "urgent"][rng.usize(0..4)];
                    let run = sb.run([
                        "ticket",
                        "create",
                        "--created-by",
                        "dev1",
                        "--purpose",
                        "app",
                        "--priority",
                        priority,
                        "--description",
                        &format!("soak ticket {creator}-{n}"),
                        "-q",
                    ]);
                    if run.code == 0 {
                        created.fetch_add(1, Ordering::Relaxed);
                    } else {
                        create_errors
                            .lock()
                            .unwrap()
                            .push(format!("exit {}: {}", run.code, run.stderr));
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(rng.u64(10..80)));
                }
            });
        }

        // Overlapping flushes, some killed.
        let mut running: Vec<Flush> = Vec::new();
        let mut next_spawn = Instant::now();
        let mut number = 0;
        while Instant::now() < deadline {
            let now = Instant::now();
            for flush in running.iter_mut() {
                if flush.kill_at.is_some_and(|at| now >= at) {
                    flush.kill_at = None;
                    if flush.child.try_wait().expect("try_wait").is_none() {
                        flush.child.kill().expect("SIGKILL a flush");
                        flush.killed = true;
                    }
                }
            }
            let mut still = Vec::new();
            for mut flush in running.drain(..) {
                match flush.child.try_wait().expect("try_wait") {
                    Some(status) => tally.ended(&sb, &flush, status.code()),
                    None => still.push(flush),
                }
            }
            running = still;
            if running.len() < OVERLAP && now >= next_spawn {
                number += 1;
                let kill_at = (rng.u32(0..100) < KILL_PERCENT)
                    .then(|| now + Duration::from_millis(rng.u64(0..KILL_WITHIN_MS)));
                // Short runs as well as long ones, so that many overlap and end.
                let limit = (rng.u32(0..100) < 70).then(|| rng.u64(5..80));
                running.push(Flush {
                    child: spawn_flush(&sb, number, limit),
                    number,
                    kill_at,
                    killed: false,
                });
                tally.started += 1;
                next_spawn = now + Duration::from_millis(rng.u64(0..250));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // The last flushes finish on their own.
        for mut flush in running {
            let code = wait_bounded(&mut flush.child, Duration::from_secs(120));
            tally.ended(&sb, &flush, code);
        }
    });
    let load_time = started.elapsed();

    // Drain: flush rounds until nothing is pending, errored or processing.
    let drain_started = Instant::now();
    let mut rounds = 0;
    while open_emails(&sb) > 0 {
        assert!(
            drain_started.elapsed() < Duration::from_secs(300) && rounds < 2000,
            "{} email still open after {rounds} drain rounds",
            open_emails(&sb)
        );
        let mut child = spawn_flush(&sb, 0, None);
        let code = wait_bounded(&mut child, Duration::from_secs(120));
        assert!(
            code == Some(0) || code == Some(3),
            "a drain flush ended with {code:?}: {}",
            std::fs::read_to_string(sb.path("flush-0.err")).unwrap_or_default()
        );
        rounds += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let drain_time = drain_started.elapsed();

    // The ledger.
    let rows = ledger(&sb);
    let tickets = created.load(Ordering::Relaxed);
    let mail = sb.smtp.received();
    let mut arrivals: HashMap<String, usize> = HashMap::new();
    for m in &mail {
        let id = bare_id(&m.header("Message-ID").expect("a Message-ID"));
        *arrivals.entry(id).or_default() += 1;
    }
    let stored: HashSet<&str> = rows.values().map(|r| r.message_id.as_str()).collect();
    let mut sent = 0;
    let mut failed = 0;
    let mut resent = 0;
    let mut resent_messages = 0;
    let mut taken_over = 0;
    let mut delivered_but_failed = 0;
    let mut problems = Vec::new();
    for (id, row) in &rows {
        let arrived = arrivals.get(&row.message_id).copied().unwrap_or(0);
        if row.lease_expiries > 0 {
            taken_over += 1;
        }
        match row.status.as_str() {
            "sent" => {
                sent += 1;
                if row.sent_attempts != 1 {
                    problems.push(format!("email {id}: {} `sent` attempts", row.sent_attempts));
                }
                if arrived == 0 {
                    problems.push(format!("email {id}: recorded sent, never arrived"));
                }
            }
            "failed" => {
                failed += 1;
                if row.last_error.as_deref().unwrap_or_default().is_empty()
                    || row.failed_attempts_with_reason == 0
                {
                    problems.push(format!("email {id}: failed without a recorded reason"));
                }
                if arrived > 0 {
                    delivered_but_failed += 1;
                    if row.lease_expiries == 0 {
                        problems.push(format!(
                            "email {id}: arrived but recorded failed, and no flush holding it died"
                        ));
                    }
                }
            }
            other => problems.push(format!("email {id}: left `{other}`")),
        }
        if arrived > 1 {
            resent += arrived - 1;
            resent_messages += 1;
            if row.lease_expiries == 0 {
                problems.push(format!(
                    "email {id}: arrived {arrived} times, but no flush holding it was killed"
                ));
            }
        }
    }
    for id in arrivals.keys() {
        if !stored.contains(id.as_str()) {
            problems.push(format!("message {id} arrived but is no stored email"));
        }
    }
    let expected = tickets * DEVELOPERS as u64;
    if rows.len() as u64 != expected {
        problems.push(format!(
            "{} email notifications for {tickets} tickets, expected {expected}",
            rows.len()
        ));
    }
    if resent as u64 > tally.killed {
        problems.push(format!(
            "{resent} resends, more than the {} killed flushes could have had in flight",
            tally.killed
        ));
    }
    let [accepted, deferred, refused, dropped] =
        answers.each_ref().map(|a| a.load(Ordering::Relaxed));

    println!("soak: load {load_time:.1?}, drain {drain_time:.1?} in {rounds} flush rounds");
    println!(
        "soak: tickets created {tickets}, create failures {}",
        create_errors.lock().unwrap().len()
    );
    println!(
        "soak: flushes started {}, exited 0: {}, exited 3: {}, SIGKILLed: {}, other: {}",
        tally.started,
        tally.exit_0,
        tally.exit_3,
        tally.killed,
        tally.errors.len()
    );
    println!(
        "soak: server answers: accepted {accepted}, 451 {deferred}, 550 {refused}, dropped {dropped}; connections {}",
        sb.smtp.connections()
    );
    println!(
        "soak: emails {} (expected {expected}): sent {sent}, failed {failed}, left open {}",
        rows.len(),
        rows.len() - sent - failed
    );
    println!(
        "soak: messages received {}, distinct {}; resent {resent} (of {resent_messages} emails), \
         taken over after a lease expired {taken_over}, arrived but recorded failed {delivered_but_failed}",
        mail.len(),
        arrivals.len()
    );

    let create_errors = create_errors.into_inner().unwrap();
    assert!(
        create_errors.is_empty(),
        "ticket create failed:\n{}",
        create_errors.join("\n")
    );
    assert!(
        tally.errors.is_empty(),
        "flushes ended with an error:\n{:#?}",
        tally.errors
    );
    assert!(
        problems.is_empty(),
        "{} ledger problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
