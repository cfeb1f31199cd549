//! Which PostgreSQL database quire uses, from `database.url`, and the one
//! way to print it: without its password.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use postgres::config::{Host, SslMode};

/// A parsed `postgres://` or `postgresql://` URL with the password resolved.
/// Its `Display` is what logs, errors, `doctor` and `stats` show: user, hosts,
/// ports and database, never the password.
/// Cheap to clone (errors carry one).
#[derive(Clone)]
pub struct Target {
    config: Arc<postgres::Config>,
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
    #[error(
        "database.url asks for sslmode=require, and this quire connects without TLS; \
         use sslmode=disable on a trusted network or a local socket"
    )]
    TlsUnsupported,
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
        let mut config = postgres::Config::from_str(url).map_err(TargetError::Invalid)?;
        if config.get_dbname().is_none() {
            return Err(TargetError::NoDatabase);
        }
        if config.get_ssl_mode() == SslMode::Require {
            return Err(TargetError::TlsUnsupported);
        }
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
        })
    }

    /// The connection settings, password included: for the driver only.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// A connection of its own (not pooled), or [`super::PgError::Connect`]
    /// naming this target.
    pub fn connect(&self) -> Result<postgres::Client, super::PgError> {
        self.config
            .connect(postgres::NoTls)
            .map_err(|error| super::PgError::Connect {
                target: self.clone(),
                error,
            })
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
        }
    }
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
        assert!(err("postgres://u@h/d?sslmode=require").contains("sslmode=disable"));
        let bad = err("postgres://u:s3cret@h:notaport/d");
        assert!(!bad.contains("s3cret"), "{bad}");
        assert!(bad.contains("port"), "says what is wrong: {bad}");
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
