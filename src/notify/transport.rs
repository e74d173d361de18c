//! The transport seam: one `Transport` trait, three ways to deliver built
//! messages (SMTP sessions, the local sendmail binary, a folder of `.eml`
//! files), and the one place that says what went wrong in words: deferred
//! (try again later), failed (never retry this message), or unreachable (try
//! again later, and send nothing more this run).
//!
//! A transport runs a whole *session*: it takes the stream of prepared
//! messages from a [`Feed`], asks the feed just before each message's point
//! of no return whether it may still go, and reports each message's
//! [`Outcome`]. Everything SMTP (connections, PIPELINING, announcing the next
//! message's envelope early, falling back to one command at a time when a
//! server's PIPELINING is broken, timeouts) stays in this file; the flush
//! speaks only of claims, leases and outcomes.

use std::collections::{HashMap, VecDeque};
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{Config, Security, TransportKind};
use crate::notify::message::Outgoing;

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; the server's reply (or what stands for it).
    Sent(String),
    /// Not accepted this time (a 4xx reply, a connection lost mid-message): try it again later.
    Deferred(String),
    /// Refused for good (a 5xx reply, or a message the server cannot take).
    Failed(String),
    /// Not let out, because the feed said not to: it can be handed back untried.
    NotSent,
    /// The server cannot be reached or stopped answering; the session is over.
    /// `attempted`: this message met the failure itself; otherwise it was
    /// only waiting behind the one that did.
    Unreachable { why: Unreachable, attempted: bool },
}

/// A server (or command, or folder) that cannot take mail now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// What could not be reached: `mail.example.org:587`, `sendmail \`/usr/sbin/sendmail\``.
    pub server: String,
    pub cause: Cause,
}

/// Why a server cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    Refused,
    /// No answer within this many seconds.
    Timeout(u64),
    /// Anything else, in words.
    Other(String),
}

impl Unreachable {
    /// Why, in a few words (`connection refused`, `no answer within 10 s`).
    pub fn why(&self) -> String {
        match &self.cause {
            Cause::Refused => "connection refused".into(),
            Cause::Timeout(secs) => format!("no answer within {secs} s"),
            Cause::Other(text) => text.clone(),
        }
    }

    /// The sentence kept as an email's last error.
    pub fn reason(&self) -> String {
        match &self.cause {
            Cause::Refused => format!("could not connect to {}: connection refused", self.server),
            Cause::Timeout(secs) => format!("no answer from {} within {secs} s", self.server),
            Cause::Other(text) => format!("{}: {text}", self.server),
        }
    }
}

/// Where a session takes its messages from, and tells what became of them.
pub trait Feed {
    /// The next message to send; `None` ends the session.
    fn next(&mut self) -> Option<Outgoing>;
    /// Asked just before message `key` reaches its point of no return (SMTP's
    /// final `.`); when it says no, the message is reported `NotSent`.
    fn ready(&mut self, key: i64) -> bool;
    /// What became of message `key`. Every message `next` handed out gets
    /// exactly one outcome, in the order they were handed out.
    fn outcome(&mut self, key: i64, outcome: Outcome);
    /// When the run must be over (`--max-time` plus one command timeout):
    /// no answer is waited for past it. None: no limit.
    fn must_end_by(&self) -> Option<Instant> {
        None
    }
}

pub trait Transport {
    /// Sends what `feed` hands out until it has no more or the server
    /// becomes unreachable (then the messages still held are reported
    /// `Unreachable` too, and the session ends), and closes the session.
    fn send_all(&mut self, feed: &mut dyn Feed);
}

/// Sends one message in a session of its own (`notify test`).
pub fn send_one(transport: &mut dyn Transport, message: Outgoing) -> Outcome {
    struct One {
        message: Option<Outgoing>,
        outcome: Option<Outcome>,
    }
    impl Feed for One {
        fn next(&mut self) -> Option<Outgoing> {
            self.message.take()
        }
        fn ready(&mut self, _key: i64) -> bool {
            true
        }
        fn outcome(&mut self, _key: i64, outcome: Outcome) {
            self.outcome = Some(outcome);
        }
    }
    let mut one = One {
        message: Some(message),
        outcome: None,
    };
    transport.send_all(&mut one);
    one.outcome.unwrap_or(Outcome::NotSent)
}

