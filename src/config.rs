//! Configuration: where `helpdesk.toml` is found, how it is read and checked,
//! and how the layers stack (lowest first): built-in defaults, the file, the
//! `HELPDESK_*` variables, command-line flags. All of that is `Config::load`.
//! Secrets are never held here: only the name of the variable or file that
//! holds the SMTP password, read when a transport is built.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use lettre::Address;
use serde::{Deserialize, Serialize};

use crate::address;
use crate::trust::{self, Use};

pub const FILE_NAME: &str = "helpdesk.toml";

/// The example configuration, written by `helpdesk init`; it documents every key.
pub const EXAMPLE: &str = include_str!("../helpdesk.toml.example");

/// The effective configuration of this run.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file it came from, if any.
    pub file: Option<PathBuf>,
    pub debug: bool,
    pub database: crate::store::Database,
    /// How long to wait for a PostgreSQL server to answer a connection.
    pub database_timeout_secs: u64,
    pub admins: Vec<Admin>,
    pub default_from_email: String,
    /// `default_from_email` as every message's `From`: parsed once, when
    /// the configuration is checked, not per message.
    #[serde(skip)]
    pub from: lettre::message::Mailbox,
    pub development_email: Option<String>,
    pub templates_dir: Option<PathBuf>,
    pub site: Site,
    pub email: Email,
    pub queue: Queue,
    /// Things worth saying that do not stop the run.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A developer: notified in-app and by email about every ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admin {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Site {
    pub domain: String,
    pub scheme: String,
}

impl Default for Site {
    fn default() -> Self {
        Site {
            domain: "example.com".into(),
            scheme: "https".into(),
        }
    }
}

impl Site {
    /// The absolute address of a path on the site, as email carries it.
    pub fn absolute(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.domain, path)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Smtp,
    Sendmail,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain SMTP, upgraded with STARTTLS (required).
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption: only sensible for a server on this machine.
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct Email {
    pub transport: TransportKind,
    pub smtp: Smtp,
    pub sendmail: Sendmail,
    pub file: FileTransport,
    pub inbound: Inbound,
}

/// Conversations by email (SPEC §6): the help desk's own address, what a
/// ticket opened by email gets, and whose `Authentication-Results` count.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inbound {
    /// `help@example.org`: Reply-To `help+N@example.org` on every email, and
    /// where new tickets by email arrive. Unset: replies are not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub purpose: crate::model::Purpose,
    pub priority: crate::model::Priority,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_authserv_id: Option<String>,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            address: None,
            purpose: crate::model::Purpose::App,
            priority: crate::model::Priority::Medium,
            trusted_authserv_id: None,
        }
    }
}

impl Inbound {
    /// `local+N@domain` for ticket N, when inbound mail is set up.
    pub fn reply_address(&self, ticket_id: crate::model::TicketId) -> Option<String> {
        let address = self.address.as_deref()?;
        let (local, domain) = address.rsplit_once('@')?;
        Some(format!("{local}+{ticket_id}@{domain}"))
    }
}

#[derive(Clone, Serialize)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    /// Name of the environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password (its first line).
    pub password_file: Option<PathBuf>,
    pub timeout_secs: u64,
    /// Extra trusted root certificate (PEM), for a server with a private CA.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for Smtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only names of where secrets live are held here, but keep Debug terse anyway.
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Sendmail {
    pub command: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileTransport {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    #[serde(deserialize_with = "batch_size")]
    pub batch_size: u32,
    /// An optional cap on attempts; unset, only `max_age` gives up.
    #[serde(
        default,
        deserialize_with = "max_attempts",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_attempts: Option<u32>,
    /// A transiently failing email is retried until it is this old.
    #[serde(
        deserialize_with = "duration_from_text",
        serialize_with = "duration_as_text"
    )]
    pub max_age: std::time::Duration,
    #[serde(deserialize_with = "retry_backoff_secs")]
    pub retry_backoff_secs: u64,
    #[serde(deserialize_with = "lease_secs")]
    pub lease_secs: u64,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            batch_size: 100,
            max_attempts: None,
            max_age: std::time::Duration::from_secs(5 * 86_400),
            retry_backoff_secs: 60,
            lease_secs: 300,
        }
    }
}

