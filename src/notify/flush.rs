//! One flush: claim due email in batches, render each event once, send every
//! message through the transport, and record each outcome.
//!
//! Why this cannot lose or double-send (SPEC §4):
//! - A claim moves a batch to `processing` with a lease and this run's claim
//!   token in one IMMEDIATE transaction, so no two flushes hold the same row.
//! - A message is *in flight* from the moment its last byte (SMTP's final
//!   `.`) is sent until its outcome is committed. Before sending that last
//!   byte, the worker waits for the previous outcome's commit and makes sure
//!   it still holds this row's claim with time to spare (renewing the lease
//!   when it runs short). So at most one message per connection is ever in
//!   flight, and a killed flush can cause at most that one to be resent, with
//!   its Message-ID unchanged, after its lease expires.
//! - Outcomes are committed by a `Recorder` thread on its own connection
//!   while the worker already talks to the server about the next message, so
//!   the commit's disk flush overlaps the network round trips.
//! - When the server cannot be reached, every message still held is written
//!   back as `errored` before the run ends, so nothing is left `processing`.

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
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
                scope.spawn(|| {
                    let transport = transport::from_config(config, env)?;
                    Worker::start(db, config, started, deadline, &shared, progress)?.run(transport)
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
    recorder: Recorder,
    config: &'a Config,
    renderer: Renderer,
    claim: String,
    /// When this run began: email it deferred is not due again within it.
    started: i64,
    lease: Duration,
    deadline: Option<Instant>,
    shared: &'a Shared,
    progress: Progress<'a>,
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

impl<'a> Worker<'a> {
    fn start(
        db: &Path,
        config: &'a Config,
        started: i64,
        deadline: Option<Instant>,
        shared: &'a Shared,
        progress: Progress<'a>,
    ) -> Result<Worker<'a>> {
        Ok(Worker {
            store: Store::open(db)?,
            recorder: Recorder::start(db)?,
            config,
            renderer: Renderer::new(config.templates_dir.as_deref())?,
            claim: format!("{}-{:016x}", std::process::id(), fastrand::u64(..)),
            started,
            lease: Duration::from_secs(config.queue.lease_secs),
            deadline,
            shared,
            progress,
            rendered: HashMap::new(),
        })
    }

    fn run(mut self, mut transport: Box<dyn Transport>) -> Result<()> {
        let result = self.run_batches(transport.as_mut());
        transport.close();
        // Every outcome is committed before the run reports anything.
        let recorded = self.recorder.finish();
        result.and(recorded)
    }

    fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn run_batches(&mut self, transport: &mut dyn Transport) -> Result<()> {
        loop {
            if self.out_of_time() {
                return Ok(());
            }
            let want = self.shared.take(u64::from(self.config.queue.batch_size));
            if want == 0 {
                return Ok(());
            }
            let now = now_ms();
            let lease_until = now + self.lease.as_millis() as i64;
            let claim = self.claim.clone();
            let batch = self
                .store
                .in_tx(|tx| {
                    notifications::claim_due(
                        tx,
                        now,
                        self.started,
                        lease_until,
                        &claim,
                        want as u32,
                    )
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
            for (i, email) in batch.iter().enumerate() {
                if self.out_of_time() {
                    return self.release(&batch[i..]);
                }
                held.emails = &batch[i..];
                if let Next::Stop(reason) = self.deliver(transport, email, &mut held)? {
                    for rest in &batch[i + 1..] {
                        self.record(rest, Err(SendError::Unreachable(reason.clone())))?;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Renders, sends and records one email.
    fn deliver(
        &mut self,
        transport: &mut dyn Transport,
        email: &Claimed,
        held: &mut Held<'_>,
    ) -> Result<Next> {
        let outgoing = match self.build(email) {
            Ok(outgoing) => outgoing,
            Err(reason) => {
                self.record(email, Err(SendError::Permanent(reason)))?;
                return Ok(Next::Continue);
            }
        };
        let mut stopped: Option<anyhow::Error> = None;
        let mut lost = false;
        let outcome = {
            let (recorder, store, claim) = (&self.recorder, &mut self.store, self.claim.as_str());
            let (lease, margin) = (self.lease, self.config.send_margin());
            let mut ready = || match recorder
                .wait_all()
                .and_then(|()| keep_claim(store, held, claim, lease, margin))
            {
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
            transport.send(&outgoing, &mut ready)
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

    /// Hands one outcome (sent, deferred with backoff, or failed) to the recorder.
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
        self.recorder.submit(Outcome {
            id: email.id,
            claim: self.claim.clone(),
            at,
            status,
            next_attempt_at,
            label,
            reply,
        })
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

/// Makes sure this run still holds `held` with at least `margin` to spare
/// (time for the server's final reply), renewing the lease when it runs
/// short. False when another flush has taken the first email over.
fn keep_claim(
    store: &mut Store,
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
    let still_ours = store.in_tx(|tx| {
        notifications::extend_lease(tx, &ids, claim, until)?;
        match first {
            Some(id) => notifications::holds(tx, id, claim),
            None => Ok(true),
        }
    })?;
    held.lease_until = until;
    Ok(still_ours)
}

/// One outcome on its way to the database.
struct Outcome {
    id: i64,
    claim: String,
    at: i64,
    status: NotificationStatus,
    next_attempt_at: Option<i64>,
    label: &'static str,
    reply: String,
}

/// Commits outcomes on its own connection and thread, several at once when
/// they queue up, so that a commit's disk flush overlaps the next message's
/// network round trips. `wait_all` is the barrier a worker passes before it
/// lets another message out.
struct Recorder {
    sender: Option<mpsc::Sender<Outcome>>,
    progress: Arc<(Mutex<Committed>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Committed {
    submitted: u64,
    committed: u64,
    error: Option<String>,
}

impl Recorder {
    fn start(db: &Path) -> Result<Recorder> {
        let mut store = Store::open(db)?;
        let (sender, receiver) = mpsc::channel::<Outcome>();
        let progress = Arc::new((Mutex::new(Committed::default()), Condvar::new()));
        let shared = Arc::clone(&progress);
        let thread = std::thread::spawn(move || {
            while let Ok(first) = receiver.recv() {
                let mut outcomes = vec![first];
                outcomes.extend(receiver.try_iter());
                let result = store.in_tx(|tx| {
                    outcomes.iter().try_for_each(|o| {
                        notifications::record_attempt(
                            tx,
                            &AttemptRecord {
                                id: o.id,
                                claim: &o.claim,
                                at: o.at,
                                status: o.status,
                                next_attempt_at: o.next_attempt_at,
                                outcome: o.label,
                                reply: &o.reply,
                            },
                        )
                    })
                });
                let (lock, changed) = &*shared;
                let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
                match result {
                    Ok(()) => state.committed += outcomes.len() as u64,
                    Err(e) => {
                        let ids: Vec<String> = outcomes.iter().map(|o| o.id.to_string()).collect();
                        state.error = Some(format!(
                            "could not record the outcome of email {}: {e}",
                            ids.join(", ")
                        ));
                    }
                }
                changed.notify_all();
                if state.error.is_some() {
                    return;
                }
            }
        });
        Ok(Recorder {
            sender: Some(sender),
            progress,
            thread: Some(thread),
        })
    }

    fn submit(&self, outcome: Outcome) -> Result<()> {
        let (lock, _) = &*self.progress;
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(error) = &state.error {
            anyhow::bail!("{error}");
        }
        state.submitted += 1;
        drop(state);
        let sender = self.sender.as_ref().context("the recorder has stopped")?;
        sender
            .send(outcome)
            .map_err(|_| anyhow::anyhow!("the recorder has stopped"))
    }

    /// Waits until every outcome submitted so far is committed.
    fn wait_all(&self) -> Result<()> {
        let (lock, changed) = &*self.progress;
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(error) = &state.error {
                anyhow::bail!("{error}");
            }
            if state.committed >= state.submitted {
                return Ok(());
            }
            state = changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Commits what is left and stops the thread.
    fn finish(&mut self) -> Result<()> {
        let waited = self.wait_all();
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        waited
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