/// Builds the configured transport. Reads the SMTP password now (from the
/// variable or file the configuration names) and finds the sendmail
/// program now (on the `PATH` of `env`, checked as trusted), so a missing
/// secret or program is one error, in one wording, before anything is
/// claimed; the transport then runs the program it found.
pub fn from_config(config: &Config, env: &HashMap<String, String>) -> Result<Box<dyn Transport>> {
    let timeout = Duration::from_secs(config.email.smtp.timeout_secs.max(1));
    Ok(match config.email.transport {
        TransportKind::Smtp => Box::new(Smtp::new(config, env)?),
        TransportKind::Sendmail => Box::new(Sendmail {
            command: config.sendmail_command(env)?,
            timeout,
        }),
        TransportKind::File => {
            let dir = config.email.file.dir.clone();
            private_dir(&dir)
                .with_context(|| format!("could not create the mail folder `{}`", dir.display()))?;
            Box::new(Files { dir })
        }
    })
}

/// What `from_config` would refuse about the sendmail program, found the
/// same way, without building a transport (`config check`).
pub fn check(config: &Config, env: &HashMap<String, String>) -> Result<()> {
    if config.email.transport == TransportKind::Sendmail {
        config.sendmail_command(env)?;
    }
    Ok(())
}

// ---- SMTP ----------------------------------------------------------------------------------

/// What opening a session needs; shared with the thread that opens it.
struct Setup {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
}

struct Smtp {
    setup: Arc<Setup>,
    connection: Option<SmtpConnection>,
    /// Whether the open connection's server offers PIPELINING and this run
    /// has not found it broken.
    pipelining: bool,
    /// The server advertised PIPELINING but answered a pipelined group with
    /// a sequence error, or dropped part of one: one command at a time from
    /// now on.
    pipelining_broken: bool,
    /// The message whose MAIL, RCPT and DATA the open connection has already
    /// sent and had accepted: the server is waiting for its content.
    primed: Option<i64>,
}

/// How one message's transaction ended, as `send_all` acts on it.
enum Step {
    Done(Outcome),
    /// The server's PIPELINING is broken: send this message again, one command at a time.
    Retry,
    /// The server stopped answering, or went away, during this message.
    Unreachable(Unreachable),
}

/// Why a session could not be opened.
enum NotOpened {
    Unreachable(Unreachable),
    /// The run's time ran out first.
    OutOfTime,
}

/// One SMTP error, in the terms this file acts on.
enum Failure {
    Timeout,
    Reply {
        code: u16,
        text: String,
    },
    /// The connection broke or the server said something unreadable, in words.
    Broken(String),
}