/// A duration as the SPEC writes it (`45s`, `90m`, `12h`, `5d`): the largest unit that divides it.
pub fn duration_text(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0 => "0s".into(),
        _ if secs.is_multiple_of(86_400) => format!("{}d", secs / 86_400),
        _ if secs.is_multiple_of(3600) => format!("{}h", secs / 3600),
        _ if secs.is_multiple_of(60) => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

fn duration_from_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<std::time::Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::cli::parse_duration(&text).map_err(serde::de::Error::custom)
}

fn duration_as_text<S: serde::Serializer>(
    duration: &std::time::Duration,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&duration_text(*duration))
}

// ---- The file, as written ----------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    debug: Option<bool>,
    database: Option<PathBuf>,
    #[serde(default, deserialize_with = "database_timeout_secs")]
    database_timeout_secs: Option<u64>,
    admins: Option<Vec<AdminEntry>>,
    default_from_email: Option<String>,
    development_email: Option<String>,
    templates_dir: Option<PathBuf>,
    site: Option<Site>,
    email: Option<FileEmail>,
    queue: Option<Queue>,
}

/// Django's `ADMINS` shape (`["Name", "email"]`) or a table (`{ name, email }`).
/// Read by hand rather than as an untagged enum, so that a typo inside a
/// table is named as an unknown key, not as "did not match any variant".
#[derive(Debug)]
struct AdminEntry {
    name: String,
    email: String,
}

