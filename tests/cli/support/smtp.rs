//! A small, real SMTP server for integration tests, running on std threads inside the
//! test process and listening on `127.0.0.1:<ephemeral port>`.
//!
//! It speaks enough ESMTP for `lettre` 0.11 (and hand-written clients): EHLO/HELO,
//! STARTTLS or implicit TLS (rustls, with a throw-away CA and a certificate for
//! `localhost` / `127.0.0.1` made by rcgen), AUTH PLAIN (inline or after a `334`)
//! and AUTH LOGIN, MAIL FROM, several RCPT TO, DATA with dot-unstuffing, RSET, NOOP
//! and QUIT, several messages per connection and one thread per connection.
//! EHLO advertises 8BITMIME and SMTPUTF8 (lettre refuses to send non-ASCII mail
//! without them), STARTTLS when `Tls::StartTls` is set and not yet in TLS, and
//! `AUTH PLAIN LOGIN` when `auth` is set (also before STARTTLS).
//!
//! What happens after the final dot is decided by the optional verdict callback
//! (accept, reply with any code, or drop the connection silently); accepted
//! messages are stored and can be inspected and MIME-decoded (via `mail-parser`)
//! with the helpers on [`ReceivedMail`].
//!
//! Nothing here can hang a test: every socket has read/write timeouts
//! (`ServerOptions::io_timeout`, 30 s by default), lines and messages have size
//! limits, the accept loop polls a stop flag, and dropping the [`SmtpServer`] closes
//! the listener, shuts down every open connection and joins the threads (waiting
//! at most 5 s in all). Set `SMTP_TEST_TRACE=1` to print the dialogue
//! to stderr.
#![allow(dead_code)]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Longest command line (or AUTH response line) accepted, CRLF included.
const MAX_COMMAND_LINE: usize = 16 * 1024;
/// Longest line inside DATA (RFC 5321 says 1000; be lenient).
const MAX_DATA_LINE: usize = 1024 * 1024;
/// Largest message accepted; a bigger one gets 552 and the connection is closed.
const MAX_MESSAGE: usize = 32 * 1024 * 1024;
/// Commands per connection before the server gives up with 421 (a bound, not a feature).
const MAX_COMMANDS: usize = 100_000;
/// How often the accept loop and interruptible sleeps look at the stop flag.
const POLL: Duration = Duration::from_millis(5);
/// How long `Drop` waits, in all, for the connection threads after shutting their sockets.
const JOIN_WAIT: Duration = Duration::from_secs(5);

/// The name the server uses for itself in its replies.
const SERVER_NAME: &str = "localhost";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

/// How the server does TLS. (`StartTls` is the interface's name, hence the allow.)
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tls {
    /// Plain text only; STARTTLS is not offered.
    #[default]
    None,
    /// Plain text at first, STARTTLS advertised in EHLO (lettre `Tls::Required` /
    /// `Tls::Opportunistic`).
    StartTls,
    /// TLS from the first byte ("smtps", lettre `Tls::Wrapper`).
    Implicit,
}

/// Decides what happens to a message after its DATA ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Store it and reply `250`.
    Accept,
    /// Reply with this code and text instead of `250` (e.g. `451` or `550`); the message
    /// is not stored. The text may hold an enhanced status code, e.g. `"4.3.0 Try later"`.
    Reply(u16, String),
    /// Close the TCP connection without replying; the message is not stored.
    Drop,
}

/// The envelope of a message, as given to the verdict callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
}

/// Signature of the verdict callback: the envelope, and the 1-based number of messages
/// whose DATA completed on this server so far, this one included (over all connections).
pub type VerdictFn = dyn Fn(&Envelope, u64) -> Verdict + Send + Sync;

