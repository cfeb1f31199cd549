//! The database: one SQLite file in the data dir, opened through an r2d2 pool.
//!
//! Every connection runs in WAL mode with `synchronous=NORMAL`, foreign keys on and
//! a generous busy timeout, so the daemon and several CLI commands can share the file.
//! Writers must start with `BEGIN IMMEDIATE` (see [`write_tx`]): a deferred transaction
//! that upgrades to a write gets `SQLITE_BUSY` at once, without the busy handler waiting.

mod migrations;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use migrations::{MIGRATIONS, schema_version};

/// A pooled connection.
pub type Conn = r2d2::PooledConnection<SqliteConnectionManager>;

/// How long a connection waits for another writer before giving up. Long, because
/// a user must never see "database is locked" from ordinary concurrent use; a write
/// transaction in quire lasts milliseconds.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors from opening or using the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error(
        "the database {path} has schema version {found}, newer than this quire understands \
         ({known}); upgrade quire, or point --data-dir at another database"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "cannot open the database {path}: {source}; check that the data dir exists and is writable"
    )]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// The shared handle to the database: cheap to clone, safe to send between threads.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl Db {
    /// Opens (creating if needed) the database at `path`, switches it to WAL, applies
    /// pending migrations and builds a pool of at most `max_connections`.
    ///
    /// Fails with [`DbError::TooNew`] when the file was written by a newer quire.
    pub fn open(path: &Path, max_connections: u32) -> Result<Db, DbError> {
        let open_err = |source| DbError::Open {
            path: path.to_path_buf(),
            source,
        };
        // WAL is set once here, on a setup connection: setting it in every pooled
        // connection's init races for an exclusive lock.
        let mut setup = Connection::open(path).map_err(open_err)?;
        configure(&setup).map_err(open_err)?;
        let mode: String = setup
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("{}: journal mode is {mode}, not WAL", path.display());
        }
        migrations::apply(&mut setup, path)?;
        drop(setup);

        let manager = SqliteConnectionManager::file(path).with_init(|c| configure(c));
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(0))
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)?;
        Ok(Db {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// Takes a connection from the pool.
    pub fn conn(&self) -> Result<Conn, DbError> {
        Ok(self.pool.get()?)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Per-connection settings. The busy timeout comes first so that every later
/// statement already waits instead of failing.
fn configure(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.pragma_update(None, "foreign_keys", true)?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Starts a write transaction with `BEGIN IMMEDIATE`, which takes the write lock up
/// front and so waits in the busy handler instead of failing at the upgrade.
pub fn write_tx(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pragmas_take_effect_on_pooled_connections() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("q.db"), 2).unwrap();
        let c = db.conn().unwrap();
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let fk: i64 = c
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        let busy: i64 = c
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(fk, 1);
        assert_eq!(sync, 1, "NORMAL");
        assert_eq!(busy, BUSY_TIMEOUT.as_millis() as i64);
    }
}