impl Smtp {
    fn new(config: &Config, env: &HashMap<String, String>) -> Result<Smtp> {
        let smtp = &config.email.smtp;
        let tls = match smtp.security {
            Security::None => None,
            Security::Starttls | Security::Tls => {
                let mut builder = TlsParameters::builder(smtp.host.clone());
                if let Some(path) = &smtp.ca_file {
                    let pem = std::fs::read(path).with_context(|| {
                        format!("could not read `email.smtp.ca_file` `{}`", path.display())
                    })?;
                    let cert = Certificate::from_pem(&pem).with_context(|| {
                        format!("`{}` is not a PEM certificate", path.display())
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(builder.build().context("could not set up TLS")?)
            }
        };
        let credentials = match &smtp.username {
            Some(user) => Some(Credentials::new(user.clone(), read_password(config, env)?)),
            None => None,
        };
        Ok(Smtp {
            setup: Arc::new(Setup {
                host: smtp.host.clone(),
                port: smtp.port,
                security: smtp.security,
                tls,
                credentials,
                timeout: Duration::from_secs(smtp.timeout_secs.max(1)),
                hello: ClientId::default(),
            }),
            connection: None,
            pipelining: false,
            pipelining_broken: false,
            primed: None,
        })
    }

    fn server(&self) -> String {
        self.setup.server()
    }

    fn timed_out(&self) -> Unreachable {
        Unreachable {
            server: self.server(),
            cause: Cause::Timeout(self.setup.timeout.as_secs()),
        }
    }

    /// Opens a session. lettre waits for an answer to QUIT after a failed
    /// EHLO, which a stalled server never gives: the session is opened on a
    /// thread of its own, and given up once one step has waited a whole
    /// timeout (the thread then ends by itself). lettre's first step is the
    /// greeting and EHLO together, so a server that needs longer than one
    /// timeout for both is taken as stalled.
    fn open(&mut self, end_by: Option<Instant>) -> Result<(), NotOpened> {
        self.close();
        let progress = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        let (setup, step) = (Arc::clone(&self.setup), Arc::clone(&progress));
        std::thread::spawn(move || {
            let _ = tx.send(setup.open(started, &step));
        });
        let limit = self.setup.timeout + Duration::from_millis(250);
        let opened = loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(result) => break result,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(Cause::Other("could not open a session".into()));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let last = Duration::from_millis(progress.load(Ordering::Relaxed));
                    if started.elapsed().saturating_sub(last) > limit {
                        return Err(NotOpened::Unreachable(self.timed_out()));
                    }
                    if end_by.is_some_and(|end| Instant::now() >= end) {
                        return Err(NotOpened::OutOfTime);
                    }
                }
            }
        };
        let (conn, pipelining) = opened.map_err(|cause| {
            NotOpened::Unreachable(Unreachable {
                server: self.server(),
                cause,
            })
        })?;
        self.connection = Some(conn);
        self.pipelining = pipelining && !self.pipelining_broken;
        self.primed = None;
        Ok(())
    }

    /// Closes the open session at once, whatever state it is in.
    fn drop_connection(&mut self) {
        self.primed = None;
        if let Some(conn) = self.connection.take() {
            discard(conn);
        }
    }

    /// Ends the session: politely when the server is not waiting for content.
    fn close(&mut self) {
        if let Some(mut conn) = self.connection.take() {
            if self.primed.take().is_some() || conn.has_broken() {
                discard(conn);
            } else {
                let _ = conn.set_timeout(Some(Duration::from_secs(1)));
                let _ = conn.quit();
            }
        }
    }