/// How to run the server. Use `..Default::default()` for the fields you don't set.
#[derive(Clone)]
pub struct ServerOptions {
    pub tls: Tls,
    /// When `Some((user, password))`: advertise `AUTH PLAIN LOGIN`; MAIL FROM before a
    /// successful AUTH gets `530 5.7.0 Authentication required`; wrong credentials get
    /// `535 5.7.8 Authentication credentials invalid`. When `None`, AUTH gets `502`.
    pub auth: Option<(String, String)>,
    /// Called after DATA ends; `None` accepts everything.
    pub verdict: Option<Arc<VerdictFn>>,
    /// Delay before each reply (greeting included), to make sends slow.
    pub latency: Option<Duration>,
    /// Read and write timeout of every connection (default 30 s): a silent client is
    /// disconnected after this long.
    pub io_timeout: Duration,
    /// Leave PIPELINING (RFC 2920) out of EHLO, for a client's one-command-at-a-time path.
    pub no_pipelining: bool,
    /// A scripted way to misbehave (a stalled or broken server).
    pub misbehave: Misbehave,
    /// Leave SMTPUTF8 out of EHLO, for a client's IDNA path.
    pub no_smtputf8: bool,
}

/// Scripted misbehaviour, for a client's timeouts and fallbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Misbehave {
    #[default]
    Nothing,
    /// Never answer EHLO (the greeting still comes).
    StallOnEhlo,
    /// Answer EHLO, then never answer MAIL.
    StallAfterMail,
    /// Advertise PIPELINING, but answer every command that arrived behind
    /// another one in the same read (a pipelined command) with this code.
    RejectPipelined(u16),
    /// Advertise PIPELINING, but silently drop every pipelined command.
    DropPipelined,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            tls: Tls::None,
            auth: None,
            verdict: None,
            latency: None,
            io_timeout: Duration::from_secs(30),
            no_pipelining: false,
            misbehave: Misbehave::Nothing,
            no_smtputf8: false,
        }
    }
}

impl ServerOptions {
    /// Convenience setter for `verdict` that does the `Arc` wrapping.
    pub fn with_verdict(
        mut self,
        f: impl Fn(&Envelope, u64) -> Verdict + Send + Sync + 'static,
    ) -> Self {
        self.verdict = Some(Arc::new(f));
        self
    }
}

impl fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerOptions")
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .field("verdict", &self.verdict.as_ref().map(|_| "<fn>"))
            .field("latency", &self.latency)
            .field("io_timeout", &self.io_timeout)
            .field("misbehave", &self.misbehave)
            .finish()
    }
}

/// One accepted message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The raw message as received: dot-unstuffed, CRLF line ends kept, without the
    /// final `.` line.
    pub data: String,
    /// Whether the connection was encrypted (STARTTLS done, or implicit TLS).
    pub tls: bool,
    /// The user name of a successful AUTH on this connection.
    pub authenticated_as: Option<String>,
    /// 1-based number of the TCP connection it came on (in accept order), to check
    /// connection reuse.
    pub connection: usize,
    /// The name the client gave in its last EHLO/HELO.
    pub hello: String,
}

