//! One flush: claim due email in batches, render each event once, send every
//! message through the transport, and write each outcome as it happens.
//!
//! Why this cannot lose or double-send (SPEC §4): a claim moves a batch to
//! `processing` with a lease in one IMMEDIATE transaction, so no two flushes
//! hold the same row; each outcome is committed before the next message is
//! sent, so a crash loses at most the in-flight message's record (that
//! message is resent after its lease, with its Message-ID unchanged); and
//! when the server cannot be reached, every message still held is written
//! back as `errored` before the run ends, so nothing is left `processing`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::Config;
use crate::model::NotificationStatus;
use crate::notify::content::{self, EmailContent};
use crate::notify::event::{EventData, EventKind};
use crate::notify::message::{self, Addressing};
use crate::notify::queue::backoff_ms;
use crate::notify::transport::{self, SendError, Transport};
use crate::render::Renderer;
use crate::store::notifications::{self, AttemptRecord, Claimed, FlushRun};
use crate::store::{Store, events, now_ms};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub limit: Option<u64>,
    pub max_time: Option<Duration>,
    pub concurrency: u16,
}

/// What a run did, in total.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub claimed: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    /// One line per email deferred or failed.
    pub problems: Vec<String>,
}

/// Called after each outcome, with the running total (for a progress bar).
pub type Progress<'a> = &'a (dyn Fn(&Report) + Sync);

/// Runs a flush with `options.concurrency` workers, each with its own
/// database connection, transport session and claimed batches.
pub fn run(
    db: &Path,
    config: &Config,
    env: &HashMap<String, String>,
    options: &Options,
    progress: Progress<'_>,
) -> Result<Report> {
    let started = now_ms();
    let deadline = options.max_time.map(|d| Instant::now() + d);
    let shared = Shared {
        report: Mutex::new(Report::default()),
        budget: Mutex::new(options.limit),
    };
    let workers = options.concurrency.max(1);
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| Worker::start(db, config, env, deadline, &shared, progress)?.run())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a flush worker panicked")))
            })
            .collect()
    });
    let report = shared
        .report
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(err) = results.into_iter().find_map(Result::err) {
        return Err(err);
    }
    if report.claimed > 0 {
        let mut store = Store::open(db)?;
        store.in_tx(|tx| {
            notifications::record_flush_run(
                tx,
                &FlushRun {
                    started_at: started,
                    finished_at: now_ms(),
                    claimed: report.claimed,
                    sent: report.sent,
                    deferred: report.deferred,
                    failed: report.failed,
                },
            )
        })?;
    }
    Ok(report)
}

/// What the workers of one run share.
struct Shared {
    report: Mutex<Report>,
    /// How many more emails this run may claim (`--limit`); None: no limit.
    budget: Mutex<Option<u64>>,
}

impl Shared {
    /// Takes up to `want` from the budget.
    fn take(&self, want: u64) -> u64 {
        let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        match budget.as_mut() {
            None => want,
            Some(left) => {
                let n = want.min(*left);
                *left -= n;
                n
            }
        }
    }

    fn give_back(&self, n: u64) {
        if let Some(left) = self
            .budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            *left += n;
        }
    }
}

struct Worker<'a> {
    store: Store,
    config: &'a Config,
    transport: Box<dyn Transport>,
    renderer: Renderer,
    claim: String,
    deadline: Option<Instant>,
    shared: &'a Shared,
    progress: Progress<'a>,
    /// Each event's email, rendered once for all its recipients.
    rendered: HashMap<i64, Result<EmailContent, String>>,
}

/// How the run should go on after one message.
enum Next {
    Continue,
    /// The server is unreachable: defer everything still held and stop.
    Stop(String),
}

