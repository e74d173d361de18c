//! Reaching a PostgreSQL server: the database URL as libpq reads it (a
//! password inside it is refused), the password from `PGPASSWORD` or the
//! `~/.pgpass` file (libpq's format and lookup), `sslmode` over rustls, and a
//! connection attempt that gives up after `database_timeout_secs`.
//!
//! The store's PostgreSQL backend opens its one connection through `connect`;
//! nothing else here knows about sessions, schemas or queries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;

/// Whether a `database` value names a PostgreSQL server rather than a SQLite file.
pub fn is_url(database: &str) -> bool {
    database.starts_with("postgresql://") || database.starts_with("postgres://")
}

/// libpq's `sslmode`, the values helpdesk accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate (libpq's default).
    Prefer,
    /// TLS always, without checking the certificate.
    Require,
    /// TLS always, with the certificate checked against the trusted roots
    /// and the host name.
    VerifyFull,
}

impl SslMode {
    const ACCEPTED: &'static str = "disable, prefer, require, verify-full";

    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Where a server is and who connects: everything in the URL but secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A host name or address, or (starting with `/`) a Unix socket folder.
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub sslmode: SslMode,
    /// `sslrootcert`: the CA file that `verify-full` trusts.
    pub sslrootcert: Option<PathBuf>,
}

impl Target {
    /// `host:port`, as messages name the server.
    pub fn server(&self) -> String {
        if self.host.starts_with('/') {
            format!("{}/.s.PGSQL.{}", self.host, self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "the database URL contains a password; remove it and give the password in `PGPASSWORD` or `~/.pgpass` instead"
    )]
    PasswordInUrl,
    #[error("the database URL is not valid: {0}")]
    BadUrl(String),
    #[error("`sslmode={0}` in the database URL is not one of {accepted}", accepted = SslMode::ACCEPTED)]
    BadSslMode(String),
    #[error("no answer from PostgreSQL at {server} within {secs} s")]
    Timeout { server: String, secs: u64 },
    #[error("PostgreSQL at {server} cannot be reached ({reason})")]
    Unreachable { server: String, reason: String },
    /// The server answered and said no (password, database, access rules):
    /// one sentence that names the server, what it refused and what to do.
    #[error("{0}")]
    Refused(String),
    /// TLS did not come up: one sentence, naming the server.
    #[error("{0}")]
    Tls(String),
    #[error("could not read the CA file `{path}` (`sslrootcert`): {reason}")]
    RootCert { path: PathBuf, reason: String },
}

/// Reads a database URL. The OS user name stands in for a missing user, as
/// in libpq, and the user's name for a missing database.
pub fn parse(text: &str, env: &HashMap<String, String>) -> Result<Target, ConnectError> {
    let url = url::Url::parse(text).map_err(|e| ConnectError::BadUrl(e.to_string()))?;
    if url.password().is_some() {
        return Err(ConnectError::PasswordInUrl);
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| ConnectError::BadUrl("it is not valid UTF-8 once decoded".into()))
    };
    let mut host = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
        .unwrap_or_default();
    let mut sslmode = SslMode::Prefer;
    let mut sslrootcert = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "sslmode" => {
                sslmode = SslMode::parse(&value)
                    .ok_or_else(|| ConnectError::BadSslMode(crate::output::cell(&value, 40)))?;
            }
            "sslrootcert" => sslrootcert = Some(PathBuf::from(value.as_ref())),
            "host" => host = value.into_owned(),
            "password" => return Err(ConnectError::PasswordInUrl),
            other => {
                return Err(ConnectError::BadUrl(format!(
                    "unknown parameter `{}` (helpdesk reads sslmode, sslrootcert and host)",
                    crate::output::cell(other, 40)
                )));
            }
        }
    }
    if host.is_empty() {
        host = "localhost".into();
    }
    let user = match url.username() {
        "" => env
            .get("PGUSER")
            .or_else(|| env.get("USER"))
            .cloned()
            .unwrap_or_else(|| "postgres".into()),
        name => decode(name)?,
    };
    let dbname = match url.path().trim_start_matches('/') {
        "" => user.clone(),
        name => decode(name)?,
    };
    Ok(Target {
        host,
        port: url.port().unwrap_or(5432),
        dbname,
        user,
        sslmode,
        sslrootcert,
    })
}

