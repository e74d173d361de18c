//! One flush: claim due email in batches, render each event once, hand the
//! messages to a transport session, and record each outcome. This file
//! speaks of claims, leases and outcomes; what goes over the wire is the
//! transport's business.
//!
//! Why this cannot lose or double-send (SPEC §4):
//! - A claim moves a batch to `processing` with a lease and this run's claim
//!   token in one IMMEDIATE transaction, so no two flushes hold the same row.
//! - A message is *in flight* from the moment its last byte (SMTP's final
//!   `.`) is sent until its outcome is committed. Just before that last byte
//!   the transport asks the worker (`Feed::ready`), which makes sure it still
//!   holds the claim with time to spare, renewing the lease when it runs
//!   short; a timer also renews the leases of everything held while a reply
//!   is awaited. So a connection has at most one message in flight, and a
//!   killed flush can cause at most that one to be resent, with its
//!   Message-ID unchanged, after its lease expires.
//! - When the server cannot be reached (refused, or no answer within the
//!   timeout), the run stops sending: the email that met the failure is
//!   deferred with its attempt counted, every other one held is deferred in
//!   one step to the same time without counting an attempt, and nothing is
//!   left `processing`. A stalled server costs one timeout per run.
//! - Stopped early (`--max-time`, SIGINT, SIGTERM), a run lets no new
//!   message out, waits for the reply to the one in flight, and hands back
//!   every email it did not send, in the state it had before the claim.
//!
//! A run writes through one connection that its workers share (one writer
//! at a time, no lock waits between them), with `synchronous = NORMAL`: a
//! commit reaches the operating system at once, so a killed flush loses no
//! outcome, but the disk is not flushed for each message. A power cut can
//! only roll back the last outcomes, which makes those emails due again.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::Config;
use crate::model::{EventId, NotificationId, NotificationStatus};
use crate::notify::compose;
use crate::notify::message::{self, Outgoing, Prepared};
use crate::notify::policy::{self, Decision};
use crate::notify::transport::{self, Feed, Outcome, Unreachable};
use crate::render::Renderer;
use crate::store::events::EventRow;
use crate::store::notifications::{self, AttemptRecord, Claimed, FlushRun};
use crate::store::{Store, events, now_ms, suppressions, threads};

/// How many events' rendered emails a worker keeps at most.
const RENDERED_EVENTS_KEPT: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub limit: Option<u64>,
    pub max_time: Option<Duration>,
    pub concurrency: u16,
    /// Set (by a signal handler) to stop the run early: no new message is
    /// let out, and every email not sent is handed back.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Whether an email that did not go out will be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    Deferred,
    Failed,
}

/// One email deferred or failed on its own account (not for an outage).
#[derive(Debug, Clone)]
pub struct Problem {
    pub id: NotificationId,
    /// The address it was for.
    pub to: String,
    pub kind: ProblemKind,
    /// The server's reply or the error, as recorded in its attempt log.
    pub reason: String,
}

/// The server could not be reached: every email the run still held was
/// deferred to the same time.
#[derive(Debug, Clone)]
pub struct Outage {
    pub server: Unreachable,
    /// How many emails it deferred (all counted in `Report::deferred`).
    pub deferred: u64,
    /// When they are due again (milliseconds since the epoch).
    pub next_try_at: i64,
}

/// What a run did, in total.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub claimed: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    /// Claimed but handed back untried (`--max-time`, a signal).
    pub released: u64,
    /// Each email deferred or failed on its own account, in order.
    pub problems: Vec<Problem>,
    pub outage: Option<Outage>,
    /// The run was stopped by `Options::stop`.
    pub interrupted: bool,
}

/// Called after each outcome, with the running total (for a progress bar).
pub type Progress<'a> = &'a (dyn Fn(&Report) + Sync);