impl<'de> Deserialize<'de> for AdminEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AdminEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"["Name", "email"] or { name = "Name", email = "email" }"#)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AdminEntry, A::Error> {
                use serde::de::Error;
                let name: String = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let email: String = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                if seq.next_element::<toml::Value>()?.is_some() {
                    return Err(A::Error::invalid_length(3, &self));
                }
                Ok(AdminEntry { name, email })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AdminEntry, A::Error> {
                use serde::de::Error;
                let (mut name, mut email) = (None, None);
                // Keys read as an identifier enum, so toml places an unknown one.
                #[derive(Deserialize)]
                #[serde(field_identifier, rename_all = "lowercase")]
                enum Field {
                    Name,
                    Email,
                }
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::Name => name = Some(map.next_value::<String>()?),
                        Field::Email => email = Some(map.next_value::<String>()?),
                    }
                }
                let email = email.ok_or_else(|| A::Error::missing_field("email"))?;
                Ok(AdminEntry {
                    name: name.unwrap_or_default(),
                    email,
                })
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEmail {
    transport: Option<TransportKind>,
    smtp: Option<FileSmtp>,
    sendmail: Option<FileSendmail>,
    file: Option<FileFile>,
    inbound: Option<Inbound>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSmtp {
    host: Option<String>,
    #[serde(default, deserialize_with = "port")]
    port: Option<u16>,
    security: Option<Security>,
    username: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    #[serde(default, deserialize_with = "timeout_secs")]
    timeout_secs: Option<u64>,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSendmail {
    command: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFile {
    dir: Option<PathBuf>,
}

/// Numbers say what they must be, not a Rust type (`expected u16`): each
/// key gets a reader that takes a TOML integer within its range, and says
/// `port must be a number from 1 to 65535` otherwise.
fn number_in<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    key: &str,
    min: i64,
    max: i64,
) -> Result<i64, D::Error> {
    use serde::de::Error;
    match toml::Value::deserialize(deserializer)? {
        toml::Value::Integer(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(D::Error::custom(format!(
            "{key} must be a number from {min} to {max}"
        ))),
    }
}

macro_rules! number_key {
    ($name:ident, $t:ty, $min:expr, $max:expr) => {
        fn $name<'de, D: serde::Deserializer<'de>, T: From<$t>>(
            deserializer: D,
        ) -> Result<T, D::Error> {
            // The range fits the type, so the conversion cannot fail.
            number_in(deserializer, stringify!($name), $min, $max).map(|n| T::from(n as $t))
        }
    };
}

number_key!(port, u16, 1, 65_535);
number_key!(timeout_secs, u64, 1, 86_400);
number_key!(batch_size, u32, 1, 1_000_000);
number_key!(max_attempts, u32, 1, 10_000);
number_key!(retry_backoff_secs, u64, 0, 86_400);
number_key!(lease_secs, u64, 1, 604_800);
number_key!(database_timeout_secs, u64, 1, 3_600);

/// What the command line contributes to the configuration.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub db: Option<PathBuf>,
}

impl Config {
    /// Finds, reads and checks the configuration. `env` is the process
    /// environment (a map, so tests can pass their own); `cwd` anchors the
    /// built-in relative defaults.
    pub fn load(
        overrides: &Overrides,
        env: &HashMap<String, String>,
        cwd: &Path,
    ) -> Result<Config> {
        let file = find_file(overrides, env, cwd)?;
        let text = match &file {
            Some(path) => match trust::read_steering(path) {
                Ok(text) => Some(text),
                Err(trust::Refusal::Untrusted(reason)) => bail!(
                    "configuration file `{}` is not trusted: {reason}",
                    path.display()
                ),
                Err(trust::Refusal::Unreadable(err)) => {
                    return Err(err).with_context(|| {
                        format!("could not read configuration file `{}`", path.display())
                    });
                }
            },
            None => None,
        };
        let source = file.as_deref().zip(text.as_deref());
        Config::from_text(source, overrides, env, cwd)
    }

    /// The configuration `text` would give if it were the file at `path`
    /// (`None`: no file, built-in defaults), without reading or writing any
    /// file: `init` checks what it is about to write this way.
    pub fn from_text(
        source: Option<(&Path, &str)>,
        overrides: &Overrides,
        env: &HashMap<String, String>,
        cwd: &Path,
    ) -> Result<Config> {
        let (parsed, base) = match source {
            Some((path, text)) => {
                let parsed = parse_file(text, path)?;
                let base = path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| cwd.to_path_buf());
                (parsed, base)
            }
            None => (FileConfig::default(), cwd.to_path_buf()),
        };
        let mut config = resolve(parsed, source.map(|(p, _)| p.to_path_buf()), &base)?;
        if let Some(value) = env.get("HELPDESK_DEBUG").filter(|v| !v.is_empty()) {
            config.debug = parse_bool(value).with_context(|| {
                format!(
                    "HELPDESK_DEBUG must be `true`, `false`, `1` or `0`, not `{}`",
                    clean(value)
                )
            })?;
        }
        if let Some(db) = overrides.db.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            config.database = crate::store::Database::from_text(db, cwd);
        }
        config.validate(env)?;
        Ok(config)
    }

    /// What opening the database needs beyond its name.
    pub fn access<'a>(&self, env: &'a HashMap<String, String>) -> crate::store::Access<'a> {
        crate::store::Access {
            env,
            timeout: std::time::Duration::from_secs(self.database_timeout_secs),
        }
    }

    /// Where an email for `to` goes under this configuration: in debug mode
    /// `development_email`, so a debug configuration never mails a real
    /// user (SPEC §1); otherwise `to` itself. Fan-out, flush and
    /// `notify test` all ask here.
    pub fn delivery_address<'a>(&'a self, to: &'a str) -> &'a str {
        match (self.debug, &self.development_email) {
            (true, Some(dev)) => dev,
            _ => to,
        }
    }

    /// How long before its lease ends a flush must stop letting a message
    /// out: time for the server's final reply, and a second to spare.
    pub fn send_margin(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.email.smtp.timeout_secs.max(1) + 1)
    }

    /// Where the file named `name` says something: `path` for messages.
    fn origin(&self) -> String {
        match &self.file {
            Some(path) => format!("`{}`", path.display()),
            None => "the built-in defaults".into(),
        }
    }

    fn validate(&mut self, env: &HashMap<String, String>) -> Result<()> {
        let origin = self.origin();
        self.from = address::parse_input_mailbox("`default_from_email`", &self.default_from_email)
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        self.warn_smtputf8("default_from_email", &self.from.email.clone());
        if let Some(dev) = &self.development_email {
            let dev = check_address("development_email", dev, &origin)?;
            self.warn_smtputf8("development_email", &dev);
        }
        if self.debug && self.development_email.is_none() {
            bail!(
                "{origin}: `debug = true` needs `development_email`, the address every email goes to in debug mode"
            );
        }
        for admin in self.admins.clone() {
            check_header_value("admins", &admin.name, &origin)?;
            let email = check_address("admins", &admin.email, &origin)?;
            self.warn_smtputf8("admins", &email);
        }
        if !matches!(self.site.scheme.as_str(), "http" | "https") {
            bail!(
                "{origin}: `site.scheme` must be `http` or `https`, not `{}`",
                clean(&self.site.scheme)
            );
        }
        // Links are built from it and printed unescaped, so only host-name characters.
        let host_char = |c: char| c.is_ascii_alphanumeric() || "-.:[]".contains(c);
        if self.site.domain.is_empty() || !self.site.domain.chars().all(host_char) {
            bail!(
                "{origin}: `site.domain` must be a host name like `example.com`, not `{}`",
                clean(&self.site.domain)
            );
        }
        let inbound = self.email.inbound.clone();
        if let Some(address) = &inbound.address {
            let parsed = check_address("email.inbound.address", address, &origin)?;
            if parsed.user().contains('+') {
                bail!(
                    "{origin}: `email.inbound.address` `{}` already has a `+`: give the plain address, helpdesk adds `+N` for each ticket",
                    clean(address)
                );
            }
            if inbound.trusted_authserv_id.is_none() {
                self.warnings.push(
                    "`email.inbound.address` is set without `email.inbound.trusted_authserv_id`: anyone who writes a user's address in From can comment as them; set it to the authserv-id your mail server writes in Authentication-Results".to_string(),
                );
            }
        }
        if let Some(id) = &inbound.trusted_authserv_id {
            check_header_value("email.inbound.trusted_authserv_id", id, &origin)?;
            if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
                bail!(
                    "{origin}: `email.inbound.trusted_authserv_id` must be one word, like `mail.example.org`, not `{}`",
                    clean(id)
                );
            }
        }
        let queue = &self.queue;
        if queue.batch_size == 0 || queue.max_attempts == Some(0) || queue.lease_secs == 0 {
            bail!(
                "{origin}: `queue.batch_size`, `queue.max_attempts` and `queue.lease_secs` must be at least 1"
            );
        }
        let smtp = &self.email.smtp;
        if queue.lease_secs <= smtp.timeout_secs + 1 {
            self.warnings.push(format!(
                "`queue.lease_secs` ({}) should be well above `email.smtp.timeout_secs` ({}): a slow reply could outlast a claim",
                queue.lease_secs, smtp.timeout_secs
            ));
        }
        if smtp.password_env.is_some() && smtp.password_file.is_some() {
            bail!(
                "{origin}: set one of `email.smtp.password_env` and `email.smtp.password_file`, not both"
            );
        }
        if (smtp.password_env.is_some() || smtp.password_file.is_some()) && smtp.username.is_none()
        {
            bail!("{origin}: a password is configured but `email.smtp.username` is not");
        }
        self.check_steering_files(env)?;
        if self.email.transport == TransportKind::Smtp {
            if let Some(var) = &smtp.password_env
                && !env.contains_key(var)
            {
                self.warnings.push(format!(
                    "`email.smtp.password_env` names `{var}`, which is not set: sending will fail"
                ));
            }
            if let Some(path) = &smtp.password_file {
                self.warnings.extend(password_file_warning(path));
            }
            if smtp.security == Security::None && !is_loopback(&smtp.host) {
                self.warnings.push(format!(
                    "`email.smtp.security = \"none\"` sends mail to `{}` unencrypted",
                    smtp.host
                ));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Refuses the files that steer helpdesk when another local user could
    /// have written them (SPEC §4): `templates_dir`, `password_file`, and the
    /// sendmail command (which must also exist). The configuration file
    /// itself is judged before it is read.
    fn check_steering_files(&self, env: &HashMap<String, String>) -> Result<()> {
        let origin = self.origin();
        let judge = |key: &str, path: &Path| -> Result<()> {
            match trust::check(path, Use::Steering) {
                Some(reason) => bail!(
                    "{origin}: `{key}` `{}` is not trusted: {reason}",
                    path.display()
                ),
                None => Ok(()),
            }
        };
        if let Some(dir) = &self.templates_dir {
            if !dir.is_dir() {
                let what = if dir.exists() {
                    "is not a folder"
                } else {
                    "does not exist"
                };
                bail!(
                    "{origin}: `templates_dir` `{}` {what}: create it, or remove the key to use the built-in templates",
                    dir.display()
                );
            }
            judge("templates_dir", dir)?;
        }
        if let Some(path) = &self.email.smtp.password_file {
            judge("email.smtp.password_file", path)?;
        }
        // A sendmail command that is not there yet stops only what would run
        // it (`sendmail_command`); one that is there must be trusted.
        if self.email.transport == TransportKind::Sendmail
            && let Ok(command) = self.email.sendmail.resolve(env)
        {
            judge("email.sendmail.command", &command)?;
        }
        Ok(())
    }

    /// The sendmail command to run, checked: `config check`, `notify flush`
    /// and `notify test` ask before anything is claimed or sent, so a
    /// missing command is one clear error and nothing changes.
    pub fn sendmail_command(&self, env: &HashMap<String, String>) -> Result<PathBuf> {
        let origin = self.origin();
        let command = self
            .email
            .sendmail
            .resolve(env)
            .map_err(|reason| anyhow::anyhow!("{origin}: `email.sendmail.command` {reason}"))?;
        if let Some(reason) = trust::check(&command, Use::Steering) {
            bail!(
                "{origin}: `email.sendmail.command` `{}` is not trusted: {reason}",
                command.display()
            );
        }
        Ok(command)
    }
}

impl Sendmail {
    /// The file the sendmail command runs: the path as written, or a bare
    /// name found on `PATH`; an error says what is missing and where.
    pub fn resolve(&self, env: &HashMap<String, String>) -> std::result::Result<PathBuf, String> {
        let command = &self.command;
        let shown = clean(&command.display().to_string());
        let runnable = |path: &Path| {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(path)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            }
            #[cfg(not(unix))]
            {
                path.is_file()
            }
        };
        if command.components().count() > 1 || command.is_absolute() {
            if !command.exists() {
                return Err(format!(
                    "`{shown}` does not exist: install a mail server that provides it, or set `email.transport` to `smtp`"
                ));
            }
            if !runnable(command) {
                return Err(format!("`{shown}` is not an executable file"));
            }
            return Ok(command.clone());
        }
        let path = env.get("PATH").map(String::as_str).unwrap_or("");
        std::env::split_paths(path)
            .map(|dir| dir.join(command))
            .find(|candidate| runnable(candidate))
            .ok_or_else(|| {
                format!(
                    "`{shown}` was not found on PATH: give its full path, or set `email.transport` to `smtp`"
                )
            })
    }
}