impl<'a> Worker<'a> {
    fn start(
        db: &Path,
        config: &'a Config,
        env: &HashMap<String, String>,
        deadline: Option<Instant>,
        shared: &'a Shared,
        progress: Progress<'a>,
    ) -> Result<Worker<'a>> {
        Ok(Worker {
            store: Store::open(db)?,
            config,
            transport: transport::from_config(config, env)?,
            renderer: Renderer::new(config.templates_dir.as_deref())?,
            claim: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
            deadline,
            shared,
            progress,
            rendered: HashMap::new(),
        })
    }

    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn run(mut self) -> Result<()> {
        let lease = Duration::from_secs(self.config.queue.lease_secs);
        loop {
            if self.out_of_time() {
                break;
            }
            let want = self.shared.take(u64::from(self.config.queue.batch_size));
            if want == 0 {
                break;
            }
            let now = now_ms();
            let lease_until = now + lease.as_millis() as i64;
            let claim = self.claim.clone();
            let batch = self
                .store
                .in_tx(|tx| notifications::claim_due(tx, now, lease_until, &claim, want as u32))
                .context("could not claim due email")?;
            self.shared.give_back(want - batch.len() as u64);
            if batch.is_empty() {
                break;
            }
            self.add(|r| r.claimed += batch.len() as u64);
            let claimed_at = Instant::now();
            let mut lease_renewed_at = claimed_at;
            for (i, email) in batch.iter().enumerate() {
                if self.out_of_time() {
                    self.release(&batch[i..])?;
                    self.transport.close();
                    return Ok(());
                }
                // Keep the lease ahead of a slow server, so another flush never takes it over.
                if lease_renewed_at.elapsed() > lease / 2 {
                    let until = now_ms() + lease.as_millis() as i64;
                    self.store
                        .in_tx(|tx| notifications::extend_lease(tx, &claim, until))?;
                    lease_renewed_at = Instant::now();
                }
                if let Next::Stop(reason) = self.deliver(email)? {
                    for rest in &batch[i + 1..] {
                        self.record(rest, Err(SendError::Unreachable(reason.clone())))?;
                    }
                    self.transport.close();
                    return Ok(());
                }
            }
        }
        self.transport.close();
        Ok(())
    }

    /// Renders, sends and records one email.
    fn deliver(&mut self, email: &Claimed) -> Result<Next> {
        let outcome = match self.build(email) {
            Ok(outgoing) => self.transport.send(&outgoing),
            Err(reason) => Err(SendError::Permanent(reason)),
        };
        let next = match &outcome {
            Err(SendError::Unreachable(reason)) => Next::Stop(reason.clone()),
            _ => Next::Continue,
        };
        self.record(email, outcome)?;
        Ok(next)
    }

    /// The message for one email, addressed as the running configuration says.
    fn build(&mut self, email: &Claimed) -> Result<message::Outgoing, String> {
        let content = self.content(email.event_id)?;
        // A debug configuration can never mail a real user, whatever was queued.
        let to = match (&self.config.debug, &self.config.development_email) {
            (true, Some(dev)) => dev.as_str(),
            _ => email.to_addr.as_str(),
        };
        let addressing = Addressing {
            from: &self.config.default_from_email,
            to,
            message_id: Some(&email.message_id)
                .filter(|id| !id.is_empty())
                .map(String::as_str),
            ticket_id: Some(email.ticket_id),
        };
        message::build(&addressing, &content).map_err(|e| format!("{e:#}"))
    }

    fn content(&mut self, event_id: i64) -> Result<EmailContent, String> {
        if let Some(found) = self.rendered.get(&event_id) {
            return found.clone();
        }
        let rendered = self
            .render(event_id)
            .map_err(|e| format!("could not render: {e:#}"));
        self.rendered.insert(event_id, rendered.clone());
        rendered
    }

    fn render(&self, event_id: i64) -> Result<EmailContent> {
        let event =
            events::by_id(self.store.conn(), event_id)?.context("its event record is missing")?;
        let kind = EventKind::from_stored(&event.kind)
            .with_context(|| format!("unknown event kind `{}`", event.kind))?;
        let data = EventData::from_json(&event.data)?;
        content::email(
            &self.renderer,
            &self.config.site,
            kind,
            event.ticket_id,
            &data,
            &event.actor,
        )
    }

    /// Writes one outcome: sent, deferred with backoff, or failed.
    fn record(&mut self, email: &Claimed, outcome: Result<String, SendError>) -> Result<()> {
        let at = now_ms();
        let attempts = email.attempts + 1;
        let last_try = attempts >= i64::from(self.config.queue.max_attempts);
        let (status, next_attempt_at, label, reply) = match &outcome {
            Ok(reply) => (NotificationStatus::Sent, None, "sent", reply.clone()),
            Err(SendError::Permanent(reason)) => {
                (NotificationStatus::Failed, None, "failed", reason.clone())
            }
            Err(error) if last_try => (
                NotificationStatus::Failed,
                None,
                "failed",
                format!(
                    "{} (attempt {attempts} of {}, giving up)",
                    error.reason(),
                    self.config.queue.max_attempts
                ),
            ),
            Err(error) => (
                NotificationStatus::Errored,
                Some(at + backoff_ms(self.config.queue.retry_backoff_secs, attempts)),
                "deferred",
                error.reason().to_string(),
            ),
        };
        let claim = self.claim.clone();
        self.store
            .in_tx(|tx| {
                notifications::record_attempt(
                    tx,
                    &AttemptRecord {
                        id: email.id,
                        claim: &claim,
                        at,
                        status,
                        next_attempt_at,
                        outcome: label,
                        reply: &reply,
                    },
                )
            })
            .with_context(|| format!("could not record the outcome of email {}", email.id))?;
        self.add(|report| {
            match status {
                NotificationStatus::Sent => report.sent += 1,
                NotificationStatus::Failed => report.failed += 1,
                _ => report.deferred += 1,
            }
            if status != NotificationStatus::Sent {
                let verb = if status == NotificationStatus::Failed {
                    "failed"
                } else {
                    "deferred"
                };
                report.problems.push(format!(
                    "email {} to {} {verb}: {reply}",
                    email.id, email.to_addr
                ));
            }
        });
        Ok(())
    }

    /// Gives back what this run claimed but will not attempt.
    fn release(&mut self, rest: &[Claimed]) -> Result<()> {
        let claim = self.claim.clone();
        self.store.in_tx(|tx| {
            rest.iter()
                .try_for_each(|email| notifications::release(tx, email.id, &claim))
        })?;
        Ok(())
    }

    fn add(&self, change: impl FnOnce(&mut Report)) {
        let mut report = self.shared.report.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut report);
        (self.progress)(&report);
    }
}