    /// One message's transaction on the open connection: MAIL, RCPT and DATA
    /// (unless announced already: `primed`), then the dot-stuffed content
    /// with its final `.` line in a single write, carrying `next`'s MAIL,
    /// RCPT and DATA along when the server offers PIPELINING (RFC 2920
    /// allows commands after the content in one group). `next`'s content
    /// waits for its own turn, after `feed` has heard this outcome.
    ///
    /// Written by hand rather than with lettre's `send` for speed: lettre
    /// writes the content and the final `.` separately (with Nagle's
    /// algorithm the second waits for a delayed ACK, about 40 ms), and knows
    /// no PIPELINING. One round trip per message.
    fn transmit(
        &mut self,
        message: &Outgoing,
        next: Option<&Outgoing>,
        feed: &mut dyn Feed,
    ) -> Step {
        let server = self.server();
        let pipelining = self.pipelining;
        let primed = self.primed.take() == Some(message.key);
        let (timeout, end_by) = (self.setup.timeout, feed.must_end_by());
        let Some(conn) = self.connection.as_mut() else {
            return Step::Unreachable(Unreachable {
                server,
                cause: Cause::Other("no session".into()),
            });
        };
        if !primed {
            let out_of_time = bound(conn, timeout, end_by);
            let commands = match envelope_commands(conn, message) {
                Ok(commands) => commands,
                Err(why) => return Step::Done(Outcome::Failed(format!("{server}: {why}"))),
            };
            let refused = if pipelining {
                // One write; then MAIL's reply, each RCPT's, and DATA's, in order.
                send_group(conn, &commands.concat(), commands.len())
            } else {
                commands
                    .iter()
                    .find_map(|command| conn.command(command).err().map(|e| (0, failure(&e))))
            };
            if let Some((index, failure)) = refused {
                self.drop_connection();
                return match failure {
                    // The run's time ran out before the server answered: not sent.
                    Failure::Timeout if out_of_time => Step::Done(Outcome::NotSent),
                    // Nothing at all came back: the server stalls.
                    Failure::Timeout if index == 0 => Step::Unreachable(self.timed_out()),
                    // It answered the first command and dropped the rest of the group.
                    Failure::Timeout if pipelining => self.fall_back(),
                    Failure::Timeout => Step::Unreachable(self.timed_out()),
                    Failure::Reply { code, .. } if pipelining && sequence_error(code, index) => {
                        self.fall_back()
                    }
                    failure => Step::Done(refusal(&server, failure)),
                };
            }
        }
        if !feed.ready(message.key) {
            // The server waits for content: only closing the session takes the message back.
            self.drop_connection();
            return Step::Done(Outcome::NotSent);
        }
        let mut data = dot_stuffed(&message.raw);
        let announced = next
            .filter(|_| pipelining)
            .and_then(|next| envelope_commands(conn, next).ok().map(|c| (next.key, c)));
        if let Some((_, commands)) = &announced {
            data.push_str(&commands.concat());
        }
        let out_of_time = bound(conn, timeout, end_by);
        let reply = match conn.command(&data) {
            Ok(reply) => reply,
            Err(e) => {
                self.drop_connection();
                return match failure(&e) {
                    Failure::Timeout if out_of_time => Step::Done(Outcome::Deferred(format!(
                        "{server}: no answer before the run's time limit"
                    ))),
                    // The content went out and no verdict came back.
                    Failure::Timeout => Step::Unreachable(self.timed_out()),
                    failure => Step::Done(refusal(&server, failure)),
                };
            }
        };
        let sent = format!(
            "{} {}",
            reply.code(),
            reply.message().collect::<Vec<_>>().join(" ")
        );
        if let Some((key, commands)) = announced {
            // The next message's replies. Any refusal leaves the rest unread,
            // so the session is closed and the next message starts afresh
            // (and meets a refusal of its own again, in its own turn).
            let refused = (0..commands.len())
                .find_map(|index| conn.read_response().err().map(|e| (index + 1, failure(&e))));
            match refused {
                None => self.primed = Some(key),
                Some((_, Failure::Timeout)) if out_of_time => self.drop_connection(),
                Some((index, failure)) => {
                    if matches!(failure, Failure::Timeout)
                        || matches!(failure, Failure::Reply { code, .. } if sequence_error(code, index))
                    {
                        self.pipelining_broken = true;
                    }
                    self.drop_connection();
                }
            }
        }
        Step::Done(Outcome::Sent(sent))
    }

    /// This server's PIPELINING does not work: from now on one command at a
    /// time, on a new session.
    fn fall_back(&mut self) -> Step {
        self.pipelining_broken = true;
        self.pipelining = false;
        self.drop_connection();
        Step::Retry
    }
}

impl Setup {
    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Connects, does TLS as configured, asks whether the server offers
    /// PIPELINING (lettre does not keep that from its own EHLO; asked before
    /// AUTH, once), and authenticates when configured. `step` is set to the
    /// time since `started` after each step, for the caller's timeout.
    fn open(&self, started: Instant, step: &AtomicU64) -> Result<(SmtpConnection, bool), Cause> {
        let done = || step.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        let stopped = |what: &str, e: lettre::transport::smtp::Error| match failure(&e) {
            Failure::Timeout => Cause::Timeout(self.timeout.as_secs()),
            Failure::Broken(text) if text == "connection refused" => Cause::Refused,
            Failure::Broken(text) => Cause::Other(format!("{what}: {text}")),
            Failure::Reply { code, text } => Cause::Other(format!("{what}: {code} {text}")),
        };
        let implicit = if self.security == Security::Tls {
            self.tls.as_ref()
        } else {
            None
        };
        let mut conn = SmtpConnection::connect(
            (self.host.as_str(), self.port),
            Some(self.timeout),
            &self.hello,
            implicit,
            None,
        )
        .map_err(|e| stopped("could not connect", e))?;
        done();
        if self.security == Security::Starttls {
            let tls = self
                .tls
                .as_ref()
                .expect("STARTTLS security always builds TLS parameters");
            if !conn.can_starttls() {
                discard(conn);
                return Err(Cause::Other(
                    "the server does not offer STARTTLS; set `email.smtp.security` to match the server".into(),
                ));
            }
            conn.starttls(tls, &self.hello)
                .map_err(|e| stopped("STARTTLS failed", e))?;
            done();
        }
        let pipelining = offers_pipelining(&mut conn, &self.hello);
        done();
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .map_err(|e| stopped("authentication failed", e))?;
        }
        Ok((conn, pipelining))
    }
}

