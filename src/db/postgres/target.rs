//! Which PostgreSQL database quire uses, from `database.url`, and the one
//! way to print it: without its password.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use postgres::config::{Host, SslMode};
use postgres_native_tls::MakeTlsConnector;

/// A parsed `postgres://` or `postgresql://` URL with the password resolved.
/// Its `Display` is what logs, errors, `doctor` and `stats` show: user, hosts,
/// ports and database, never the password.
/// Cheap to clone (errors carry one).
#[derive(Clone)]
pub struct Target {
    config: Arc<postgres::Config>,
    tls: Arc<Tls>,
}

/// How connections are protected: libpq's `sslmode`, of which the driver
/// itself knows only disable, prefer and require.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, its certificate not checked (the
    /// default, as libpq's).
    Prefer,
    /// TLS or no connection; the certificate is not checked unless
    /// `sslrootcert` names a CA (then as `VerifyCa`).
    Require,
    /// TLS with a certificate signed by `sslrootcert`'s CA (required, and
    /// trusted alone), for any host name.
    VerifyCa,
    /// The certificate names the host connected to and is signed by
    /// `sslrootcert`'s CA, else by one the system trusts.
    VerifyFull,
}

/// The TLS settings of a target and the connector they make.
struct Tls {
    mode: TlsMode,
    connector: MakeTlsConnector,
}

/// Why a `database.url` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "database.url must start with postgres:// or postgresql:// \
         (for example postgres://quire@db.example:5432/quire); leave it empty for SQLite"
    )]
    NotAUrl,
    // The parser's message never repeats the URL, so it cannot leak a password.
    #[error("database.url is not a valid PostgreSQL URL: {}", super::describe(.0))]
    Invalid(postgres::Error),
    #[error("database.url names no database: add it after the host, as in postgres://host/quire")]
    NoDatabase,
    #[error("database.url has sslmode={0}; use disable, prefer, require, verify-ca or verify-full")]
    SslMode(String),
    #[error("database.url's TLS options cannot be used: {0}")]
    TlsOptions(&'static str),
    #[error("cannot use database.url's sslrootcert {path}: {error}")]
    RootCert { path: String, error: String },
    #[error("cannot set up TLS for the database connection: {0}")]
    Tls(native_tls::Error),
    #[error("cannot read database.password_file {path}: {error}")]
    PasswordFile { path: String, error: std::io::Error },
}

impl Target {
    /// Parses `url`. The password is the URL's own if it has one, else the
    /// first line of `password_file` (a systemd credential, for example),
    /// else `PGPASSWORD` from `env`, as libpq reads it.
    pub fn parse(
        url: &str,
        password_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Target, TargetError> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(TargetError::NotAUrl);
        }
        let (url, mode, root_cert) = take_tls_options(url)?;
        let mut config = postgres::Config::from_str(&url).map_err(TargetError::Invalid)?;
        // An sslmode the driver read and take_tls_options did not (a key
        // percent-encoded, a '?' in the password) would be overwritten below.
        if config.get_ssl_mode() != SslMode::Prefer {
            return Err(TargetError::TlsOptions(
                "an sslmode quire cannot read (percent-encode '?' in the password; \
                 write option names plainly)",
            ));
        }
        if config.get_dbname().is_none() {
            return Err(TargetError::NoDatabase);
        }
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        let tls = Arc::new(Tls {
            mode,
            connector: connector(mode, root_cert.as_deref())?,
        });
        if config.get_password().is_none() {
            if let Some(path) = password_file {
                let text =
                    std::fs::read_to_string(path).map_err(|error| TargetError::PasswordFile {
                        path: path.display().to_string(),
                        error,
                    })?;
                config.password(text.lines().next().unwrap_or(""));
            } else if let Some(password) = env("PGPASSWORD") {
                config.password(password);
            }
        }
        config.application_name("quire");
        // Without one, a connect during a network partition waits for the
        // kernel's TCP timeout (minutes), stalling the waker and the standby.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        Ok(Target {
            config: Arc::new(config),
            tls,
        })
    }

    /// The connection settings, password included: for the driver only.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// What protects the connections (`sslmode`).
    pub fn tls_mode(&self) -> TlsMode {
        self.tls.mode
    }

    /// The TLS connector every connection to this target goes through (it
    /// connects without TLS when the mode says so).
    pub fn connector(&self) -> MakeTlsConnector {
        self.tls.connector.clone()
    }

    /// A connection of its own (not pooled), its session set up as
    /// [`start_session`] says, or [`super::PgError::Connect`] naming this
    /// target.
    pub fn connect(&self) -> Result<postgres::Client, super::PgError> {
        let connect_error = |error| super::PgError::Connect {
            target: self.clone(),
            error,
        };
        let mut client = self
            .config
            .connect(self.connector())
            .map_err(connect_error)?;
        start_session(&mut client).map_err(connect_error)?;
        Ok(client)
    }

    /// The database's name.
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// The same server and user with another database: what a test uses to
    /// create and drop its own.
    pub fn with_dbname(&self, dbname: &str) -> Target {
        let mut config = (*self.config).clone();
        config.dbname(dbname);
        Target {
            config: Arc::new(config),
            tls: self.tls.clone(),
        }
    }
}