/// The password for `target`: `PGPASSWORD`, else the first matching line of
/// the password file (`PGPASSFILE`, else `~/.pgpass`), which libpq ignores,
/// and so does helpdesk, when others may read it.
pub fn password(
    target: &Target,
    env: &HashMap<String, String>,
    home: Option<&Path>,
) -> Option<String> {
    if let Some(password) = env.get("PGPASSWORD").filter(|p| !p.is_empty()) {
        return Some(password.clone());
    }
    let file = match env.get("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => home?.join(".pgpass"),
    };
    if !private(&file) {
        return None;
    }
    let text = std::fs::read_to_string(&file).ok()?;
    // libpq matches a Unix socket connection as `localhost`.
    let host = if target.host.starts_with('/') {
        "localhost"
    } else {
        target.host.as_str()
    };
    let port = target.port.to_string();
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .map(pgpass_fields)
        .find(|fields| {
            fields.len() == 5
                && [host, &port, &target.dbname, &target.user]
                    .iter()
                    .zip(fields)
                    .all(|(want, field)| field == "*" || field == want)
        })
        .map(|mut fields| fields.swap_remove(4))
}

/// A `.pgpass` line's fields: `:` separates, `\:` and `\\` escape.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("never empty").push(next);
                }
            }
            // The password is the rest of the line, colons and all.
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields
}

#[cfg(unix)]
fn private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private(path: &Path) -> bool {
    path.is_file()
}

/// Connects, giving up after `timeout` whatever the server does (a server
/// that accepts the connection and then says nothing included).
pub fn connect(
    target: &Target,
    password: Option<String>,
    timeout: Duration,
) -> Result<postgres::Client, ConnectError> {
    let mut config = postgres::Config::new();
    if target.host.starts_with('/') {
        config.host_path(&target.host);
    } else {
        config.host(&target.host);
    }
    config
        .port(target.port)
        .user(&target.user)
        .dbname(&target.dbname)
        .application_name("helpdesk")
        .connect_timeout(timeout)
        .ssl_mode(match target.sslmode {
            SslMode::Disable => postgres::config::SslMode::Disable,
            SslMode::Prefer => postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyFull => postgres::config::SslMode::Require,
        });
    if let Some(password) = password {
        config.password(password);
    }
    let tls = tls_connector(target)?;
    let (sender, receiver) = std::sync::mpsc::channel();
    // The client's own timeouts cover the TCP connection only: a thread lets
    // the whole handshake, TLS and authentication included, be bounded.
    std::thread::spawn(move || {
        let _ = sender.send(config.connect(tls));
    });
    let server = target.server();
    match receiver.recv_timeout(timeout) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(err)) => Err(explain(target, &err, timeout)),
        Err(_) => Err(ConnectError::Timeout {
            server,
            secs: timeout.as_secs(),
        }),
    }
}