impl Transport for Smtp {
    fn send_all(&mut self, feed: &mut dyn Feed) {
        // Messages taken from the feed and not yet reported, in order.
        let mut queue: VecDeque<Outgoing> = VecDeque::new();
        while let Some(message) = queue.pop_front().or_else(|| feed.next()) {
            // A connection prepared for another message waits for that
            // message's content: it cannot carry this one.
            if self.primed.is_some_and(|key| key != message.key)
                || self
                    .connection
                    .as_ref()
                    .is_some_and(SmtpConnection::has_broken)
            {
                self.drop_connection();
            }
            if self.connection.is_none() {
                match self.open(feed.must_end_by()) {
                    Ok(()) => {}
                    Err(NotOpened::Unreachable(why)) => {
                        return unreachable(feed, message, queue, why);
                    }
                    Err(NotOpened::OutOfTime) => {
                        for held in std::iter::once(message).chain(queue) {
                            feed.outcome(held.key, Outcome::NotSent);
                        }
                        return;
                    }
                }
            }
            if self.pipelining && queue.is_empty() {
                queue.extend(feed.next());
            }
            match self.transmit(&message, queue.front(), feed) {
                Step::Done(outcome) => feed.outcome(message.key, outcome),
                Step::Retry => queue.push_front(message),
                Step::Unreachable(why) => return unreachable(feed, message, queue, why),
            }
        }
        self.close();
    }
}

/// Reports the message that met an unreachable server, and every one
/// waiting behind it.
fn unreachable(
    feed: &mut dyn Feed,
    message: Outgoing,
    queue: VecDeque<Outgoing>,
    why: Unreachable,
) {
    feed.outcome(
        message.key,
        Outcome::Unreachable {
            why: why.clone(),
            attempted: true,
        },
    );
    for rest in queue {
        feed.outcome(
            rest.key,
            Outcome::Unreachable {
                why: why.clone(),
                attempted: false,
            },
        );
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.close();
    }
}

/// Sets the connection's timeout for the next wait: the command timeout,
/// or less when the run must end sooner. True when the run's end is the
/// nearer limit. (Without a run limit the timeout set at connect stands.)
fn bound(conn: &mut SmtpConnection, timeout: Duration, end_by: Option<Instant>) -> bool {
    let Some(end) = end_by else {
        return false;
    };
    let left = end.saturating_duration_since(Instant::now());
    let wait = timeout.min(left).max(Duration::from_millis(1));
    let _ = conn.set_timeout(Some(wait));
    left < timeout
}

/// Writes a group of `count` commands at once and reads their replies in
/// order; the first refusal and its position in the group.
fn send_group(conn: &mut SmtpConnection, group: &str, count: usize) -> Option<(usize, Failure)> {
    if let Err(e) = conn.command(group) {
        return Some((0, failure(&e)));
    }
    (1..count).find_map(|index| conn.read_response().err().map(|e| (index, failure(&e))))
}

/// Whether a reply to the `index`-th command of a pipelined group says the
/// server did not take the group as a group (RFC 2920 servers never should):
/// 503 bad sequence anywhere, or 554 (a "synchronization error") to a
/// command after the first.
fn sequence_error(code: u16, index: usize) -> bool {
    code == 503 || (code == 554 && index > 0)
}