/// A running SMTP server; it stops (and frees its port and threads) on drop.
pub struct SmtpServer {
    port: u16,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// A plain-text server that accepts everything.
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(ServerOptions::default())
    }

    /// A server with these options. Panics if it cannot bind or build its TLS setup.
    pub fn start_with(opts: ServerOptions) -> SmtpServer {
        let (tls_config, ca_pem) = match opts.tls {
            Tls::None => (None, None),
            Tls::StartTls | Tls::Implicit => {
                let (config, ca_pem) = make_tls_config();
                (Some(config), Some(ca_pem))
            }
        };
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("smtp test server: bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("smtp test server: local_addr")
            .port();
        // Non-blocking accept so that the loop can notice the stop flag.
        listener
            .set_nonblocking(true)
            .expect("smtp test server: set_nonblocking");
        let shared = Arc::new(Shared {
            opts,
            tls_config,
            trace: std::env::var_os("SMTP_TEST_TRACE").is_some(),
            stop: AtomicBool::new(false),
            data_count: AtomicU64::new(0),
            connection_count: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
            workers: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("smtp-accept-{port}"))
                .spawn(move || accept_loop(listener, shared))
                .expect("smtp test server: spawn accept thread")
        };
        SmtpServer {
            port,
            ca_pem,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `"127.0.0.1:<port>"`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// PEM of the CA that signed the server certificate (valid for `localhost` and
    /// `127.0.0.1`); `None` without TLS.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Accepted messages so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.shared.state().received.clone()
    }

    /// Waits until at least `n` messages were accepted or `timeout` passed, and returns
    /// all accepted messages (check the length: it can be less than `n`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        while state.received.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = match self.shared.arrived.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.received.clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connection_count.load(Ordering::SeqCst)
    }

    /// Number of messages whose DATA completed (accepted, refused or dropped).
    pub fn data_count(&self) -> u64 {
        self.shared.data_count.load(Ordering::SeqCst)
    }

    /// The verbs (`EHLO`, `AUTH`, `MAIL`, …) that came on connection `number`, in order.
    pub fn verbs(&self, number: usize) -> Vec<String> {
        self.shared
            .state()
            .verbs
            .iter()
            .filter(|(n, _)| *n == number)
            .map(|(_, verb)| verb.clone())
            .collect()
    }

    /// Every (user, password) pair that clients sent with AUTH, decoded, right or wrong.
    pub fn auth_attempts(&self) -> Vec<(String, String)> {
        self.shared.state().auth_attempts.clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // The accept loop sees the flag within POLL and drops the listener: the port is
        // free once this join returns, and no new worker can be registered after it.
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        // Unblock workers that wait for the client: their reads return EOF at once.
        for (socket, _) in &workers {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let deadline = Instant::now() + JOIN_WAIT;
        for (_, handle) in workers {
            while !handle.is_finished() && Instant::now() < deadline {
                thread::sleep(POLL);
            }
            // A worker stuck in a user callback is left detached rather than hanging Drop.
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding helpers on received mail (mail-parser)
// ---------------------------------------------------------------------------

impl ReceivedMail {
    fn parsed(&self) -> Option<mail_parser::Message<'_>> {
        mail_parser::MessageParser::default().parse(self.data.as_bytes())
    }

    /// The first top-level header with this name (case-insensitive), unfolded and with
    /// RFC 2047 encoded words decoded; address headers come back as text too, e.g.
    /// `Jöhn Dœ <john@example.com>`.
    pub fn header(&self, name: &str) -> Option<String> {
        let message = self.parsed()?;
        let raw = message
            .headers_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, raw)| raw.to_string())?;
        Some(decode_unstructured(&raw))
    }

    /// All top-level headers with this name, decoded like [`ReceivedMail::header`].
    pub fn headers(&self, name: &str) -> Vec<String> {
        let Some(message) = self.parsed() else {
            return Vec::new();
        };
        message
            .headers_raw()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, raw)| decode_unstructured(raw))
            .collect()
    }

    /// The decoded Subject, or `""`.
    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The top-level Content-Type value, e.g. `multipart/alternative; boundary="..."`,
    /// or `""`.
    pub fn content_type(&self) -> String {
        self.header("Content-Type").unwrap_or_default()
    }

    /// The first text/plain body part (not an attachment), with transfer encoding and
    /// charset undone and line ends turned from CRLF into `\n`; `""` if there is none.
    /// Parts of a multipart message come back exactly as the sender gave them; the body
    /// of a single-part message runs to the end of DATA and so may end with extra
    /// newlines (lettre's `.singlepart(..)` gives two): compare with `trim_end()` there.
    pub fn text_part(&self) -> String {
        self.try_text_part().unwrap_or_default()
    }

    /// Like [`ReceivedMail::text_part`] but `None` when there is no text/plain part.
    pub fn try_text_part(&self) -> Option<String> {
        let message = self.parsed()?;
        first_body(&message, false)
    }

    /// The first text/html body part (not an attachment), decoded like
    /// [`ReceivedMail::text_part`]; `""` if there is none.
    pub fn html_part(&self) -> String {
        self.try_html_part().unwrap_or_default()
    }

    /// Like [`ReceivedMail::html_part`] but `None` when there is no text/html part.
    pub fn try_html_part(&self) -> Option<String> {
        let message = self.parsed()?;
        first_body(&message, true)
    }
}