fn find_file(
    overrides: &Overrides,
    env: &HashMap<String, String>,
    cwd: &Path,
) -> Result<Option<PathBuf>> {
    // --config and HELPDESK_CONFIG arrive together through clap's `env`.
    if let Some(path) = &overrides.config {
        let path = cwd.join(path);
        if path.is_dir() {
            bail!(
                "configuration file `{0}` is a folder: name the file itself, such as `{1}`",
                path.display(),
                path.join(FILE_NAME).display()
            );
        }
        if !path.is_file() {
            bail!("configuration file `{}` does not exist", path.display());
        }
        return Ok(Some(path));
    }
    let local = cwd.join(FILE_NAME);
    if local.is_file() {
        return Ok(Some(local));
    }
    let xdg = env
        .get("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|home| Path::new(home).join(".config")));
    if let Some(dir) = xdg {
        let path = dir.join("helpdesk").join(FILE_NAME);
        if path.is_file() {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

fn parse_file(text: &str, path: &Path) -> Result<FileConfig> {
    toml::from_str(text).map_err(|err| {
        let place = err.span().map(|span| Place::of(text, span.start));
        // toml repeats parts of the file (an unknown variant, a key): made
        // safe to print, as any value from the file is.
        let message = crate::output::cell(err.message().trim_end_matches('\n'), 2000);
        let located = match &place {
            Some(place) => format!(
                "`{}` line {}, column {}",
                path.display(),
                place.line,
                place.column
            ),
            None => format!("`{}`", path.display()),
        };
        let key = place.as_ref().and_then(|p| p.key.as_deref().map(clean));
        if let Some(key) = key.as_deref().filter(|k| {
            k.split('.')
                .any(|part| part.split('[').next() == Some("password"))
        }) {
            // The value is a secret: never repeat it, not even in a snippet.
            return anyhow::anyhow!(
                "{located}: key `{key}` is not allowed: the password is never stored in the file; \
                 name an environment variable with `password_env` or a file with `password_file`"
            );
        }
        match key {
            Some(key) => anyhow::anyhow!("{located}, key `{key}`: {message}"),
            None => anyhow::anyhow!("{located}: {message}"),
        }
    })
}

/// A position in the file, with the dotted key written there if one is.
struct Place {
    line: usize,
    column: usize,
    key: Option<String>,
}

impl Place {
    /// The line and column of `offset`, and the key (`email.smtp.port`,
    /// `admins[0].name`) whose name or value covers it, found through the
    /// spans the TOML parser records (so keys in inline tables, dotted keys
    /// and array entries are named as written).
    fn of(text: &str, offset: usize) -> Place {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..offset].chars().count() + 1;
        // Recoverable: a syntax error still names the key it is in.
        let (doc, _) = toml::de::DeTable::parse_recoverable(text);
        let key = key_at(doc.get_ref(), offset, "").or_else(|| key_on_line(text, line_start));
        Place { line, column, key }
    }
}

/// For a syntax error the parser dropped (a duplicate key): the key written
/// at the start of the line, under the last `[table]` header before it.
fn key_on_line(text: &str, line_start: usize) -> Option<String> {
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let (key, _) = line_text.split_once('=')?;
    let key = key.trim().trim_matches(['"', '\'']);
    let table = text[..line_start]
        .lines()
        .map(str::trim)
        .rfind(|t| t.starts_with('[') && !t.starts_with("[["))
        .map(|t| t.trim_matches(['[', ']']).trim().to_string());
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_string(),
    })
}

/// The dotted name of the innermost key in `table` whose name or value
/// covers `offset`.
fn key_at(table: &toml::de::DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (key, value) in table.iter() {
        let name = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if key.span().contains(&offset) {
            return Some(name);
        }
        // Tables from `[headers]` may not span their keys: look inside them
        // whatever their span says.
        if let Some(found) = value_key_at(value.get_ref(), offset, &name) {
            return Some(found);
        }
        if value.span().contains(&offset) {
            return Some(name);
        }
    }
    None
}

fn value_key_at(value: &toml::de::DeValue<'_>, offset: usize, name: &str) -> Option<String> {
    match value {
        toml::de::DeValue::Table(table) => key_at(table, offset, name),
        toml::de::DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let name = format!("{name}[{i}]");
            value_key_at(item.get_ref(), offset, &name)
                .or_else(|| item.span().contains(&offset).then_some(name))
        }),
        _ => None,
    }
}