/// The rustls connector for the target's `sslmode`.
fn tls_connector(
    target: &Target,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            ConnectError::Tls(format!(
                "TLS with PostgreSQL at {} could not be set up ({e})",
                target.server()
            ))
        })?;
    let config = if target.sslmode == SslMode::VerifyFull {
        let mut roots = rustls::RootCertStore::empty();
        match &target.sslrootcert {
            Some(path) => {
                let read_error = |reason: String| ConnectError::RootCert {
                    path: path.clone(),
                    reason,
                };
                let pem = std::fs::read(path).map_err(|e| read_error(e.kind().to_string()))?;
                let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| read_error("it is not a PEM certificate".into()))?;
                if certs.is_empty() {
                    return Err(read_error("it holds no certificate".into()));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| read_error(format!("unusable certificate: {e}")))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        // prefer and require encrypt without checking whom they talk to, as libpq does.
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// What went wrong connecting, in words.
fn explain(target: &Target, err: &postgres::Error, timeout: Duration) -> ConnectError {
    use std::error::Error as _;
    let server = target.server();
    let user = &target.user;
    if let Some(db) = err.as_db_error() {
        return ConnectError::Refused(match db.code().code() {
            "28P01" => format!(
                "PostgreSQL at {server} refused the password of user `{user}`; check `PGPASSWORD` or `~/.pgpass`"
            ),
            "3D000" => format!(
                "PostgreSQL at {server} has no database `{0}`; create it first with `createdb {0}`",
                target.dbname
            ),
            _ => format!(
                "PostgreSQL at {server} did not let user `{user}` in ({})",
                db.message()
            ),
        });
    }
    let mut source = err.source();
    while let Some(cause) = source {
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return ConnectError::Tls(tls_failure(target, tls));
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            let reason = match io.kind() {
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    return ConnectError::Timeout {
                        server,
                        secs: timeout.as_secs(),
                    };
                }
                ErrorKind::ConnectionRefused => "connection refused".to_string(),
                ErrorKind::NotFound => "no such socket".to_string(),
                ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof => {
                    "the server closed the connection".to_string()
                }
                kind => kind.to_string(),
            };
            return ConnectError::Unreachable { server, reason };
        }
        source = cause.source();
    }
    // The client says some things only in text, spread over its causes.
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if text.contains("password missing") {
        return ConnectError::Refused(format!(
            "PostgreSQL at {server} asks user `{user}` for a password; set `PGPASSWORD` or add a line to `~/.pgpass`"
        ));
    }
    if text.contains("TLS") || text.contains("SSL") {
        return ConnectError::Tls(format!("TLS with PostgreSQL at {server} failed ({text})"));
    }
    ConnectError::Unreachable {
        server,
        reason: text,
    }
}

/// Why TLS failed, in one sentence: a certificate that `verify-full` cannot
/// trust says which CA file to name.
fn tls_failure(target: &Target, err: &rustls::Error) -> String {
    use rustls::CertificateError;
    let server = target.server();
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the certificate of PostgreSQL at {server} is not signed by a trusted CA; name the server's CA file with `sslrootcert=PATH` in the URL"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the certificate of PostgreSQL at {server} is not for host `{}`; connect by the name the certificate holds",
            target.host
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => format!("the certificate of PostgreSQL at {server} has expired"),
        other => format!("TLS with PostgreSQL at {server} failed ({other})"),
    }
}