/// The first text/plain (or text/html) body part of `message`, CRLF turned into `\n`.
/// mail-parser lists the body parts to show in `text_bodies` / `html_bodies`; they can
/// hold a part of the other kind (an html-only mail has its html part in
/// `text_bodies`), hence the match on the part type.
fn first_body(message: &mail_parser::Message<'_>, html: bool) -> Option<String> {
    let ids = if html {
        &message.html_body
    } else {
        &message.text_body
    };
    let mut bodies = ids.iter().filter_map(|id| message.parts.get(*id as usize));
    bodies.find_map(|part| match (&part.body, html) {
        (mail_parser::PartType::Text(text), false) | (mail_parser::PartType::Html(text), true) => {
            Some(text.replace("\r\n", "\n"))
        }
        _ => None,
    })
}

/// Unfolds a raw header value and decodes its RFC 2047 encoded words.
fn decode_unstructured(raw: &str) -> String {
    let mut raw = raw.to_string();
    // mail-parser's unstructured parser ends a value at a newline not followed by space.
    if !raw.ends_with('\n') {
        raw.push_str("\r\n");
    }
    match mail_parser::parsers::MessageStream::new(raw.as_bytes()).parse_unstructured() {
        mail_parser::HeaderValue::Text(text) => text.trim().to_string(),
        _ => raw.trim().to_string(),
    }
}

// ---------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------

struct Shared {
    opts: ServerOptions,
    tls_config: Option<Arc<rustls::ServerConfig>>,
    trace: bool,
    stop: AtomicBool,
    /// Messages whose DATA completed (the verdict's counter).
    data_count: AtomicU64,
    connection_count: AtomicUsize,
    state: Mutex<State>,
    /// Notified whenever a message is stored.
    arrived: Condvar,
    /// A clone of each connection's socket (to shut it down on drop) and its thread.
    workers: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
}

#[derive(Default)]
struct State {
    received: Vec<ReceivedMail>,
    auth_attempts: Vec<(String, String)>,
    /// Every command's verb, with the number of the connection it came on.
    verbs: Vec<(usize, String)>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps for `d`, in slices, returning early when the server stops.
    fn pause(&self, d: Duration) {
        let deadline = Instant::now() + d;
        while !self.stopping() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            thread::sleep((deadline - now).min(POLL));
        }
    }
}

/// Locks a mutex, ignoring poisoning (a panicking verdict callback must not wedge
/// the other connections or the test's assertions).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _peer)) => {
                let number = shared.connection_count.fetch_add(1, Ordering::SeqCst) + 1;
                if let Err(e) = spawn_worker(stream, number, &shared) {
                    eprintln!("smtp test server: cannot start connection {number}: {e}");
                }
            }
            // WouldBlock (nothing to accept) or a transient error: poll again shortly.
            Err(_) => thread::sleep(POLL),
        }
    }
    // `listener` is dropped here, which closes the port.
}

fn spawn_worker(stream: TcpStream, number: usize, shared: &Arc<Shared>) -> io::Result<()> {
    // Accepted sockets may inherit non-blocking mode from the listener on some platforms.
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(shared.opts.io_timeout))?;
    stream.set_write_timeout(Some(shared.opts.io_timeout))?;
    let _ = stream.set_nodelay(true);
    let control = stream.try_clone()?;
    let worker_shared = Arc::clone(shared);
    let handle = thread::Builder::new()
        .name(format!("smtp-conn-{number}"))
        .spawn(move || {
            let mut session = Session::new(stream, number, &worker_shared);
            if let Err(e) = session.run() {
                worker_shared.trace_line(number, "!", &format!("connection ended: {e}"));
            }
            session.close();
        })?;
    let mut workers = lock(&shared.workers);
    // Forget finished workers so the list stays small on long runs.
    workers.retain(|(_, h)| !h.is_finished());
    workers.push((control, handle));
    Ok(())
}

impl Shared {
    fn trace_line(&self, conn: usize, dir: &str, line: &str) {
        if self.trace {
            eprintln!("[smtp #{conn}] {dir} {}", line.trim_end());
        }
    }
}

// ---------------------------------------------------------------------------
// TLS setup
// ---------------------------------------------------------------------------

/// Makes a fresh CA and a server certificate for `localhost` / `127.0.0.1` signed by it;
/// returns the rustls server config and the CA's PEM.
fn make_tls_config() -> (Arc<rustls::ServerConfig>, String) {
    let certs = super::certs::make();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        certs.server_key_der,
    ));
    // The provider is named explicitly, so this works whatever the process default is.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("rustls: protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certs.server_cert_der.into()], key)
        .expect("rustls: server certificate");
    (Arc::new(config), certs.ca_pem)
}