fn resolve(file: FileConfig, source: Option<PathBuf>, base: &Path) -> Result<Config> {
    let email = file.email.unwrap_or_default();
    let smtp = email.smtp.unwrap_or_default();
    let host = smtp.host.unwrap_or_else(|| "localhost".into());
    let security = smtp.security.unwrap_or(if is_loopback(&host) {
        Security::None
    } else {
        Security::Starttls
    });
    let admins = file
        .admins
        .unwrap_or_default()
        .into_iter()
        .map(|AdminEntry { name, email }| Admin { name, email })
        .collect();
    Ok(Config {
        file: source,
        debug: file.debug.unwrap_or(false),
        database: crate::store::Database::from_text(
            &file
                .database
                .unwrap_or_else(|| PathBuf::from("helpdesk.db")),
            base,
        ),
        database_timeout_secs: file.database_timeout_secs.unwrap_or(10),
        admins,
        default_from_email: file
            .default_from_email
            .unwrap_or_else(|| "helpdesk@localhost".into()),
        // Replaced by `default_from_email` once `validate` has checked it.
        from: lettre::message::Mailbox::new(None, Address::new("helpdesk", "localhost")?),
        development_email: file.development_email,
        templates_dir: file.templates_dir.map(|dir| base.join(dir)),
        site: file.site.unwrap_or_default(),
        email: Email {
            transport: email.transport.unwrap_or(TransportKind::Smtp),
            smtp: Smtp {
                host,
                port: smtp.port.unwrap_or(25),
                security,
                username: smtp.username,
                password_env: smtp.password_env,
                password_file: smtp.password_file.map(|p| base.join(p)),
                timeout_secs: smtp.timeout_secs.unwrap_or(10),
                ca_file: smtp.ca_file.map(|p| base.join(p)),
            },
            sendmail: Sendmail {
                command: email
                    .sendmail
                    .and_then(|s| s.command)
                    .unwrap_or_else(|| "/usr/sbin/sendmail".into()),
            },
            file: FileTransport {
                dir: base.join(
                    email
                        .file
                        .and_then(|f| f.dir)
                        .unwrap_or_else(|| PathBuf::from("outbox")),
                ),
            },
            inbound: email.inbound.unwrap_or_default(),
        },
        queue: file.queue.unwrap_or_default(),
        warnings: Vec::new(),
    })
}

