//! One flush: claim due email in batches, render each event once, send every
//! message through the transport, and record each outcome.
//!
//! Why this cannot lose or double-send (SPEC §4):
//! - A claim moves a batch to `processing` with a lease and this run's claim
//!   token in one IMMEDIATE transaction, so no two flushes hold the same row.
//! - A message is *in flight* from the moment its last byte (SMTP's final
//!   `.`) is sent until its outcome is committed, which happens before the
//!   next message is started. Just before that last byte, the worker makes
//!   sure it still holds the claim with time to spare, renewing the lease
//!   when it runs short. So a connection has at most one message in flight,
//!   and a killed flush can cause at most that one to be resent, with its
//!   Message-ID unchanged, after its lease expires.
//! - When the server cannot be reached, every message still held is written
//!   back as `errored` before the run ends, so nothing is left `processing`.
//!
//! A run writes through one connection that its workers share (one writer
//! at a time, no lock waits between them), with `synchronous = NORMAL`: a
//! commit reaches the operating system at once, so a killed flush loses no
//! outcome, but the disk is not flushed for each message. A power cut can
//! only roll back the last outcomes, which makes those emails due again.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::Config;
use crate::model::NotificationStatus;
use crate::notify::content::{self, EmailContent};
use crate::notify::event::{EventData, EventKind};
use crate::notify::message::{self, Addressing, Prepared};
use crate::notify::queue::backoff_ms;
use crate::notify::transport::{self, SendError, Transport};
use crate::render::Renderer;
use crate::store::notifications::{self, AttemptRecord, Claimed, FlushRun};
use crate::store::{Store, events, now_ms};

/// How many events' rendered emails a worker keeps at most.
const RENDERED_EVENTS_KEPT: usize = 64;

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
/// transport session and claimed batches.
pub fn run(
    store: &mut Store,
    config: &Config,
    env: &HashMap<String, String>,
    options: &Options,
    progress: Progress<'_>,
) -> Result<Report> {
    let started = now_ms();
    store.relax_durability()?;
    let shared = Shared {
        store: Mutex::new(store),
        report: Mutex::new(Report::default()),
        budget: Mutex::new(options.limit),
        started,
        deadline: options.max_time.map(|d| Instant::now() + d),
    };
    let workers = options.concurrency.max(1);
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let transport = transport::from_config(config, env)?;
                    Worker::new(config, &shared, progress)?.run(transport)
                })
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
        let store = shared
            .store
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
struct Shared<'s> {
    /// The run's connection; every write goes through it.
    store: Mutex<&'s mut Store>,
    report: Mutex<Report>,
    /// How many more emails this run may claim (`--limit`); None: no limit.
    budget: Mutex<Option<u64>>,
    /// When this run began: email it deferred is not due again within it.
    started: i64,
    deadline: Option<Instant>,
}

impl<'s> Shared<'s> {
    fn store(&self) -> MutexGuard<'_, &'s mut Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

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

    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

struct Worker<'a, 's> {
    config: &'a Config,
    shared: &'a Shared<'s>,
    progress: Progress<'a>,
    renderer: Renderer,
    claim: String,
    lease: Duration,
    /// Each event's email, rendered once for all its recipients.
    rendered: HashMap<i64, Result<Rc<Prepared>, String>>,
}

/// How the run should go on after one message.
enum Next {
    Continue,
    /// The server is unreachable: defer everything still held and stop.
    Stop(String),
}

/// The claimed emails not yet sent, and until when this run holds them.
struct Held<'b> {
    emails: &'b [Claimed],
    lease_until: i64,
}

impl<'a, 's> Worker<'a, 's> {
    fn new(
        config: &'a Config,
        shared: &'a Shared<'s>,
        progress: Progress<'a>,
    ) -> Result<Worker<'a, 's>> {
        Ok(Worker {
            config,
            shared,
            progress,
            renderer: Renderer::new(config.templates_dir.as_deref())?,
            claim: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
            lease: Duration::from_secs(config.queue.lease_secs),
            rendered: HashMap::new(),
        })
    }