/// The outcome of a message the server refused or lost. A sequence error
/// (503) is the session's fault, never the message's: it is retried.
fn refusal(server: &str, failure: Failure) -> Outcome {
    match failure {
        Failure::Reply { code, text } if code >= 500 && code != 503 => {
            Outcome::Failed(format!("{server}: {code} {text}"))
        }
        Failure::Reply { code, text } => Outcome::Deferred(format!("{server}: {code} {text}")),
        Failure::Broken(text) => Outcome::Deferred(format!("{server}: {text}")),
        Failure::Timeout => Outcome::Deferred(format!("{server}: no answer")),
    }
}

/// What a lettre error means here, in words rather than in its or the OS's.
fn failure(e: &lettre::transport::smtp::Error) -> Failure {
    use std::error::Error as _;
    if let Some(code) = e.status() {
        let text = e.source().map(|s| s.to_string()).unwrap_or_default();
        let code = code.to_string().parse().unwrap_or(0);
        return Failure::Reply {
            code,
            text: crate::output::cell(text.trim(), 300),
        };
    }
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return match io.kind() {
                TimedOut | WouldBlock => Failure::Timeout,
                ConnectionRefused => Failure::Broken("connection refused".into()),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    Failure::Broken("the server closed the connection".into())
                }
                HostUnreachable | NetworkUnreachable => {
                    Failure::Broken("no route to the host".into())
                }
                _ => Failure::Broken(without_errno(&io.to_string())),
            };
        }
        source = err.source();
    }
    if e.is_response() {
        // lettre's "incomplete response": the stream ended mid-reply.
        return Failure::Broken("the server closed the connection".into());
    }
    let text = e
        .source()
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string());
    Failure::Broken(without_errno(&text))
}