/// Accepts any server certificate: `sslmode` `prefer` and `require` encrypt
/// without authenticating the server, exactly as libpq does.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn urls_are_read_as_libpq_reads_them() {
        let target = parse(
            "postgresql://hd@db.example.org:6543/helpdesk?sslmode=require",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(
            target,
            Target {
                host: "db.example.org".into(),
                port: 6543,
                dbname: "helpdesk".into(),
                user: "hd".into(),
                sslmode: SslMode::Require,
                sslrootcert: None,
            }
        );
        let defaults = parse("postgres://db.example.org", &env(&[("USER", "ann")])).unwrap();
        assert_eq!(
            (
                defaults.port,
                defaults.user.as_str(),
                defaults.dbname.as_str()
            ),
            (5432, "ann", "ann")
        );
        assert_eq!(defaults.sslmode, SslMode::Prefer);
        let socket = parse("postgresql:///hd?host=/run/postgresql", &env(&[])).unwrap();
        assert_eq!(socket.server(), "/run/postgresql/.s.PGSQL.5432");
        assert!(is_url("postgres://x") && is_url("postgresql://x") && !is_url("helpdesk.db"));
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_being_repeated() {
        for url in [
            "postgresql://hd:s3cr3t@db/helpdesk",
            "postgresql://hd@db/helpdesk?password=s3cr3t",
        ] {
            let err = parse(url, &env(&[])).unwrap_err();
            assert!(matches!(err, ConnectError::PasswordInUrl), "{err}");
            assert!(!err.to_string().contains("s3cr3t"));
        }
    }

    #[test]
    fn unknown_sslmodes_and_parameters_are_named() {
        let err = parse("postgresql://db/hd?sslmode=sometimes", &env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`sslmode=sometimes` in the database URL is not one of disable, prefer, require, verify-full"
        );
        let err = parse("postgresql://db/hd?sslcert=x", &env(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the database URL is not valid: unknown parameter `sslcert` (helpdesk reads sslmode, sslrootcert and host)"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_password_comes_from_pgpassword_then_a_private_pgpass() {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(".pgpass");
        std::fs::write(
            &file,
            "# comment\nother:*:*:*:nope\ndb.example.org:5432:helpdesk:hd:pa\\:ss:word\n*:*:*:*:fallback\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let target = parse("postgresql://hd@db.example.org/helpdesk", &env(&[])).unwrap();
        assert_eq!(
            password(&target, &env(&[]), Some(home.path())).as_deref(),
            Some("pa:ss:word")
        );
        assert_eq!(
            password(&target, &env(&[("PGPASSWORD", "env")]), Some(home.path())).as_deref(),
            Some("env")
        );
        let elsewhere = parse("postgresql://hd@other.example.org/x", &env(&[])).unwrap();
        assert_eq!(
            password(&elsewhere, &env(&[]), Some(home.path())).as_deref(),
            Some("fallback")
        );
        // Readable by others: ignored, as libpq ignores it.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(password(&target, &env(&[]), Some(home.path())), None);
    }

    /// The test cluster's URL (`tests/pg/cluster.sh`), or None outside CI.
    fn test_cluster() -> Option<Target> {
        match std::env::var("HELPDESK_TEST_PG") {
            Ok(url) => Some(parse(&url, &env(&[])).expect("HELPDESK_TEST_PG is a valid URL")),
            Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("HELPDESK_TEST_PG is not set: .ci/run starts a cluster and sets it")
            }
            Err(_) => {
                eprintln!("NOT RUN: set HELPDESK_TEST_PG (see tests/pg/cluster.sh)");
                None
            }
        }
    }

    #[test]
    fn connects_to_the_test_cluster_in_every_sslmode() {
        let Some(base) = test_cluster() else { return };
        for sslmode in [SslMode::Disable, SslMode::Prefer, SslMode::Require] {
            let target = Target {
                sslmode,
                ..base.clone()
            };
            let mut client = connect(&target, None, Duration::from_secs(10)).unwrap();
            let encrypted: bool = client
                .query_one(
                    "SELECT coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                    &[],
                )
                .unwrap()
                .get(0);
            assert_eq!(encrypted, sslmode != SslMode::Disable, "{sslmode:?}");
        }
        let ca = std::env::var("HELPDESK_TEST_PG_CA").expect("the cluster's CA");
        let verified = Target {
            sslmode: SslMode::VerifyFull,
            sslrootcert: Some(ca.into()),
            host: "localhost".into(),
            ..base.clone()
        };
        connect(&verified, None, Duration::from_secs(10)).unwrap();
        // An unknown CA: verify-full refuses the server.
        let untrusted = Target {
            sslrootcert: None,
            ..verified
        };
        let err = connect(&untrusted, None, Duration::from_secs(10))
            .err()
            .expect("refused");
        assert!(matches!(err, ConnectError::Tls { .. }), "{err}");
    }

    #[test]
    fn a_wrong_or_missing_password_is_said_in_words() {
        let Some(base) = test_cluster() else { return };
        let target = Target {
            user: "hd_password".into(),
            ..base
        };
        let server = target.server();
        let err = connect(&target, Some("wrong".into()), Duration::from_secs(10))
            .err()
            .expect("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "PostgreSQL at {server} refused the password of user `hd_password`; check `PGPASSWORD` or `~/.pgpass`"
            )
        );
        let err = connect(&target, None, Duration::from_secs(10))
            .err()
            .expect("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "PostgreSQL at {server} asks user `hd_password` for a password; set `PGPASSWORD` or add a line to `~/.pgpass`"
            )
        );
        connect(&target, Some("hd-secret".into()), Duration::from_secs(10)).unwrap();
    }

    #[test]
    fn a_server_that_says_nothing_costs_one_timeout() {
        // A listener that accepts and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = parse(
            &format!("postgresql://hd@127.0.0.1:{port}/hd?sslmode=disable"),
            &env(&[]),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = connect(&target, None, Duration::from_secs(1))
            .err()
            .expect("refused");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            err.to_string(),
            format!("no answer from PostgreSQL at 127.0.0.1:{port} within 1 s")
        );
        drop(listener);
        let err = connect(&target, None, Duration::from_secs(1))
            .err()
            .expect("refused");
        assert_eq!(
            err.to_string(),
            format!("PostgreSQL at 127.0.0.1:{port} cannot be reached (connection refused)")
        );
    }
}