/// A value from the file or the environment made safe to print: control
/// characters (ESC, BEL, CR, LF…) cannot reach the terminal.
fn clean(value: &str) -> String {
    crate::output::cell(value, 200)
}

fn parse_bool(value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => bail!("not a boolean"),
    }
}

/// A value that ends up in a mail header must not be able to start a new header.
fn check_header_value(key: &str, value: &str, origin: &str) -> Result<()> {
    address::check_header_value(&format!("`{key}`"), value)
        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))
}

/// An address from the file or the environment: the input rule
/// (`address::parse_input`), the file named.
fn check_address(key: &str, value: &str, origin: &str) -> Result<Address> {
    address::parse_input(&format!("`{key}`"), value).map_err(|e| anyhow::anyhow!("{origin}: {e}"))
}

impl Config {
    /// An address whose local part is not ASCII reaches only servers that
    /// speak SMTPUTF8: worth a warning, not a refusal.
    fn warn_smtputf8(&mut self, key: &str, address: &Address) {
        if address::needs_smtputf8(address) {
            self.warnings.push(format!(
                "`{key}` has the address `{}`, whose part before the `@` is not ASCII: only mail servers that support SMTPUTF8 accept it",
                clean(address.as_ref())
            ));
        }
    }
}

pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(unix)]
fn password_file_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Some(format!(
            "`email.smtp.password_file` `{}` can be read by other users: run `chmod 600 {}`",
            path.display(),
            path.display()
        )),
        Ok(_) => None,
        Err(e) => Some(format!(
            "`email.smtp.password_file` `{}` cannot be read: {e}",
            path.display()
        )),
    }
}