/// An OS error's text without its ` (os error N)` tail, starting lowercase.
fn without_errno(text: &str) -> String {
    let text = match text.find(" (os error") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Closes a session at once, whatever state it is in. The server drops a
/// message whose content was not ended with its final `.`. (lettre's `abort`
/// says QUIT and waits for an answer, which never comes while the server
/// reads content: so it gets a moment, not the whole command timeout.)
fn discard(mut conn: SmtpConnection) {
    let _ = conn.set_timeout(Some(Duration::from_millis(1)));
    conn.abort();
}

/// MAIL, one RCPT per recipient, and DATA for a message, each a line.
/// Addresses with a non-ASCII domain go out in the domain's ASCII (IDNA)
/// form when the server does not offer SMTPUTF8.
fn envelope_commands(conn: &SmtpConnection, message: &Outgoing) -> Result<Vec<String>, String> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
    let info = conn.server_info();
    let smtputf8 = info.supports_feature(Extension::SmtpUtfEight);
    let envelope = &message.envelope;
    let mut parameters = Vec::new();
    let non_ascii_address = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
    if non_ascii_address && smtputf8 {
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !message.raw.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err("the message is not ASCII and the server does not offer 8BITMIME".into());
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let on_wire = |address: &lettre::Address| {
        if smtputf8 {
            Ok(address.clone())
        } else {
            ascii_address(address)
        }
    };
    let from = envelope.from().map(on_wire).transpose()?;
    let mut commands = vec![Mail::new(from, parameters).to_string()];
    for to in envelope.to() {
        commands.push(Rcpt::new(on_wire(to)?, Vec::new()).to_string());
    }
    commands.push(Data.to_string());
    Ok(commands)
}

/// An address as a server without SMTPUTF8 can take it: the domain in its
/// ASCII (IDNA) form; a non-ASCII local part has no such form.
fn ascii_address(address: &lettre::Address) -> Result<lettre::Address, String> {
    if AsRef::<str>::as_ref(address).is_ascii() {
        return Ok(address.clone());
    }
    if !address.user().is_ascii() {
        return Err(format!(
            "`{address}` has a non-ASCII local part and the server does not offer SMTPUTF8"
        ));
    }
    let domain = idna::domain_to_ascii(address.domain())
        .map_err(|_| format!("`{address}` has a domain with no ASCII form"))?;
    lettre::Address::new(address.user(), domain)
        .map_err(|_| format!("`{address}` has a domain with no ASCII form"))
}

/// Whether the server offers PIPELINING. lettre does not keep that from its
/// own EHLO, so ask again once per connection.
fn offers_pipelining(conn: &mut SmtpConnection, hello: &ClientId) -> bool {
    use lettre::transport::smtp::commands::Ehlo;
    conn.command(Ehlo::new(hello.clone()))
        .map(|reply| {
            reply
                .message()
                .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"))
        })
        .unwrap_or(false)
}

/// A message as DATA carries it: lines starting with `.` get another `.`,
/// and it ends with `CRLF.CRLF`. (A `String`, because lettre's `command`
/// takes text; built messages are UTF-8, their text comes from Rust strings.)
fn dot_stuffed(raw: &[u8]) -> String {
    let text = match std::str::from_utf8(raw) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(raw),
    };
    let mut out = String::with_capacity(text.len() + 16);
    // Only a `.` at the start of a line needs doubling; line breaks are
    // found with a byte search (memchr), the text copied once.
    let mut rest: &str = &text;
    loop {
        if rest.starts_with('.') {
            out.push('.');
        }
        match rest.find('\n') {
            Some(end) => {
                out.push_str(&rest[..=end]);
                rest = &rest[end + 1..];
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    out.push_str("\r\n.\r\n");
    out
}

/// The SMTP password, from the variable or the file the configuration names.
/// Error messages name where it was looked for, never what was found.
fn read_password(config: &Config, env: &HashMap<String, String>) -> Result<String> {
    let smtp = &config.email.smtp;
    if let Some(var) = &smtp.password_env {
        return match env.get(var) {
            Some(value) => Ok(value.clone()),
            None => bail!("`email.smtp.password_env` names `{var}`, which is not set"),
        };
    }
    if let Some(path) = &smtp.password_file {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "could not read `email.smtp.password_file` `{}`",
                path.display()
            )
        })?;
        return Ok(text.lines().next().unwrap_or_default().to_string());
    }
    bail!(
        "`email.smtp.username` is set but no password is configured: set `password_env` or `password_file`"
    )
}

// ---- sendmail and files --------------------------------------------------------------------

/// Sends each message the feed hands out with `send`, one at a time.
fn send_each(
    feed: &mut dyn Feed,
    mut send: impl FnMut(&Outgoing, Option<Instant>) -> Result<String, Sending>,
) {
    while let Some(message) = feed.next() {
        if !feed.ready(message.key) {
            feed.outcome(message.key, Outcome::NotSent);
            continue;
        }
        match send(&message, feed.must_end_by()) {
            Ok(reply) => feed.outcome(message.key, Outcome::Sent(reply)),
            Err(Sending::Deferred(reason)) => feed.outcome(message.key, Outcome::Deferred(reason)),
            Err(Sending::Unreachable(why)) => {
                return unreachable(feed, message, VecDeque::new(), why);
            }
        }
    }
}

/// Why sendmail or the folder did not take a message.
enum Sending {
    Deferred(String),
    Unreachable(Unreachable),
}

/// The local sendmail binary, run once per message as `sendmail -i -f FROM
/// -- TO…`, killed when it has not finished within the command timeout.
struct Sendmail {
    command: PathBuf,
    timeout: Duration,
}

impl Sendmail {
    fn server(&self) -> String {
        format!("sendmail `{}`", self.command.display())
    }

