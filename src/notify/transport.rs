//! The transport seam: one `Transport` trait, three ways to deliver a built
//! message (SMTP with one reused connection, the local sendmail binary, a
//! folder of `.eml` files), and the one place that classifies what went
//! wrong: transient (retry later), permanent (never retry this message), or
//! unreachable (retry later, and stop sending this run).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lettre::Transport as _;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, SmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::config::{Config, Security, TransportKind};
use crate::notify::message::Outgoing;

/// Why one message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// A 4xx reply or a broken connection mid-message: try this message again later.
    Transient(String),
    /// A 5xx reply: this message will never be accepted.
    Permanent(String),
    /// The server cannot be reached or refused us (connect, TLS, AUTH):
    /// try again later, and do not try the rest of this run's messages now.
    Unreachable(String),
}

impl SendError {
    pub fn reason(&self) -> &str {
        match self {
            SendError::Transient(r) | SendError::Permanent(r) | SendError::Unreachable(r) => r,
        }
    }
}

pub trait Transport {
    /// Delivers one message; on success, the server's reply (or what stands
    /// for it). `ready` is asked just before the point of no return (SMTP's
    /// final `.`); when it says no, the message is not let out and the result
    /// is a `Transient` error. `next`, when given, is the message the caller
    /// means to send next: a transport may announce it early, but never lets
    /// it out before its own `send`.
    fn send(
        &mut self,
        message: &Outgoing,
        next: Option<&Outgoing>,
        ready: &mut dyn FnMut() -> bool,
    ) -> Result<String, SendError>;
    /// Ends the session politely, if there is one.
    fn close(&mut self) {}
}

/// Builds the configured transport. Reads the SMTP password now (from the
/// variable or file the configuration names), so a missing secret is an
/// error before anything is claimed.
pub fn from_config(config: &Config, env: &HashMap<String, String>) -> Result<Box<dyn Transport>> {
    Ok(match config.email.transport {
        TransportKind::Smtp => Box::new(Smtp::new(config, env)?),
        TransportKind::Sendmail => Box::new(Sendmail {
            inner: lettre::SendmailTransport::new_with_command(
                config.email.sendmail.command.as_os_str(),
            ),
        }),
        TransportKind::File => {
            let dir = config.email.file.dir.clone();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("could not create the mail folder `{}`", dir.display()))?;
            Box::new(Files {
                inner: lettre::FileTransport::new(&dir),
                dir,
            })
        }
    })
}

// ---- SMTP ----------------------------------------------------------------------------------