/// Runs a flush with `options.concurrency` workers, each with its own
/// transport session and claimed batches, and records the run.
pub fn run(
    store: &mut Store,
    config: &Config,
    env: &HashMap<String, String>,
    options: &Options,
    progress: Progress<'_>,
) -> Result<Report> {
    let started = now_ms();
    store.relax_durability()?;
    // One template environment for every worker.
    let renderer = &Renderer::new(config.templates_dir.as_deref())?;
    let workers = options.concurrency.max(1);
    let claims: Vec<String> = (0..workers)
        .map(|_| format!("{}-{:016x}", std::process::id(), fastrand::u64(..)))
        .collect();
    let shared = Shared {
        store: Mutex::new(store),
        report: Mutex::new(Report::default()),
        budget: Mutex::new(options.limit),
        started,
        deadline: options.max_time.map(|d| Instant::now() + d),
        hard_deadline: options.max_time.map(|d| {
            Instant::now() + d + Duration::from_secs(config.email.smtp.timeout_secs.max(1))
        }),
        stop: options.stop.clone(),
        done: AtomicBool::new(false),
        outcomes: Mutex::new(Outcomes::default()),
    };
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let keeper = scope.spawn(|| keep_leases(&shared, config, &claims));
        let handles: Vec<_> = claims
            .iter()
            .map(|claim| {
                let shared = &shared;
                scope.spawn(move || {
                    let mut transport = transport::from_config(config, env)?;
                    let mut worker = Worker::new(config, shared, progress, renderer, claim);
                    transport.send_all(&mut worker);
                    worker.finish()
                })
            })
            .collect();
        let results = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a flush worker panicked")))
            })
            .collect();
        shared.done.store(true, Ordering::Relaxed);
        let _ = keeper.join();
        results
    });
    let mut report = shared
        .report
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    report.interrupted = options
        .stop
        .as_ref()
        .is_some_and(|stop| stop.load(Ordering::Relaxed));
    // A worker whose outcome was in a failed group commit is not the one to say why.
    let mut errors: Vec<anyhow::Error> = results.into_iter().filter_map(Result::err).collect();
    if let Some(at) = errors
        .iter()
        .position(|e| e.downcast_ref::<GroupFailed>().is_none())
        .or((!errors.is_empty()).then_some(0))
    {
        return Err(errors.swap_remove(at));
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

/// Renews the lease of everything the run's workers hold, a third of a
/// lease at a time, until the run is done: a reply awaited for long (a slow
/// or stalled server) never lets another flush take over a live run's email.
fn keep_leases(shared: &Shared<'_>, config: &Config, claims: &[String]) {
    let lease = Duration::from_secs(config.queue.lease_secs.max(1));
    let every = lease / 3;
    let mut last = Instant::now();
    while !shared.done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        if last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        let (now, lease_ms) = (now_ms(), lease.as_millis() as i64);
        // A failure here is not the run's: the checks before each final `.` still hold.
        let _ = shared.store().in_tx(|tx| {
            claims
                .iter()
                .try_for_each(|claim| notifications::extend_claim(tx, claim, now, lease_ms))
        });
    }
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
    /// When the run must be over: `deadline` plus one command timeout (SPEC §4).
    hard_deadline: Option<Instant>,
    stop: Option<Arc<AtomicBool>>,
    /// Set when every worker has finished.
    done: AtomicBool,
    /// Outcomes waiting to be committed, from all workers (group commit).
    outcomes: Mutex<Outcomes>,
}

/// Outcomes handed in by the workers and not yet committed: whoever takes
/// the connection next commits them all in one transaction.
#[derive(Default)]
struct Outcomes {
    waiting: Vec<AttemptRecord>,
    /// How many outcomes were handed in so far (the last one's number).
    handed_in: u64,
    /// Every outcome numbered up to this one is committed.
    committed: u64,
    /// A group's commit failed: the run stops (as at any store error).
    failed: bool,
}

/// A worker's outcome was in a group whose commit failed; the worker that
/// ran the commit reports why.
#[derive(Debug)]
struct GroupFailed;

impl std::fmt::Display for GroupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("committed with other outcomes, whose commit failed")
    }
}

impl std::error::Error for GroupFailed {}