// ---------------------------------------------------------------------------
// One connection
// ---------------------------------------------------------------------------

/// The connection's byte stream, before or after TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// What the command loop does after a command.
enum Flow {
    Continue,
    Close,
}

struct Session<'a> {
    shared: &'a Shared,
    number: usize,
    conn: Conn,
    /// Bytes read from `conn` but not yet consumed as lines.
    buf: Vec<u8>,
    tls: bool,
    /// Name from the last EHLO/HELO; `None` before the first one (and after STARTTLS).
    hello: Option<String>,
    authenticated_as: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    /// Whether the last line read came from bytes already buffered behind
    /// an earlier one (a pipelined command), not from a read of its own.
    pipelined: bool,
}

impl<'a> Session<'a> {
    fn new(stream: TcpStream, number: usize, shared: &'a Shared) -> Self {
        Session {
            shared,
            number,
            conn: Conn::Plain(stream),
            buf: Vec::new(),
            tls: false,
            hello: None,
            authenticated_as: None,
            mail_from: None,
            rcpt_to: Vec::new(),
            pipelined: false,
        }
    }

    /// Waits, answering nothing, until the server stops or `io_timeout` passes.
    fn stall(&mut self) -> io::Result<Flow> {
        self.shared
            .trace_line(self.number, "!", "stalling (scripted)");
        self.shared.pause(self.shared.opts.io_timeout);
        Ok(Flow::Close)
    }

    fn run(&mut self) -> io::Result<()> {
        if self.shared.opts.tls == Tls::Implicit {
            self.start_tls()?;
        }
        self.reply(
            220,
            &format!("{SERVER_NAME} ESMTP helpdesk test server ready"),
        )?;
        for _ in 0..MAX_COMMANDS {
            if self.shared.stopping() {
                return self.reply(421, "4.3.2 Server shutting down");
            }
            let Some(line) = self.read_line(MAX_COMMAND_LINE)? else {
                return Ok(()); // client went away
            };
            let line = String::from_utf8_lossy(&line).into_owned();
            self.shared.trace_line(self.number, "C:", &line);
            if let Flow::Close = self.command(line.trim_end_matches(['\r', '\n']))? {
                return Ok(());
            }
        }
        self.reply(421, "4.7.0 Too many commands, closing")
    }