/// Sets up a new session: the server ends a transaction left idle for
/// 10 s, unless a timeout was set anywhere else (the URL's `options`,
/// `PGOPTIONS`, the database, the role, the server's configuration, even
/// to 0).
///
/// A session cut off inside a transaction (its host's link down, its
/// process frozen) keeps its row locks until the server notices the dead
/// connection, hours later by TCP keepalive; meanwhile no host can release
/// its claims as stale, since that skips locked rows. quire never leaves a
/// transaction idle for more than a moment. A `SET` and not a startup
/// option (`-c` in `options`): PgBouncer refuses startup options it does
/// not know. (Behind PgBouncer quire needs session pooling, for this as
/// for LISTEN and its advisory locks.) One round trip per new connection.
pub fn start_session(client: &mut postgres::Client) -> Result<(), postgres::Error> {
    client.batch_execute(
        "SELECT set_config(name, '10s', false) FROM pg_settings \
          WHERE name = 'idle_in_transaction_session_timeout' AND source = 'default'",
    )
}

/// Takes `sslmode` and `sslrootcert` out of `url`'s options, since the
/// driver refuses verify-ca, verify-full and sslrootcert; returns the rest
/// of the URL, the mode (prefer when absent, as libpq) and the CA file.
fn take_tls_options(url: &str) -> Result<(String, TlsMode, Option<PathBuf>), TargetError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), TlsMode::Prefer, None));
    };
    let (mut mode, mut root_cert, mut rest) = (TlsMode::Prefer, None, vec![]);
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        match key {
            "sslmode" => {
                mode = match &*value {
                    "disable" => TlsMode::Disable,
                    "prefer" => TlsMode::Prefer,
                    "require" => TlsMode::Require,
                    "verify-ca" => TlsMode::VerifyCa,
                    "verify-full" => TlsMode::VerifyFull,
                    other => return Err(TargetError::SslMode(other.to_owned())),
                }
            }
            "sslrootcert" => root_cert = Some(PathBuf::from(&*value)),
            _ => rest.push(pair),
        }
    }
    // As libpq: a CA given to require checks the certificate against it.
    if mode == TlsMode::Require && root_cert.is_some() {
        mode = TlsMode::VerifyCa;
    }
    // Any host name signed by any public CA would pass: no check at all.
    if mode == TlsMode::VerifyCa && root_cert.is_none() {
        return Err(TargetError::TlsOptions(
            "sslmode=verify-ca needs the CA's certificate: add &sslrootcert=/path/ca.pem",
        ));
    }
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, mode, root_cert))
}

/// The connector for `mode`: prefer and require encrypt without checking
/// the certificate (libpq's meaning; they guard against eavesdropping, not
/// impersonation), verify-ca checks it against `root_cert` alone,
/// verify-full also checks the host name (against the system's CAs when no
/// `root_cert` is given).
fn connector(mode: TlsMode, root_cert: Option<&Path>) -> Result<MakeTlsConnector, TargetError> {
    let mut builder = native_tls::TlsConnector::builder();
    match mode {
        TlsMode::Disable | TlsMode::Prefer | TlsMode::Require => {
            builder.danger_accept_invalid_certs(true);
        }
        TlsMode::VerifyCa => {
            builder.danger_accept_invalid_hostnames(true);
        }
        TlsMode::VerifyFull => {}
    }
    if let Some(path) = root_cert {
        let cert_error = |error: String| TargetError::RootCert {
            path: path.display().to_string(),
            error,
        };
        let pem = std::fs::read(path).map_err(|e| cert_error(e.to_string()))?;
        let cert = native_tls::Certificate::from_pem(&pem)
            .map_err(|e| cert_error(format!("not a PEM certificate ({e})")))?;
        // Only this CA, as libpq: added to the system's, any publicly
        // signed certificate would pass verify-ca.
        builder.disable_built_in_roots(true);
        builder.add_root_certificate(cert);
    }
    Ok(MakeTlsConnector::new(
        builder.build().map_err(TargetError::Tls)?,
    ))
}

impl std::fmt::Display for Target {
    /// `postgres://user@host:port/dbname`, several hosts comma-separated, a
    /// socket directory as the host; no password, no options.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.config;
        write!(f, "postgres://")?;
        if let Some(user) = c.get_user() {
            write!(f, "{user}@")?;
        }
        let ports = c.get_ports();
        for (i, host) in c.get_hosts().iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            match host {
                Host::Tcp(name) => write!(f, "{name}")?,
                Host::Unix(dir) => write!(f, "{}", dir.display())?,
            }
            // One port for every host, or one per host.
            if let Some(port) = ports.get(i).or(ports.first()) {
                write!(f, ":{port}")?;
            }
        }
        write!(f, "/{}", self.dbname())
    }
}