impl<'s> Shared<'s> {
    fn store(&self) -> MutexGuard<'_, &'s mut Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn report(&self) -> MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn outcomes(&self) -> MutexGuard<'_, Outcomes> {
        self.outcomes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits `attempt` and returns once it is committed (group commit):
    /// it joins the outcomes other workers handed in; whoever takes the
    /// connection next commits every one waiting in one transaction, so
    /// workers that finish a message together share one commit, and one
    /// whose outcome another committed does not wait for a commit of its
    /// own. Each worker still waits here for its own outcome, so each
    /// connection still has at most one message in flight.
    fn commit(&self, attempt: AttemptRecord) -> Result<()> {
        let attempt_id = attempt.id;
        let number = {
            let mut outcomes = self.outcomes();
            outcomes.waiting.push(attempt);
            outcomes.handed_in += 1;
            outcomes.handed_in
        };
        let mut store = self.store();
        let (group, last) = {
            let mut outcomes = self.outcomes();
            if outcomes.committed >= number {
                return Ok(());
            }
            if outcomes.failed {
                return Err(anyhow::Error::new(GroupFailed)).with_context(|| {
                    format!("could not record the outcome of email {}", attempt_id)
                });
            }
            (std::mem::take(&mut outcomes.waiting), outcomes.handed_in)
        };
        let committed = store.in_tx(|tx| notifications::record_attempts(tx, &group));
        let mut outcomes = self.outcomes();
        match committed {
            Ok(()) => {
                outcomes.committed = last;
                Ok(())
            }
            Err(e) => {
                outcomes.failed = true;
                Err(e).with_context(|| {
                    let ids: Vec<String> = group.iter().map(|a| a.id.to_string()).collect();
                    format!("could not record the outcome of email {}", ids.join(", "))
                })
            }
        }
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

    fn interrupted(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
    }

    /// When a worker found the server unreachable: the time every email
    /// still held is due again.
    fn outage_next_try(&self) -> Option<i64> {
        self.report().outage.as_ref().map(|o| o.next_try_at)
    }
}

/// One worker: the feed of one transport session.
struct Worker<'a, 's> {
    config: &'a Config,
    shared: &'a Shared<'s>,
    progress: Progress<'a>,
    renderer: &'a Renderer,
    claim: &'a str,
    lease: Duration,
    /// Claimed and not yet handed to the transport.
    waiting: VecDeque<Claimed>,
    /// Handed to the transport, outcome not yet heard, in order.
    out: VecDeque<Claimed>,
    /// Until when this run holds `waiting` and `out`, on this host's
    /// monotonic clock (taken before the database set the lease, so never
    /// later than the lease: the database's clock may be another host's).
    lease_deadline: Instant,
    /// Each event's email, rendered once for all its recipients with the
    /// same reason (the footer says why).
    rendered: HashMap<(EventId, Option<String>), Result<Rc<Prepared>, String>>,
    /// The events (with their ticket's thread root) that the current batch
    /// needs, read together (`fetch_events`).
    fetched: HashMap<EventId, (EventRow, Option<String>)>,
    /// The suppression list, read at the first email this run sends.
    suppressions: Option<suppressions::List>,
    /// The first error writing to the store: the worker stops at once.
    error: Option<anyhow::Error>,
}

impl Feed for Worker<'_, '_> {
    fn must_end_by(&self) -> Option<Instant> {
        self.shared.hard_deadline
    }

    fn next(&mut self) -> Option<Outgoing> {
        loop {
            if self.error.is_some() || self.stopping() {
                return None;
            }
            if self.waiting.is_empty() && !self.claim_batch() {
                return None;
            }
            let email = self.waiting.pop_front()?;
            if let Some(reason) = self.suppressed(&email) {
                self.failed(&email, &reason);
                continue;
            }
            match self.build(&email) {
                Ok(outgoing) => {
                    self.out.push_back(email);
                    return Some(outgoing);
                }
                Err(reason) => self.failed(&email, &reason),
            }
        }
    }

    fn ready(&mut self, key: i64) -> bool {
        if self.error.is_some() || self.shared.interrupted() || self.shared.out_of_time() {
            return false;
        }
        match self.keep_claim(key) {
            Ok(still_ours) => still_ours,
            Err(e) => {
                self.error = Some(e);
                false
            }
        }
    }

    fn outcome(&mut self, key: i64, outcome: Outcome) {
        let Some(at) = self.out.iter().position(|email| email.id.get() == key) else {
            return;
        };
        let Some(email) = self.out.remove(at) else {
            return;
        };
        if self.error.is_some() {
            // Left `processing`: its lease expires as after a kill.
            return;
        }
        if let Err(e) = self.record(&email, outcome) {
            self.error = Some(e);
        }
    }
}

impl<'a, 's> Worker<'a, 's> {
    fn new(
        config: &'a Config,
        shared: &'a Shared<'s>,
        progress: Progress<'a>,
        renderer: &'a Renderer,
        claim: &'a str,
    ) -> Worker<'a, 's> {
        Worker {
            config,
            shared,
            progress,
            renderer,
            claim,
            lease: Duration::from_secs(config.queue.lease_secs),
            waiting: VecDeque::new(),
            out: VecDeque::new(),
            lease_deadline: Instant::now(),
            rendered: HashMap::new(),
            fetched: HashMap::new(),
            suppressions: None,
            error: None,
        }
    }