    /// Ends the connection: TLS close_notify if any, then a TCP shutdown.
    fn close(&mut self) {
        if let Conn::Tls(s) = &mut self.conn {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.conn.tcp().shutdown(Shutdown::Both);
    }

    fn command(&mut self, line: &str) -> io::Result<Flow> {
        let (verb, arg) = match line.split_once(' ') {
            Some((verb, arg)) => (verb, arg.trim()),
            None => (line, ""),
        };
        let verb = verb.to_ascii_uppercase();
        self.shared.state().verbs.push((self.number, verb.clone()));
        match (self.shared.opts.misbehave, verb.as_str()) {
            (Misbehave::StallOnEhlo, "EHLO") | (Misbehave::StallAfterMail, "MAIL") => {
                return self.stall();
            }
            (Misbehave::RejectPipelined(code), _) if self.pipelined => {
                self.reply(code, "5.5.0 Pipelined command refused")?;
                return Ok(Flow::Continue);
            }
            (Misbehave::DropPipelined, _) if self.pipelined => {
                self.shared
                    .trace_line(self.number, "!", "dropping a pipelined command");
                return Ok(Flow::Continue);
            }
            _ => {}
        }
        match verb.as_str() {
            "EHLO" => self.cmd_ehlo(arg)?,
            "HELO" => {
                if arg.is_empty() {
                    self.reply(501, "5.5.4 Syntax: HELO hostname")?;
                } else {
                    self.hello = Some(arg.to_string());
                    self.reset_transaction();
                    self.reply(250, SERVER_NAME)?;
                }
            }
            "STARTTLS" => self.cmd_starttls(arg)?,
            "AUTH" => return self.cmd_auth(arg),
            "MAIL" => self.cmd_mail(arg)?,
            "RCPT" => self.cmd_rcpt(arg)?,
            "DATA" => return self.cmd_data(),
            "RSET" => {
                self.reset_transaction();
                self.reply(250, "2.0.0 Ok")?;
            }
            "NOOP" => self.reply(250, "2.0.0 Ok")?,
            "QUIT" => {
                self.reply(221, "2.0.0 Bye")?;
                return Ok(Flow::Close);
            }
            "VRFY" | "EXPN" | "HELP" | "TURN" | "ETRN" | "BDAT" | "ATRN" | "SEND" | "SOML"
            | "SAML" => self.reply(502, "5.5.1 Command not implemented")?,
            _ => self.reply(500, "5.5.2 Syntax error, command unrecognized")?,
        }
        Ok(Flow::Continue)
    }

    fn cmd_ehlo(&mut self, arg: &str) -> io::Result<()> {
        if arg.is_empty() {
            return self.reply(501, "5.5.4 Syntax: EHLO hostname");
        }
        self.hello = Some(arg.to_string());
        self.reset_transaction();
        let mut lines = vec![
            format!("{SERVER_NAME} greets {arg}"),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            format!("SIZE {MAX_MESSAGE}"),
        ];
        if !self.shared.opts.no_smtputf8 {
            lines.push("SMTPUTF8".to_string());
        }
        if !self.shared.opts.no_pipelining {
            // Commands are read one line at a time from a buffer, so a group of
            // them (and content followed by commands) is handled in order.
            lines.push("PIPELINING".to_string());
        }
        if self.shared.opts.tls == Tls::StartTls && !self.tls {
            lines.push("STARTTLS".to_string());
        }
        if self.shared.opts.auth.is_some() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        self.reply_lines(250, &lines)
    }

    fn cmd_starttls(&mut self, arg: &str) -> io::Result<()> {
        if self.shared.opts.tls != Tls::StartTls || self.tls {
            return self.reply(502, "5.5.1 STARTTLS not available");
        }
        if !arg.is_empty() {
            return self.reply(501, "5.5.4 Syntax: STARTTLS");
        }
        self.reply(220, "2.0.0 Ready to start TLS")?;
        self.start_tls()?;
        // RFC 3207: forget everything learnt before TLS; the client must EHLO again.
        self.hello = None;
        self.authenticated_as = None;
        self.reset_transaction();
        Ok(())
    }

    /// Wraps the TCP stream in a rustls server connection (the handshake runs on the
    /// first read). Bytes pipelined before the handshake are discarded.
    fn start_tls(&mut self) -> io::Result<()> {
        let config = self
            .shared
            .tls_config
            .clone()
            .ok_or_else(|| io::Error::other("TLS is not configured"))?;
        let tls = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
        let tcp = self.conn.tcp().try_clone()?;
        self.conn = Conn::Tls(Box::new(rustls::StreamOwned::new(tls, tcp)));
        self.buf.clear();
        self.tls = true;
        Ok(())
    }

    fn cmd_auth(&mut self, arg: &str) -> io::Result<Flow> {
        let Some((want_user, want_pass)) = self.shared.opts.auth.clone() else {
            self.reply(502, "5.5.1 AUTH not available")?;
            return Ok(Flow::Continue);
        };
        if self.hello.is_none() {
            self.reply(503, "5.5.1 Send EHLO first")?;
            return Ok(Flow::Continue);
        }
        if self.authenticated_as.is_some() {
            self.reply(503, "5.5.1 Already authenticated")?;
            return Ok(Flow::Continue);
        }
        if self.mail_from.is_some() {
            self.reply(503, "5.5.1 AUTH not allowed during a mail transaction")?;
            return Ok(Flow::Continue);
        }
        let (mechanism, initial) = match arg.split_once(' ') {
            Some((m, rest)) => (m.to_ascii_uppercase(), Some(rest.trim().to_string())),
            None => (arg.to_ascii_uppercase(), None),
        };
        let credentials = match mechanism.as_str() {
            "PLAIN" => {
                // Inline initial response, or ask for it with an empty 334 challenge.
                let Some(response) = self.sasl_response(initial, "")? else {
                    return Ok(Flow::Close);
                };
                response.and_then(|bytes| {
                    // authzid \0 authcid \0 passwd
                    let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
                    match parts.as_slice() {
                        [_authzid, user, pass] => Ok((
                            String::from_utf8_lossy(user).into_owned(),
                            String::from_utf8_lossy(pass).into_owned(),
                        )),
                        _ => Err("5.5.2 Malformed PLAIN response"),
                    }
                })
            }
            "LOGIN" => {
                // "Username:" and "Password:", base64-encoded.
                let Some(user) = self.sasl_response(initial, "VXNlcm5hbWU6")? else {
                    return Ok(Flow::Close);
                };
                match user {
                    Err(e) => Err(e),
                    Ok(user) => {
                        let Some(pass) = self.sasl_response(None, "UGFzc3dvcmQ6")? else {
                            return Ok(Flow::Close);
                        };
                        pass.map(|pass| {
                            (
                                String::from_utf8_lossy(&user).into_owned(),
                                String::from_utf8_lossy(&pass).into_owned(),
                            )
                        })
                    }
                }
            }
            "" => Err("5.5.4 Syntax: AUTH mechanism [initial-response]"),
            _ => {
                self.reply(504, "5.5.4 Unrecognized authentication type")?;
                return Ok(Flow::Continue);
            }
        };
        match credentials {
            Err(text) => self.reply(501, text)?,
            Ok((user, pass)) => {
                self.shared
                    .state()
                    .auth_attempts
                    .push((user.clone(), pass.clone()));
                if user == want_user && pass == want_pass {
                    self.authenticated_as = Some(user);
                    self.reply(235, "2.7.0 Authentication successful")?;
                } else {
                    self.reply(535, "5.7.8 Authentication credentials invalid")?;
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// One SASL step: uses `initial` if given, else sends `334 <challenge>` and reads a
    /// line. Returns `None` if the client went away, `Some(Err(reply text))` for a
    /// cancelled or undecodable response, else the decoded bytes.
    #[allow(clippy::type_complexity)]
    fn sasl_response(
        &mut self,
        initial: Option<String>,
        challenge: &str,
    ) -> io::Result<Option<Result<Vec<u8>, &'static str>>> {
        let response = match initial {
            Some(r) => r,
            None => {
                self.reply(334, challenge)?;
                let Some(line) = self.read_line(MAX_COMMAND_LINE)? else {
                    return Ok(None);
                };
                let line = String::from_utf8_lossy(&line).trim().to_string();
                self.shared.trace_line(self.number, "C:", &line);
                line
            }
        };
        Ok(Some(match response.as_str() {
            "*" => Err("5.7.0 Authentication cancelled"),
            "=" => Ok(Vec::new()), // RFC 4954: empty initial response
            r => base64::engine::general_purpose::STANDARD
                .decode(r)
                .map_err(|_| "5.5.2 Cannot decode response"),
        }))
    }

    fn cmd_mail(&mut self, arg: &str) -> io::Result<()> {
        if self.hello.is_none() {
            return self.reply(503, "5.5.1 Send EHLO/HELO first");
        }
        if self.shared.opts.auth.is_some() && self.authenticated_as.is_none() {
            return self.reply(530, "5.7.0 Authentication required");
        }
        if self.mail_from.is_some() {
            return self.reply(503, "5.5.1 Nested MAIL command");
        }
        match parse_path(arg, "FROM:") {
            // Parameters such as BODY=8BITMIME or SMTPUTF8 are accepted and ignored.
            Some(address) => {
                self.mail_from = Some(address);
                self.rcpt_to.clear();
                self.reply(250, "2.1.0 Ok")
            }
            None => self.reply(501, "5.5.4 Syntax: MAIL FROM:<address>"),
        }
    }

    fn cmd_rcpt(&mut self, arg: &str) -> io::Result<()> {
        if self.mail_from.is_none() {
            return self.reply(503, "5.5.1 Need MAIL before RCPT");
        }
        match parse_path(arg, "TO:") {
            Some(address) if !address.is_empty() => {
                self.rcpt_to.push(address);
                self.reply(250, "2.1.5 Ok")
            }
            _ => self.reply(501, "5.5.4 Syntax: RCPT TO:<address>"),
        }
    }

    fn cmd_data(&mut self) -> io::Result<Flow> {
        if self.mail_from.is_none() {
            self.reply(503, "5.5.1 Need MAIL command")?;
            return Ok(Flow::Continue);
        }
        if self.rcpt_to.is_empty() {
            self.reply(503, "5.5.1 Need RCPT command")?;
            return Ok(Flow::Continue);
        }
        self.reply(354, "End data with <CR><LF>.<CR><LF>")?;

        let mut data: Vec<u8> = Vec::new();
        let mut too_big = false;
        loop {
            // Bounded: each line is at most MAX_DATA_LINE and every read has a timeout;
            // the total is capped by MAX_MESSAGE below.
            let Some(line) = self.read_line(MAX_DATA_LINE)? else {
                return Ok(Flow::Close); // client went away mid-message
            };
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            // Dot-unstuffing: a leading "." was doubled by the client.
            let line = line.strip_prefix(b".").unwrap_or(&line);
            if data.len() + line.len() > MAX_MESSAGE {
                too_big = true;
                break;
            }
            data.extend_from_slice(line);
        }
        if too_big {
            self.reply(552, "5.3.4 Message too big")?;
            return Ok(Flow::Close);
        }
        self.shared.trace_line(
            self.number,
            "C:",
            &format!("<{} bytes of message>", data.len()),
        );

        let envelope = Envelope {
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
        };
        let count = self.shared.data_count.fetch_add(1, Ordering::SeqCst) + 1;
        let verdict = match &self.shared.opts.verdict {
            Some(decide) => decide(&envelope, count),
            None => Verdict::Accept,
        };
        match verdict {
            Verdict::Accept => {
                let mail = ReceivedMail {
                    mail_from: envelope.mail_from,
                    rcpt_to: envelope.rcpt_to,
                    data: String::from_utf8_lossy(&data).into_owned(),
                    tls: self.tls,
                    authenticated_as: self.authenticated_as.clone(),
                    connection: self.number,
                    hello: self.hello.clone().unwrap_or_default(),
                };
                lock(&self.shared.state).received.push(mail);
                self.shared.arrived.notify_all();
                self.reply(250, &format!("2.0.0 Ok: queued as {count}"))?;
                Ok(Flow::Continue)
            }
            Verdict::Reply(code, text) => {
                self.reply(code, &text)?;
                Ok(Flow::Continue)
            }
            Verdict::Drop => {
                self.shared
                    .trace_line(self.number, "!", "dropping connection (verdict)");
                Ok(Flow::Close)
            }
        }
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    /// Reads one line (with its line end). `Ok(None)` on EOF; an error for a line longer
    /// than `max`, a timeout or a broken connection.
    fn read_line(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        let mut chunk = [0u8; 8192];
        self.pipelined = true;
        // Bounded: every pass either returns or grows `buf`, which is capped by `max`.
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                return Ok(Some(self.buf.drain(..=pos).collect()));
            }
            self.pipelined = false;
            if self.buf.len() > max {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            let n = match self.conn.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A TLS peer that closes without close_notify: treat as a plain EOF.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn reply(&mut self, code: u16, text: &str) -> io::Result<()> {
        self.reply_lines(code, &[text])
    }

    /// Sends a (possibly multi-line) reply, after the configured latency.
    fn reply_lines(&mut self, code: u16, lines: &[&str]) -> io::Result<()> {
        if let Some(latency) = self.shared.opts.latency {
            self.shared.pause(latency);
        }
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.push_str(&format!("{code}{sep}{line}\r\n"));
        }
        if lines.is_empty() {
            out.push_str(&format!("{code} \r\n"));
        }
        self.shared.trace_line(self.number, "S:", &out);
        self.conn.write_all(out.as_bytes())?;
        self.conn.flush()
    }
}

/// Parses `FROM:<addr> params` / `TO:<addr> params` (prefix case-insensitive, optional
/// space after the colon, angle brackets optional). Returns the address, `""` for `<>`.
fn parse_path(arg: &str, prefix: &str) -> Option<String> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        Some(inner[..end].to_string())
    } else {
        let address = rest.split_whitespace().next()?;
        Some(address.to_string())
    }
}