    fn send(&self, message: &Outgoing, end_by: Option<Instant>) -> Result<String, Sending> {
        use std::process::{Command, Stdio};
        let unreachable = |cause| {
            Sending::Unreachable(Unreachable {
                server: self.server(),
                cause,
            })
        };
        let mut command = Command::new(&self.command);
        command.arg("-i");
        if let Some(from) = message.envelope.from() {
            command.arg("-f").arg(AsRef::<str>::as_ref(from));
        }
        command
            .arg("--")
            .args(message.envelope.to().iter().map(ToString::to_string))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| {
            unreachable(Cause::Other(match e.kind() {
                std::io::ErrorKind::NotFound => "the command does not exist".into(),
                std::io::ErrorKind::PermissionDenied => "the command may not be run".into(),
                _ => without_errno(&e.to_string()),
            }))
        })?;
        // Written from a thread: a command that does not read must not block the wait below.
        let writer = child.stdin.take().map(|mut stdin| {
            let raw = message.raw.clone();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&raw);
            })
        });
        let timeout = Instant::now() + self.timeout;
        let deadline = end_by.map_or(timeout, |end| end.min(timeout));
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if deadline < timeout {
                        return Err(Sending::Deferred(format!(
                            "{}: did not finish before the run's time limit",
                            self.server()
                        )));
                    }
                    return Err(unreachable(Cause::Timeout(self.timeout.as_secs())));
                }
            }
        };
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        if status.success() {
            return Ok("accepted by sendmail".into());
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let said = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        let code = status.code().map_or_else(
            || "was killed".to_string(),
            |c| format!("exited with status {c}"),
        );
        Err(Sending::Deferred(if said.is_empty() {
            format!("{} {code}", self.server())
        } else {
            format!(
                "{} {code}: {}",
                self.server(),
                crate::output::cell(said.trim(), 300)
            )
        }))
    }
}

impl Transport for Sendmail {
    fn send_all(&mut self, feed: &mut dyn Feed) {
        send_each(feed, |message, end_by| self.send(message, end_by));
    }
}

/// A folder of `.eml` files, readable by the owner only (0600 in a 0700
/// folder), like the database.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn send(&self, message: &Outgoing) -> Result<String, Sending> {
        let path = self
            .dir
            .join(format!("{}-{:016x}.eml", message.key, fastrand::u64(..)));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&path)
            .and_then(|mut file| file.write_all(&message.raw))
            .map(|()| format!("written to {}", path.display()))
            .map_err(|e| {
                Sending::Unreachable(Unreachable {
                    server: format!("mail folder `{}`", self.dir.display()),
                    cause: Cause::Other(without_errno(&e.to_string())),
                })
            })
    }
}

impl Transport for Files {
    fn send_all(&mut self, feed: &mut dyn Feed) {
        send_each(feed, |message, _| self.send(message));
    }
}

/// Creates `dir` (and its parents) when missing, the folder itself 0700.
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_dots_are_doubled_and_the_end_is_marked() {
        assert_eq!(
            dot_stuffed(b".a\r\nb\r\n.\r\n..c"),
            "..a\r\nb\r\n..\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b"plain"), "plain\r\n.\r\n");
        assert_eq!(dot_stuffed(b"a\r\n"), "a\r\n\r\n.\r\n");
        assert_eq!(dot_stuffed(b"a\r\n."), "a\r\n..\r\n.\r\n");
        assert_eq!(dot_stuffed(b""), "\r\n.\r\n");
        assert_eq!(dot_stuffed(b"\n\n."), "\n\n..\r\n.\r\n");
    }

    #[test]
    fn international_domains_get_their_ascii_form() {
        let address: lettre::Address = "plain@exämple.org".parse().unwrap();
        assert_eq!(
            ascii_address(&address).unwrap().to_string(),
            "plain@xn--exmple-cua.org"
        );
        let local: lettre::Address = "jörg@example.org".parse().unwrap();
        assert!(ascii_address(&local).unwrap_err().contains("SMTPUTF8"));
    }

    #[test]
    fn sequence_errors_are_told_apart() {
        assert!(sequence_error(503, 0));
        assert!(sequence_error(554, 2));
        assert!(!sequence_error(554, 0));
        assert!(!sequence_error(550, 1));
    }

    #[test]
    fn os_error_numbers_are_left_out() {
        assert_eq!(
            without_errno("Resource temporarily unavailable (os error 11)"),
            "resource temporarily unavailable"
        );
    }
}