    /// Whether to hand out no more messages.
    fn stopping(&self) -> bool {
        self.shared.out_of_time()
            || self.shared.interrupted()
            || self.shared.outage_next_try().is_some()
    }

    /// Claims the next batch; false when nothing more is due (or allowed).
    fn claim_batch(&mut self) -> bool {
        let want = self.shared.take(u64::from(self.config.queue.batch_size));
        if want == 0 {
            return false;
        }
        let asked = Instant::now();
        let request = notifications::ClaimRequest {
            now: now_ms(),
            run_started: self.shared.started,
            lease_ms: self.lease.as_millis() as i64,
            claim: self.claim,
            limit: want as u32,
        };
        // Everything this worker already holds (`waiting` is empty here, so
        // only what is in transmission) gets the new batch's lease in the
        // same transaction, so one deadline stands for all it holds.
        let held: Vec<NotificationId> = self.out.iter().map(|email| email.id).collect();
        let batch = self.shared.store().in_tx(|tx| {
            let batch = notifications::claim_due(tx, &request)?;
            notifications::renew(tx, request.claim, &held, request.now, request.lease_ms)?;
            Ok::<_, crate::store::StoreError>(batch)
        });
        let batch = match batch.context("could not claim due email") {
            Ok(batch) => batch,
            Err(e) => {
                self.error = Some(e);
                return false;
            }
        };
        self.shared.give_back(want - batch.len() as u64);
        if batch.is_empty() {
            return false;
        }
        self.fetch_events(&batch);
        self.lease_deadline = asked + self.lease;
        self.add(|r| r.claimed += batch.len() as u64);
        self.waiting.extend(batch);
        true
    }

    /// Reads the events (with their ticket's thread root) that `batch`
    /// needs, in one transaction: on SQLite a read of its own takes the
    /// database's locks, once per event, and a digest is an event of its
    /// own. Every email claimed before has been built, so what they needed
    /// goes. A read that fails (a damaged row) leaves the event to `render`,
    /// which fails that event's emails with the reason.
    fn fetch_events(&mut self, batch: &[Claimed]) {
        self.fetched.clear();
        // Also the events `rendered` holds now: it may forget them before
        // the batch is sent, and they are few (an event's emails come together).
        let mut needed: Vec<EventId> = batch.iter().map(|email| email.event_id).collect();
        needed.sort_unstable();
        needed.dedup();
        let read = self.shared.store().in_tx(|tx| {
            let mut fetched = HashMap::new();
            for &id in &needed {
                let Ok(Some(event)) = events::by_id(tx, id) else {
                    continue;
                };
                if let Ok(root) = threads::root(tx, event.ticket_id) {
                    fetched.insert(id, (event, root));
                }
            }
            Ok::<_, crate::store::StoreError>(fetched)
        });
        self.fetched = read.unwrap_or_default();
    }

    /// After the session: hands back (or, after an outage, defers) every
    /// email still held, and returns the first error met.
    fn finish(mut self) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let rest: Vec<Claimed> = self.out.drain(..).chain(self.waiting.drain(..)).collect();
        if rest.is_empty() {
            return Ok(());
        }
        let claim = self.claim;
        let outage = self.shared.report().outage.clone();
        match outage {
            Some(outage) => {
                let reason = format!("not tried: {}", outage.server.reason());
                self.shared.store().in_tx(|tx| {
                    rest.iter().try_for_each(|email| {
                        notifications::defer_untried(
                            tx,
                            email.id,
                            claim,
                            outage.next_try_at,
                            &reason,
                        )
                    })
                })?;
                self.add(|r| {
                    r.deferred += rest.len() as u64;
                    if let Some(outage) = r.outage.as_mut() {
                        outage.deferred += rest.len() as u64;
                    }
                });
            }
            None => {
                self.shared.store().in_tx(|tx| {
                    rest.iter()
                        .try_for_each(|email| notifications::release(tx, email.id, claim))
                })?;
                self.add(|r| r.released += rest.len() as u64);
            }
        }
        Ok(())
    }