struct Smtp {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    connection: Option<SmtpConnection>,
    /// Whether the open connection's server offers PIPELINING.
    pipelining: bool,
    /// The message whose MAIL, RCPT and DATA the open connection has already
    /// sent and had accepted: the server is waiting for its content.
    primed: Option<i64>,
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
            host: smtp.host.clone(),
            port: smtp.port,
            security: smtp.security,
            tls,
            credentials,
            timeout: Duration::from_secs(smtp.timeout_secs.max(1)),
            hello: ClientId::default(),
            connection: None,
            pipelining: false,
            primed: None,
        })
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A new session, and whether its server offers PIPELINING.
    fn fresh_connection(&mut self) -> Result<SmtpConnection, SendError> {
        self.primed = None;
        let mut conn = self.connect()?;
        self.pipelining = offers_pipelining(&mut conn, &self.hello);
        Ok(conn)
    }

    /// Opens a session: connect, TLS as configured, AUTH when configured.
    fn connect(&self) -> Result<SmtpConnection, SendError> {
        let unreachable = |what: &str, e: lettre::transport::smtp::Error| {
            SendError::Unreachable(format!("{}: {what}: {e}", self.server()))
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
        .map_err(|e| unreachable("could not connect", e))?;
        if self.security == Security::Starttls {
            let tls = self
                .tls
                .as_ref()
                .expect("STARTTLS security always builds TLS parameters");
            if !conn.can_starttls() {
                conn.abort();
                return Err(SendError::Unreachable(format!(
                    "{}: the server does not offer STARTTLS; set `email.smtp.security` to match the server",
                    self.server()
                )));
            }
            conn.starttls(tls, &self.hello)
                .map_err(|e| unreachable("STARTTLS failed", e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .map_err(|e| unreachable("authentication failed", e))?;
        }
        Ok(conn)
    }
}

impl Transport for Smtp {
    fn send(
        &mut self,
        message: &Outgoing,
        next: Option<&Outgoing>,
        ready: &mut dyn FnMut() -> bool,
    ) -> Result<String, SendError> {
        let mut conn = match self.connection.take() {
            // A connection prepared for another message is waiting for that
            // message's content: it cannot carry this one.
            Some(conn) if self.primed.is_some_and(|key| key != message.key) => {
                discard(conn);
                self.fresh_connection()?
            }
            Some(conn) if !conn.has_broken() => conn,
            _ => self.fresh_connection()?,
        };
        let primed = self.primed.take() == Some(message.key);
        let next = next.filter(|_| self.pipelining);
        match transmit(&mut conn, message, primed, next, self.pipelining, ready) {
            Ok(done) => {
                let reply = format!(
                    "{} {}",
                    done.reply.code(),
                    done.reply.message().collect::<Vec<_>>().join(" ")
                );
                if done.next_primed {
                    self.primed = next.map(|n| n.key);
                }
                if done.keep_connection {
                    self.connection = Some(conn);
                } else {
                    discard(conn);
                }
                Ok(reply)
            }
            Err(e) => {
                // The session may be mid-transaction: close it; the next message reconnects.
                discard(conn);
                Err(match e {
                    Refusal::Smtp(e) if e.is_permanent() => {
                        SendError::Permanent(format!("{}: {e}", self.server()))
                    }
                    Refusal::Smtp(e) => SendError::Transient(format!("{}: {e}", self.server())),
                    Refusal::Unsupported(why) => {
                        SendError::Permanent(format!("{}: {why}", self.server()))
                    }
                    Refusal::NotReady => not_let_out(),
                })
            }
        }
    }

    fn close(&mut self) {
        if let Some(mut conn) = self.connection.take() {
            if self.primed.take().is_some() {
                // The server waits for content that will not come.
                discard(conn);
            } else {
                let _ = conn.quit();
            }
        }
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

impl Drop for Smtp {
    fn drop(&mut self) {
        self.close();
    }
}

/// Why `transmit` did not get a message accepted.
enum Refusal {
    Smtp(lettre::transport::smtp::Error),
    /// The message needs an extension the server does not offer.
    Unsupported(&'static str),
    /// The caller said not to let the message out.
    NotReady,
}

/// What `transmit` did.
struct Transmitted {
    /// The server's reply to the message's final `.`.
    reply: lettre::transport::smtp::response::Response,
    /// Whether the next message's MAIL, RCPT and DATA went out with it and
    /// were accepted: the server now waits for that message's content.
    next_primed: bool,
    /// False when the session is out of step and must be closed.
    keep_connection: bool,
}

/// One SMTP transaction: MAIL, RCPT for each recipient and DATA (unless an
/// earlier call already sent them: `primed`), then the dot-stuffed message
/// with its final `.` line in a single write.
///
/// This is lettre's `SmtpConnection::send` with three changes, all for speed:
/// - lettre writes the message and the final `.` line separately; with
///   Nagle's algorithm on (lettre does not set TCP_NODELAY) the second small
///   write waits for the server's delayed ACK, about 40 ms per message.
/// - When the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out
///   in one write and their replies are read after it.
/// - With PIPELINING, the next message's MAIL, RCPT and DATA ride in the same
///   write as this message's content (RFC 2920 allows commands after the
///   content in one group). Its content waits for its own call, after the
///   caller has recorded this message's outcome. One round trip per message.
fn transmit(
    conn: &mut SmtpConnection,
    message: &Outgoing,
    primed: bool,
    next: Option<&Outgoing>,
    pipelining: bool,
    ready: &mut dyn FnMut() -> bool,
) -> Result<Transmitted, Refusal> {
    if !primed {
        let commands = envelope_commands(conn, message)?;
        if pipelining {
            // One write; then MAIL's reply, each RCPT's, and DATA's, in order.
            conn.command(commands.concat()).map_err(Refusal::Smtp)?;
            for _ in 1..commands.len() {
                conn.read_response().map_err(Refusal::Smtp)?;
            }
        } else {
            for command in commands {
                conn.command(command).map_err(Refusal::Smtp)?;
            }
        }
    }
    if !ready() {
        return Err(Refusal::NotReady);
    }
    let mut data = dot_stuffed(&message.raw);
    let announced = next.and_then(|next| envelope_commands(conn, next).ok());
    if let Some(commands) = &announced {
        data.push_str(&commands.concat());
    }
    let reply = conn.command(data).map_err(Refusal::Smtp)?;
    let mut done = Transmitted {
        reply,
        next_primed: false,
        keep_connection: true,
    };
    if let Some(commands) = announced {
        // The next message's replies; any refusal leaves the rest unread, so
        // the session is closed and the next message starts afresh (and meets
        // the refusal again, in its own `send`).
        let accepted = (0..commands.len()).all(|_| conn.read_response().is_ok());
        done.next_primed = accepted;
        done.keep_connection = accepted;
    }
    Ok(done)
}

/// MAIL, one RCPT per recipient, and DATA for a message, each a line.
fn envelope_commands(conn: &SmtpConnection, message: &Outgoing) -> Result<Vec<String>, Refusal> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
    let envelope = &message.envelope;
    let mut parameters = Vec::new();
    let non_ascii_address = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|address| !AsRef::<str>::as_ref(address).is_ascii());
    if non_ascii_address {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(Refusal::Unsupported(
                "an address is not ASCII and the server does not offer SMTPUTF8",
            ));
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !message.raw.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            return Err(Refusal::Unsupported(
                "the message is not ASCII and the server does not offer 8BITMIME",
            ));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mut commands = vec![Mail::new(envelope.from().cloned(), parameters).to_string()];
    commands.extend(
        envelope
            .to()
            .iter()
            .map(|to| Rcpt::new(to.clone(), Vec::new()).to_string()),
    );
    commands.push(Data.to_string());
    Ok(commands)
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
    let mut out = String::with_capacity(text.len() + 8);
    if text.starts_with('.') {
        out.push('.');
    }
    // Only a `.` right after a line break needs doubling; `replace` finds those fast.
    out.push_str(&text.replace("\n.", "\n.."));
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

/// What `send` returns when its caller said not to let the message out.
fn not_let_out() -> SendError {
    SendError::Transient("not sent: the flush stopped before it".into())
}

// ---- sendmail and files --------------------------------------------------------------------

struct Sendmail {
    inner: lettre::SendmailTransport,
}

impl Transport for Sendmail {
    fn send(
        &mut self,
        message: &Outgoing,
        _next: Option<&Outgoing>,
        ready: &mut dyn FnMut() -> bool,
    ) -> Result<String, SendError> {
        if !ready() {
            return Err(not_let_out());
        }
        self.inner
            .send_raw(&message.envelope, &message.raw)
            .map(|()| "accepted by sendmail".to_string())
            .map_err(|e| SendError::Transient(format!("sendmail: {e}")))
    }
}

struct Files {
    inner: lettre::FileTransport,
    dir: PathBuf,
}

impl Transport for Files {
    fn send(
        &mut self,
        message: &Outgoing,
        _next: Option<&Outgoing>,
        ready: &mut dyn FnMut() -> bool,
    ) -> Result<String, SendError> {
        if !ready() {
            return Err(not_let_out());
        }
        self.inner
            .send_raw(&message.envelope, &message.raw)
            .map(|id| {
                format!(
                    "written to {}",
                    self.dir.join(format!("{id}.eml")).display()
                )
            })
            .map_err(|e| SendError::Transient(format!("{}: {e}", self.dir.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::dot_stuffed;

    #[test]
    fn leading_dots_are_doubled_and_the_end_is_marked() {
        assert_eq!(
            dot_stuffed(b".a\r\nb\r\n.\r\n..c"),
            "..a\r\nb\r\n..\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b"plain"), "plain\r\n.\r\n");
    }
}