/// Targets are equal when they name the same database as the same user.
impl PartialEq for Target {
    fn eq(&self, other: &Target) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Target {}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn both_schemes_parse_and_print_without_the_password() {
        for url in [
            "postgres://quire:s3cret@db.example:6543/archive?sslmode=disable",
            "postgresql://quire:s3cret@db.example:6543/archive",
        ] {
            let t = Target::parse(url, None, no_env).unwrap();
            assert_eq!(t.to_string(), "postgres://quire@db.example:6543/archive");
            assert_eq!(
                format!("{t:?}"),
                "Target(postgres://quire@db.example:6543/archive)"
            );
            assert_eq!(t.config().get_password(), Some(&b"s3cret"[..]));
        }
    }

    #[test]
    fn the_password_comes_from_the_url_then_the_file_then_pgpassword() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let env = |k: &str| (k == "PGPASSWORD").then(|| "from-env".to_owned());
        let password = |url: &str, file: Option<&Path>| {
            let t = Target::parse(url, file, env).unwrap();
            String::from_utf8(t.config().get_password().unwrap().to_vec()).unwrap()
        };
        assert_eq!(password("postgres://u:in-url@h/d", Some(&file)), "in-url");
        assert_eq!(password("postgres://u@h/d", Some(&file)), "from-file");
        assert_eq!(password("postgres://u@h/d", None), "from-env");
        let missing = Target::parse("postgres://u@h/d", Some(&dir.path().join("no")), env);
        let err = missing.unwrap_err().to_string();
        assert!(
            err.contains("password_file") && err.contains("/no"),
            "{err}"
        );
    }

    #[test]
    fn unusable_urls_say_what_to_write() {
        let err = |url: &str| Target::parse(url, None, no_env).unwrap_err().to_string();
        assert!(err("mysql://h/d").contains("postgres://"));
        assert!(err("/var/lib/quire/quire.db").contains("leave it empty for SQLite"));
        assert!(err("postgres://u@h").contains("names no database"));
        assert!(err("postgres://u@h/d?sslmode=sometimes").contains("verify-full"));
        assert!(err("postgres://u@h/d?sslmode=verify-ca").contains("sslrootcert"));
        // An sslmode the driver would read and quire would not see.
        assert!(err("postgres://u@h/d?ssl%6dode=require").contains("sslmode"));
        assert!(err("postgres://u:p?x@h/d?sslmode=disable").contains("sslmode"));
        let no_ca = err("postgres://u@h/d?sslmode=verify-full&sslrootcert=/no/ca.pem");
        assert!(no_ca.contains("/no/ca.pem"), "{no_ca}");
        let bad = err("postgres://u:s3cret@h:notaport/d");
        assert!(!bad.contains("s3cret"), "{bad}");
        assert!(bad.contains("port"), "says what is wrong: {bad}");
    }

    #[test]
    fn sslmode_takes_libpq_values_and_leaves_the_other_options() {
        let mode = |url: &str| Target::parse(url, None, no_env).unwrap();
        assert_eq!(mode("postgres://u@h/d").tls_mode(), TlsMode::Prefer);
        for (value, want) in [
            ("disable", TlsMode::Disable),
            ("prefer", TlsMode::Prefer),
            ("require", TlsMode::Require),
            ("verify-full", TlsMode::VerifyFull),
        ] {
            let t = mode(&format!(
                "postgres://u@h/d?connect_timeout=3&sslmode={value}&application_name=x"
            ));
            assert_eq!(t.tls_mode(), want, "{value}");
            assert_eq!(
                t.config().get_connect_timeout(),
                Some(&std::time::Duration::from_secs(3))
            );
            let driver = if value == "disable" {
                SslMode::Disable
            } else if value == "prefer" {
                SslMode::Prefer
            } else {
                SslMode::Require
            };
            assert_eq!(t.config().get_ssl_mode(), driver, "{value}");
        }
    }

    #[test]
    fn a_failed_connection_says_why_not_only_that_it_failed() {
        // Port 1 on loopback: nothing listens there.
        let t = Target::parse("postgres://u@127.0.0.1:1/d", None, no_env).unwrap();
        let Err(err) = t.connect() else {
            panic!("connected to port 1")
        };
        let err = err.to_string();
        assert!(err.contains("Connection refused"), "{err}");
    }

    #[test]
    fn a_socket_directory_and_several_hosts_print_as_given() {
        let t = Target::parse(
            "postgres://postgres@%2Fvar%2Frun%2Fpostgresql/quire",
            None,
            no_env,
        )
        .unwrap();
        assert_eq!(
            t.to_string(),
            "postgres://postgres@/var/run/postgresql:5432/quire"
        );
        let t = Target::parse("postgres://u@a:1,b:2/d", None, no_env).unwrap();
        assert_eq!(t.to_string(), "postgres://u@a:1,b:2/d");
        assert_eq!(
            t.with_dbname("other").to_string(),
            "postgres://u@a:1,b:2/other"
        );
    }
}