    /// The message for one email, addressed as the running configuration says.
    fn build(&mut self, email: &Claimed) -> Result<Outgoing, String> {
        let content = self.content(email.event_id, email.reason.clone())?;
        let addressing = compose::addressing(
            self.config,
            email.id.get(),
            &email.to_addr,
            Some(email.message_id.as_str()),
            email.ticket_id,
        );
        message::build(&addressing, &content).map_err(|e| format!("{e:#}"))
    }

    /// `suppressed: <reason>` when the address this email would go to is
    /// on the suppression list: it fails without contacting the server.
    fn suppressed(&mut self, email: &Claimed) -> Option<String> {
        if self.suppressions.is_none() {
            match suppressions::List::load(self.shared.store().conn()) {
                Ok(list) => self.suppressions = Some(list),
                Err(e) => {
                    self.error =
                        Some(anyhow::Error::from(e).context("could not read the suppression list"));
                    return None;
                }
            }
        }
        super::policy::suppressed(self.config, self.suppressions.as_ref()?, &email.to_addr)
    }

    fn content(
        &mut self,
        event_id: EventId,
        reason: Option<String>,
    ) -> Result<Rc<Prepared>, String> {
        let key = (event_id, reason);
        if let Some(found) = self.rendered.get(&key) {
            return found.clone();
        }
        let rendered = self
            .render(event_id, key.1.as_deref())
            .map(|composed| Rc::new(composed.prepared))
            .map_err(|e| format!("could not render: {e:#}"));
        // The queue is sent in priority and age order, so an event's emails come
        // together; forgetting old events keeps memory flat on a large backlog.
        if self.rendered.len() >= RENDERED_EVENTS_KEPT {
            self.rendered.clear();
        }
        self.rendered.insert(key, rendered.clone());
        rendered
    }

    /// The email of an event for a recipient chosen for `reason`, with the
    /// ticket's thread root.
    fn render(&self, event_id: EventId, reason: Option<&str>) -> Result<compose::Composed> {
        if let Some((event, root)) = self.fetched.get(&event_id) {
            return compose::stored_event_email(
                self.renderer,
                self.config,
                event,
                reason,
                root.clone(),
            );
        }
        let (event, root) = {
            let store = self.shared.store();
            let event =
                events::by_id(store.conn(), event_id)?.context("its event record is missing")?;
            let root = threads::root(store.conn(), event.ticket_id)?;
            (event, root)
        };
        compose::stored_event_email(self.renderer, self.config, &event, reason, root)
    }

    /// An email that cannot be built: failed, without contacting anyone.
    fn failed(&mut self, email: &Claimed, reason: &str) {
        if let Err(e) = self.record(email, Outcome::Failed(reason.to_string())) {
            self.error = Some(e);
        }
    }

    /// Commits one outcome before anything else is sent: sent; deferred
    /// with backoff or failed, as the retry policy decides; handed back; or
    /// deferred for an outage.
    fn record(&mut self, email: &Claimed, outcome: Outcome) -> Result<()> {
        let at = now_ms();
        let attempts = email.attempts + 1;
        let transient = |reason: String| match policy::after_transient(
            &self.config.queue,
            email.created_at,
            attempts,
            at,
        ) {
            Decision::Retry { at: next } => {
                (NotificationStatus::Errored, Some(next), "deferred", reason)
            }
            Decision::GiveUp { reason: why } => (
                NotificationStatus::Failed,
                None,
                "failed",
                format!("{reason} ({why})"),
            ),
        };
        let mut outage = None;
        let (status, next_attempt_at, label, reply) = match outcome {
            Outcome::Sent(reply) => (
                NotificationStatus::Sent,
                None,
                "sent",
                self.redirect_note(email, reply),
            ),
            Outcome::Failed(reason) => (NotificationStatus::Failed, None, "failed", reason),
            Outcome::Deferred(reason) => transient(reason),
            Outcome::NotSent => {
                let claim = self.claim;
                self.shared
                    .store()
                    .in_tx(|tx| notifications::release(tx, email.id, claim))?;
                self.add(|r| r.released += 1);
                return Ok(());
            }
            Outcome::Unreachable {
                why,
                attempted: false,
            } => {
                return self.defer_for_outage(email, &why);
            }
            Outcome::Unreachable {
                why,
                attempted: true,
            } => {
                let decided = transient(why.reason());
                let next_try = decided.1.unwrap_or_else(|| {
                    at + policy::backoff_ms(self.config.queue.retry_backoff_secs, 1)
                });
                outage = Some((why, next_try));
                decided
            }
        };
        self.shared.commit(AttemptRecord {
            id: email.id,
            claim: self.claim.to_string(),
            at,
            status,
            next_attempt_at,
            outcome: label,
            reply: reply.clone(),
        })?;
        self.add(|report| {
            match status {
                NotificationStatus::Sent => report.sent += 1,
                NotificationStatus::Failed => report.failed += 1,
                _ => report.deferred += 1,
            }
            match outage {
                Some((server, next_try_at)) if status != NotificationStatus::Failed => {
                    note_outage(report, server, next_try_at, 1);
                }
                Some((server, next_try_at)) => {
                    note_outage(report, server, next_try_at, 0);
                    report
                        .problems
                        .push(problem(email, ProblemKind::Failed, reply));
                }
                None if status == NotificationStatus::Sent => {}
                None => {
                    let kind = if status == NotificationStatus::Failed {
                        ProblemKind::Failed
                    } else {
                        ProblemKind::Deferred
                    };
                    report.problems.push(problem(email, kind, reply));
                }
            }
        });
        Ok(())
    }

