//! The database seam: where quire's data lives and the engine that keeps it.
//!
//! [`Db`] is a cheap, cloneable handle over one storage engine, chosen by a
//! [`Location`]. Today there is one engine, SQLite ([`sqlite`]: one file in the
//! data dir); the enum [`Engine`] is where a second one (PostgreSQL) joins.
//! The queue ([`crate::queue::Queue`]) and the store ([`crate::store::Store`])
//! dispatch on it to per-engine, per-operation files, so nothing outside paths
//! named `sqlite` speaks SQL or names the SQLite driver.
//!
//! What [`Db`] itself offers every engine must provide:
//! - open with migrations applied, refusing a schema from a newer quire
//!   ([`Db::open`]);
//! - a health check for `quire doctor` ([`Db::check`]);
//! - a way to notice commits made by other processes, so idle workers wake
//!   without polling the tables ([`Db::change_watcher`]);
//! - a leader lock, so that one daemon among several watches the inbox
//!   ([`Db::try_leader_lock`]).

pub mod postgres;
pub mod sqlite;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a connection waits for another writer (or for a free pooled
/// connection) before giving up. Long, because a user must never see
/// "database is locked" from ordinary concurrent use; a write transaction in
/// quire lasts milliseconds.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`database.url`).
    Postgres(postgres::Target),
}

impl Location {
    /// True when a database is there (it may still be empty or unreadable).
    pub fn exists(&self) -> bool {
        match self {
            Location::Sqlite(path) => path.exists(),
            // A server's database is there or not when connected to.
            Location::Postgres(_) => true,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(target) => write!(f, "{target}"),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Sqlite(path.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::Sqlite(path.clone())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::Sqlite(path)
    }
}

/// Errors from opening or using the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    // The inner errors are in the message and not also a `source`: `{:#}`
    // would print them twice.
    #[error("database error: {0}")]
    Sqlite(sqlite::Error),
    #[error("database connection pool: {0}")]
    Pool(r2d2::Error),
    #[error(transparent)]
    Postgres(#[from] postgres::PgError),
    #[error(
        "the database {location} has schema version {found}, newer than this quire understands \
         ({known}); upgrade quire, or point --data-dir at another database"
    )]
    TooNew {
        location: Location,
        found: i64,
        known: i64,
    },
    /// A schema migration that would break the database; it was rolled back.
    #[error(
        "migration {name} of the database {location} failed: {problem}; it was rolled back and \
         the database is as it was: keep running the previous quire and report this"
    )]
    Migration {
        location: Location,
        name: &'static str,
        problem: String,
    },
    #[error(
        "cannot open the database {location}: {error}; check that the data dir exists and is writable"
    )]
    Open {
        location: Location,
        error: sqlite::Error,
    },
    #[error(
        "no quire database at {0}; run `quire serve` or `quire enqueue FILE` first, \
         or pass --data-dir"
    )]
    Missing(Location),
    /// A search in the engine's own syntax (`--raw`) that it cannot run;
    /// the message says why in quire's words.
    #[error("{0}")]
    BadQuery(String),
    #[error("cannot take the lock {path}: {error}; check the data dir's permissions")]
    Lock {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl From<sqlite::Error> for DbError {
    fn from(e: sqlite::Error) -> DbError {
        DbError::Sqlite(e)
    }
}

impl From<r2d2::Error> for DbError {
    fn from(e: r2d2::Error) -> DbError {
        DbError::Pool(e)
    }
}

/// The engine behind a [`Db`].
#[derive(Clone)]
pub enum Engine {
    Sqlite(sqlite::SqliteDb),
    Postgres(postgres::PostgresDb),
}

/// The shared handle to the database: cheap to clone, safe to send between threads.
#[derive(Clone)]
pub struct Db {
    engine: Engine,
}

/// What [`Db::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// How the connection is protected, for a server: "TLS TLSv1.3" or
    /// "not encrypted"; `None` for a file.
    pub connection: Option<String>,
    /// The schema version the database is at.
    pub schema_version: i64,
    /// The schema version this build of quire writes.
    pub known_schema_version: i64,
    /// `None` when the engine's integrity check passed, else what it said.
    pub problem: Option<String>,
    /// The command a person runs to repair a database that fails the check.
    pub repair: String,
}