#[cfg(not(unix))]
fn password_file_warning(_path: &Path) -> Option<String> {
    None
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, text).unwrap();
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(
            &Overrides {
                config: Some(path),
                db: None,
            },
            &env,
            dir.path(),
        )
    }

    #[test]
    fn defaults_apply_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&Overrides::default(), &HashMap::new(), dir.path()).unwrap();
        assert!(config.file.is_none());
        assert_eq!(
            config.database.file(),
            Some(dir.path().join("helpdesk.db").as_path())
        );
        assert_eq!(config.email.smtp.host, "localhost");
        assert_eq!(config.email.smtp.port, 25);
        assert_eq!(config.email.smtp.security, Security::None);
        assert_eq!(config.queue.batch_size, 100);
        assert!(!config.debug);
    }

    #[test]
    fn both_admin_shapes_are_read() {
        let config = load_text(
            "admins = [[\"Ann\", \"ann@example.org\"], { name = \"Bo\", email = \"bo@example.org\" }]\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            config.admins[0],
            Admin {
                name: "Ann".into(),
                email: "ann@example.org".into()
            }
        );
        assert_eq!(config.admins[1].email, "bo@example.org");
    }

    #[test]
    fn unknown_key_names_line_column_and_key() {
        let err = load_text("debug = false\n[email.smtp]\nhots = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3, column 1"), "{err}");
        assert!(err.contains("key `email.smtp.hots`"), "{err}");
        assert!(err.contains("unknown field `hots`"), "{err}");
    }

    /// The message for `text` as the file, with the folder's path removed.
    fn error_of(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, text).unwrap();
        let err = Config::load(
            &Overrides {
                config: Some(path.clone()),
                db: None,
            },
            &HashMap::new(),
            dir.path(),
        )
        .unwrap_err()
        .to_string();
        err.replace(&path.display().to_string(), FILE_NAME)
    }

    #[test]
    fn the_key_at_fault_is_named_from_the_parser_spans() {
        // A key inside an inline table is named with its table, not as the table.
        assert_eq!(
            error_of("[email]\nsmtp = { host = \"127.0.0.1\", prot = 25 }\n"),
            "`helpdesk.toml` line 2, column 30, key `email.smtp.prot`: unknown field `prot`, expected one of `host`, `port`, `security`, `username`, `password_env`, `password_file`, `timeout_secs`, `ca_file`"
        );
        // Dotted keys, and a key in an array of tables.
        assert_eq!(
            error_of("email.smtp.hots = \"x\"\n"),
            "`helpdesk.toml` line 1, column 12, key `email.smtp.hots`: unknown field `hots`, expected one of `host`, `port`, `security`, `username`, `password_env`, `password_file`, `timeout_secs`, `ca_file`"
        );
        assert_eq!(
            error_of(
                "admins = [[\"A\", \"a@example.org\"], { name = \"B\", emial = \"b@example.org\" }]\n"
            ),
            "`helpdesk.toml` line 1, column 49, key `admins[1].emial`: unknown field `emial`, expected `name` or `email`"
        );
        // A header table's key, and a value of the wrong type.
        assert_eq!(
            error_of("[queue]\nbatch_size = 10\nlease = 5\n"),
            "`helpdesk.toml` line 3, column 1, key `queue.lease`: unknown field `lease`, expected one of `batch_size`, `max_attempts`, `max_age`, `retry_backoff_secs`, `lease_secs`"
        );
        assert_eq!(
            error_of("[site]\ndomain = 7\n"),
            "`helpdesk.toml` line 2, column 10, key `site.domain`: invalid type: integer `7`, expected a string"
        );
    }

    #[test]
    fn password_key_is_refused_without_repeating_it() {
        let err = load_text("[email.smtp]\npassword = \"hunter2\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`email.smtp.password` is not allowed"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn debug_needs_development_email() {
        let err = load_text("debug = true\n", &[]).unwrap_err().to_string();
        assert!(
            err.contains("`debug = true` needs `development_email`"),
            "{err}"
        );
        assert!(
            load_text(
                "debug = true\ndevelopment_email = \"dev@example.org\"\n",
                &[]
            )
            .is_ok()
        );
    }

    #[test]
    fn environment_overrides_debug() {
        let config = load_text(
            "development_email = \"dev@example.org\"\n",
            &[("HELPDESK_DEBUG", "1")],
        )
        .unwrap();
        assert!(config.debug);
        let err = load_text("", &[("HELPDESK_DEBUG", "yes")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("HELPDESK_DEBUG"), "{err}");
    }

    #[test]
    fn the_from_mailbox_is_parsed_once_with_the_configuration() {
        let config = load_text(
            "default_from_email = \"Help Desk <help@example.org>\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.from.to_string(), "Help Desk <help@example.org>");
        assert_eq!(config.from.email.to_string(), "help@example.org");
        let config = load_text("", &[]).unwrap();
        assert_eq!(config.from.to_string(), "helpdesk@localhost");
    }

    #[test]
    fn line_breaks_in_header_values_are_refused() {
        let err = load_text(
            "default_from_email = \"a@example.org\\r\\nBcc: x@evil.test\"\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`default_from_email` contains a line break"),
            "{err}"
        );
        let err = load_text("admins = [[\"Ann\\nX\", \"ann@example.org\"]]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`admins` contains a line break"), "{err}");
    }

    #[test]
    fn security_defaults_by_host() {
        let config = load_text("[email.smtp]\nhost = \"mail.example.org\"\n", &[]).unwrap();
        assert_eq!(config.email.smtp.security, Security::Starttls);
        let config = load_text("[email.smtp]\nhost = \"127.0.0.1\"\n", &[]).unwrap();
        assert_eq!(config.email.smtp.security, Security::None);
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let config = load_text("database = \"data/hd.db\"\n", &[]).unwrap();
        let folder = config
            .file
            .as_ref()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        assert_eq!(
            config.database.file(),
            Some(folder.join("data/hd.db").as_path())
        );
    }
}