    /// Defers an email that waited behind one that met an unreachable server.
    fn defer_for_outage(&mut self, email: &Claimed, why: &Unreachable) -> Result<()> {
        let next_try = self.shared.outage_next_try().unwrap_or_else(|| {
            now_ms() + policy::backoff_ms(self.config.queue.retry_backoff_secs, 1)
        });
        let reason = format!("not tried: {}", why.reason());
        let claim = self.claim;
        self.shared
            .store()
            .in_tx(|tx| notifications::defer_untried(tx, email.id, claim, next_try, &reason))?;
        self.add(|r| {
            r.deferred += 1;
            note_outage(r, why.clone(), next_try, 1);
        });
        Ok(())
    }

    /// The attempt log's record of a message sent to `development_email`
    /// instead of the address it was queued for.
    fn redirect_note(&self, email: &Claimed, reply: String) -> String {
        let used = self.config.delivery_address(&email.to_addr);
        if used == email.to_addr {
            reply
        } else {
            format!(
                "{reply} (debug mode: sent to {used} instead of {})",
                email.to_addr
            )
        }
    }

    /// Makes sure this run still holds what it has claimed, with at least
    /// the send margin to spare (time for the server's final reply),
    /// renewing the lease when it runs short. False when another flush has
    /// taken email `key` over.
    fn keep_claim(&mut self, key: i64) -> Result<bool> {
        let asked = Instant::now();
        if asked + self.config.send_margin() < self.lease_deadline {
            return Ok(true);
        }
        // Never past one lease from now: a flush that dies must free its claim after `lease_secs`.
        let (now, lease_ms) = (now_ms(), self.lease.as_millis() as i64);
        let claim = self.claim;
        let held: Vec<NotificationId> = self
            .out
            .iter()
            .chain(&self.waiting)
            .map(|email| email.id)
            .collect();
        let still_ours = self.shared.store().in_tx(|tx| {
            notifications::renew(tx, claim, &held, now, lease_ms)?;
            notifications::holds(tx, NotificationId(key), claim)
        })?;
        self.lease_deadline = asked + self.lease;
        Ok(still_ours)
    }

    fn add(&self, change: impl FnOnce(&mut Report)) {
        let mut report = self.shared.report();
        change(&mut report);
        (self.progress)(&report);
    }
}

fn problem(email: &Claimed, kind: ProblemKind, reason: String) -> Problem {
    Problem {
        id: email.id,
        to: email.to_addr.clone(),
        kind,
        reason,
    }
}

/// Counts `deferred` emails into the run's outage, which keeps the earliest next try.
fn note_outage(report: &mut Report, server: Unreachable, next_try_at: i64, deferred: u64) {
    match report.outage.as_mut() {
        Some(outage) => {
            outage.deferred += deferred;
            outage.next_try_at = outage.next_try_at.min(next_try_at);
        }
        None => {
            report.outage = Some(Outage {
                server,
                deferred,
                next_try_at,
            })
        }
    }
}
