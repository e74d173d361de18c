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
    /// Delivers one message; on success, the server's reply (or what stands for it).
    fn send(&mut self, message: &Outgoing) -> Result<String, SendError>;
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
        })
    }

    fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
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
    fn send(&mut self, message: &Outgoing) -> Result<String, SendError> {
        let mut conn = match self.connection.take() {
            Some(conn) if !conn.has_broken() => conn,
            _ => self.connect()?,
        };
        match conn.send(&message.envelope, &message.raw) {
            Ok(response) => {
                let reply = format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                );
                self.connection = Some(conn);
                Ok(reply)
            }
            // lettre has closed the session on any error; the next message reconnects.
            Err(e) if e.is_permanent() => {
                Err(SendError::Permanent(format!("{}: {e}", self.server())))
            }
            Err(e) => Err(SendError::Transient(format!("{}: {e}", self.server()))),
        }
    }

    fn close(&mut self) {
        if let Some(mut conn) = self.connection.take() {
            let _ = conn.quit();
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.close();
    }
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

struct Sendmail {
    inner: lettre::SendmailTransport,
}

impl Transport for Sendmail {
    fn send(&mut self, message: &Outgoing) -> Result<String, SendError> {
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
    fn send(&mut self, message: &Outgoing) -> Result<String, SendError> {
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