    fn run(mut self, mut transport: Box<dyn Transport>) -> Result<()> {
        let result = self.run_batches(transport.as_mut());
        transport.close();
        result
    }

    fn run_batches(&mut self, transport: &mut dyn Transport) -> Result<()> {
        loop {
            if self.shared.out_of_time() {
                return Ok(());
            }
            let want = self.shared.take(u64::from(self.config.queue.batch_size));
            if want == 0 {
                return Ok(());
            }
            let now = now_ms();
            let lease_until = now + self.lease.as_millis() as i64;
            let (claim, started) = (self.claim.as_str(), self.shared.started);
            let batch = self
                .shared
                .store()
                .in_tx(|tx| {
                    notifications::claim_due(tx, now, started, lease_until, claim, want as u32)
                })
                .context("could not claim due email")?;
            self.shared.give_back(want - batch.len() as u64);
            if batch.is_empty() {
                return Ok(());
            }
            self.add(|r| r.claimed += batch.len() as u64);
            let mut held = Held {
                emails: &batch,
                lease_until,
            };
            // Each message is built one step ahead, so the transport can
            // announce it while the current one goes out.
            let mut upcoming: Option<(i64, Result<message::Outgoing, String>)> = None;
            for (i, email) in batch.iter().enumerate() {
                if self.shared.out_of_time() {
                    return self.release(&batch[i..]);
                }
                held.emails = &batch[i..];
                let current = match upcoming.take() {
                    Some((id, built)) if id == email.id => built,
                    _ => self.build(email),
                };
                let next = batch.get(i + 1).map(|next| (next.id, self.build(next)));
                let announce = next.as_ref().and_then(|(_, built)| built.as_ref().ok());
                let step = self.deliver(transport, email, current, announce, &mut held)?;
                upcoming = next;
                if let Next::Stop(reason) = step {
                    for rest in &batch[i + 1..] {
                        self.record(rest, Err(SendError::Unreachable(reason.clone())))?;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Sends one built email (announcing `next` to the transport) and records the outcome.
    fn deliver(
        &mut self,
        transport: &mut dyn Transport,
        email: &Claimed,
        built: Result<message::Outgoing, String>,
        next: Option<&message::Outgoing>,
        held: &mut Held<'_>,
    ) -> Result<Next> {
        let outgoing = match built {
            Ok(outgoing) => outgoing,
            Err(reason) => {
                self.record(email, Err(SendError::Permanent(reason)))?;
                return Ok(Next::Continue);
            }
        };
        let mut stopped: Option<anyhow::Error> = None;
        let mut lost = false;
        let outcome = {
            let (shared, claim) = (self.shared, self.claim.as_str());
            let (lease, margin) = (self.lease, self.config.send_margin());
            let mut ready = || match keep_claim(shared, held, claim, lease, margin) {
                Ok(true) => true,
                Ok(false) => {
                    lost = true;
                    false
                }
                Err(e) => {
                    stopped = Some(e);
                    false
                }
            };
            transport.send(&outgoing, next, &mut ready)
        };
        if let Some(e) = stopped {
            return Err(e);
        }
        if lost {
            // Another flush took this email over (our lease ran out): it is theirs to send.
            return Ok(Next::Continue);
        }
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
            key: email.id,
            from: &self.config.default_from_email,
            to,
            message_id: Some(&email.message_id)
                .filter(|id| !id.is_empty())
                .map(String::as_str),
            ticket_id: Some(email.ticket_id),
        };
        message::build(&addressing, &content).map_err(|e| format!("{e:#}"))
    }

    fn content(&mut self, event_id: i64) -> Result<Rc<Prepared>, String> {
        if let Some(found) = self.rendered.get(&event_id) {
            return found.clone();
        }
        let rendered = self
            .render(event_id)
            .map(|content| Rc::new(Prepared::new(&content)))
            .map_err(|e| format!("could not render: {e:#}"));
        // The queue is sent in priority and age order, so an event's emails come
        // together; forgetting old events keeps memory flat on a large backlog.
        if self.rendered.len() >= RENDERED_EVENTS_KEPT {
            self.rendered.clear();
        }
        self.rendered.insert(event_id, rendered.clone());
        rendered
    }

    fn render(&self, event_id: i64) -> Result<EmailContent> {
        let event = events::by_id(self.shared.store().conn(), event_id)?
            .context("its event record is missing")?;
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

    /// Commits one outcome (sent, deferred with backoff, or failed) before
    /// anything else is sent.
    fn record(&mut self, email: &Claimed, outcome: Result<String, SendError>) -> Result<()> {
        let at = now_ms();
        let attempts = email.attempts + 1;
        let max_attempts = self.config.queue.max_attempts;
        let (status, next_attempt_at, label, reply) = match outcome {
            Ok(reply) => (NotificationStatus::Sent, None, "sent", reply),
            Err(SendError::Permanent(reason)) => {
                (NotificationStatus::Failed, None, "failed", reason)
            }
            Err(error) if attempts >= i64::from(max_attempts) => (
                NotificationStatus::Failed,
                None,
                "failed",
                format!(
                    "{} (attempt {attempts} of {max_attempts}, giving up)",
                    error.reason()
                ),
            ),
            Err(error) => (
                NotificationStatus::Errored,
                Some(at + backoff_ms(self.config.queue.retry_backoff_secs, attempts)),
                "deferred",
                error.reason().to_string(),
            ),
        };
        let record = AttemptRecord {
            id: email.id,
            claim: &self.claim,
            at,
            status,
            next_attempt_at,
            outcome: label,
            reply: &reply,
        };
        self.shared
            .store()
            .in_tx(|tx| notifications::record_attempt(tx, &record))
            .with_context(|| format!("could not record the outcome of email {}", email.id))?;
        self.add(|report| {
            match status {
                NotificationStatus::Sent => report.sent += 1,
                NotificationStatus::Failed => report.failed += 1,
                _ => report.deferred += 1,
            }
            if status != NotificationStatus::Sent {
                // The reply is the server's text: one clean line on stderr.
                report.problems.push(format!(
                    "email {} to {} {label}: {}",
                    email.id,
                    email.to_addr,
                    crate::output::cell(&reply, 1000)
                ));
            }
        });
        Ok(())
    }

    /// Gives back what this run claimed but will not attempt.
    fn release(&mut self, rest: &[Claimed]) -> Result<()> {
        let claim = self.claim.as_str();
        self.shared.store().in_tx(|tx| {
            rest.iter()
                .try_for_each(|email| notifications::release(tx, email.id, claim))
        })?;
        Ok(())
    }

    fn add(&self, change: impl FnOnce(&mut Report)) {
        let mut report = self.shared.report.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut report);
        (self.progress)(&report);
    }
}

/// Makes sure this run still holds `held` with at least `margin` to spare
/// (time for the server's final reply), renewing the lease when it runs
/// short. False when another flush has taken the first email over.
fn keep_claim(
    shared: &Shared<'_>,
    held: &mut Held<'_>,
    claim: &str,
    lease: Duration,
    margin: Duration,
) -> Result<bool> {
    let now = now_ms();
    if now + (margin.as_millis() as i64) < held.lease_until {
        return Ok(true);
    }
    // Never past one lease from now: a flush that dies must free its claim after `lease_secs`.
    let until = now + lease.as_millis() as i64;
    let ids: Vec<i64> = held.emails.iter().map(|email| email.id).collect();
    let first = ids.first().copied();
    let still_ours = shared.store().in_tx(|tx| {
        notifications::extend_lease(tx, &ids, claim, until)?;
        match first {
            Some(id) => notifications::holds(tx, id, claim),
            None => Ok(true),
        }
    })?;
    held.lease_until = until;
    Ok(still_ours)
}