impl Db {
    /// Opens (creating if needed) the database at `location`, applies pending
    /// migrations (each exactly once, even when several processes open a new
    /// database at once) and builds a pool of at most `max_connections`.
    ///
    /// Fails with [`DbError::TooNew`] when the database was written by a newer quire.
    pub fn open(location: impl Into<Location>, max_connections: u32) -> Result<Db, DbError> {
        match location.into() {
            Location::Sqlite(path) => Ok(Db {
                engine: Engine::Sqlite(sqlite::SqliteDb::open(&path, max_connections)?),
            }),
            Location::Postgres(target) => Ok(Db {
                engine: Engine::Postgres(postgres::PostgresDb::open(&target, max_connections)?),
            }),
        }
    }

    /// The engine, for the queue's and the store's dispatch.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Checks the schema version and the engine's own integrity check. Reads
    /// only; safe while a daemon runs.
    pub fn check(&self) -> Result<Health, DbError> {
        match &self.engine {
            Engine::Sqlite(db) => db.check(),
            Engine::Postgres(db) => Ok(db.check()?),
        }
    }

    /// A watcher that tells when another process has committed to the
    /// database. Each watcher holds a connection of its own.
    pub fn change_watcher(&self) -> Result<ChangeWatcher, DbError> {
        match &self.engine {
            Engine::Sqlite(db) => Ok(ChangeWatcher::Sqlite(db.change_watcher()?)),
            Engine::Postgres(db) => Ok(ChangeWatcher::Postgres(Box::new(db.change_watcher()?))),
        }
    }

    /// Takes the leader lock named `role` (for example `"inbox"`) if no other
    /// process holds it. The lock is held until the returned guard is
    /// dropped, and released by the operating system or the server when the
    /// process dies. `Ok(None)` when another process holds it.
    pub fn try_leader_lock(&self, role: &str) -> Result<Option<LeaderLock>, DbError> {
        match &self.engine {
            Engine::Sqlite(db) => Ok(db.try_leader_lock(role)?.map(LeaderLock::Sqlite)),
            Engine::Postgres(db) => Ok(db.try_leader_lock(role)?.map(LeaderLock::Postgres)),
        }
    }
}

/// Notices commits made by other processes; see [`Db::change_watcher`].
pub enum ChangeWatcher {
    Sqlite(sqlite::DataVersionWatch),
    // Boxed: it holds a whole client; one per daemon.
    Postgres(Box<postgres::NotifyWatch>),
}

impl ChangeWatcher {
    /// True when another process committed since the watcher was made or
    /// last asked. Cheap and non-blocking: meant to be called every
    /// few milliseconds. A watcher that cannot read its connection answers
    /// `false` and workers fall back to the poll interval.
    pub fn changed(&mut self) -> bool {
        match self {
            ChangeWatcher::Sqlite(w) => w.changed(),
            ChangeWatcher::Postgres(w) => w.changed(),
        }
    }
}

/// A held leader lock; see [`Db::try_leader_lock`]. Dropping it releases it.
pub enum LeaderLock {
    Sqlite(sqlite::FileLock),
    Postgres(postgres::AdvisoryLock),
}

impl LeaderLock {
    /// True while the lock is still this process's. A file lock lasts as
    /// long as the process; an advisory lock as long as its database
    /// session, which a server restart or a cut link can end.
    pub fn still_held(&mut self) -> bool {
        match self {
            LeaderLock::Sqlite(_) => true,
            LeaderLock::Postgres(lock) => lock.still_held(),
        }
    }
}
