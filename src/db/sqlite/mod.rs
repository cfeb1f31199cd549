//! The SQLite engine: one file in the data dir, opened through an r2d2 pool.
//!
//! Every connection runs in WAL mode with `synchronous=NORMAL`, foreign keys on and
//! a generous busy timeout, so the daemon and several CLI commands can share the file.
//! Writers must start with `BEGIN IMMEDIATE` (see [`write_tx`]): a deferred transaction
//! that upgrades to a write gets `SQLITE_BUSY` at once, without the busy handler waiting.
//!
//! This module and the `sqlite` modules of the queue and the store are the only
//! places that name `rusqlite`.

mod check;
mod lock;
mod migrations;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{BUSY_TIMEOUT, DbError, Location};

pub use lock::FileLock;
pub use migrations::{MIGRATIONS, schema_version};
pub use rusqlite::Error;
pub use watch::DataVersionWatch;

/// A pooled connection.
pub type Conn = r2d2::PooledConnection<SqliteConnectionManager>;

/// An open SQLite database: its pool and its file.
#[derive(Clone)]
pub struct SqliteDb {
    pool: r2d2::Pool<SqliteConnectionManager>,
    path: PathBuf,
    /// The connection every write of this process runs on (opened by the
    /// first), taken for the write's whole transaction.
    /// - One lock: SQLite lets one writer in at a time anyway; one that finds
    ///   the lock taken sleeps in its busy handler (1 ms, then 2, 5, 10...),
    ///   an age next to a queue step of 30 us, and wakes when it wakes, not
    ///   when the lock is free. Waiting here instead, writers of this process
    ///   follow each other at once; the busy handler is left to other
    ///   processes.
    /// - One connection, not a pooled one per write: a connection that finds
    ///   the file changed by another since its last transaction drops its
    ///   whole page cache, so writes alternating over pooled connections
    ///   each began cold (two workers drained the queue a third slower than
    ///   one).
    writer: Arc<Mutex<Option<Connection>>>,
}

impl SqliteDb {
    /// Opens (creating if needed) the database at `path`, switches it to WAL, applies
    /// pending migrations and builds a pool of at most `max_connections`.
    pub fn open(path: &Path, max_connections: u32) -> Result<SqliteDb, DbError> {
        let open_err = |error| DbError::Open {
            location: Location::Sqlite(path.to_path_buf()),
            error,
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
        Ok(SqliteDb {
            pool,
            path: path.to_path_buf(),
            writer: Arc::default(),
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

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer connection,
    /// committing when it returns `Ok`; an `Err` (or a panic) rolls
    /// everything back.
    pub fn write<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        // A poisoned lock only says a writer panicked; its transaction was
        // rolled back (CachedTx) and the connection is as good as before.
        let _outermost = OutermostWrite::enter();
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let conn = match &mut *writer {
            Some(conn) => conn,
            empty => empty.insert(self.open_writer()?),
        };
        if !conn.is_autocommit() {
            // Left in a transaction by a COMMIT that failed: BEGIN would
            // fail on it for ever.
            let _ = conn.execute_batch("ROLLBACK");
        }
        let tx = CachedTx::begin(conn).map_err(DbError::from)?;
        let out = f(conn)?;
        tx.commit().map_err(DbError::from)?;
        Ok(out)
    }

    /// Opens the connection writes run on, set up as the pool's are.
    fn open_writer(&self) -> Result<Connection, DbError> {
        let conn = Connection::open(&self.path).and_then(|c| configure(&c).map(|()| c));
        conn.map_err(|error| DbError::Open {
            location: Location::Sqlite(self.path.clone()),
            error,
        })
    }

    /// Runs a read-only `f` on a pooled connection (one consistent snapshot
    /// per statement; wrap several reads in a transaction where they must agree).
    pub fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self.conn()?;
        f(&conn)
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

/// Reads a text column into one of quire's state enums (see
/// `text_enum!`); an unknown name is a conversion error.
pub fn parse_col<T: std::str::FromStr<Err = String>>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

thread_local! {
    /// True while this thread runs a write.
    static WRITING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks this thread as writing, for the length of one write: a write
/// started inside another would wait for the writer mutex its own thread
/// holds, for ever; it panics instead, naming the bug.
struct OutermostWrite;

impl OutermostWrite {
    fn enter() -> OutermostWrite {
        assert!(
            !WRITING.replace(true),
            "a database write was started inside another on the same thread"
        );
        OutermostWrite
    }
}

impl Drop for OutermostWrite {
    fn drop(&mut self) {
        WRITING.set(false);
    }
}

/// A write transaction whose `BEGIN IMMEDIATE` and `COMMIT` are cached
/// statements: rusqlite's [`Transaction`] parses both again each time, a
/// measurable part of a queue step that is one small transaction. Rolls
/// back when dropped unfinished (an error or a panic in between).
struct CachedTx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> CachedTx<'c> {
    fn begin(conn: &'c Connection) -> rusqlite::Result<CachedTx<'c>> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(CachedTx { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for CachedTx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Starts a write transaction with `BEGIN IMMEDIATE`, which takes the write lock up
/// front and so waits in the busy handler instead of failing at the upgrade.
pub fn write_tx(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// A new database in a temp dir, for the engine's unit tests.
#[cfg(test)]
pub(crate) fn test_db() -> (tempfile::TempDir, SqliteDb) {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("q.db"), 2).unwrap();
    (dir, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_commits_on_ok_and_rolls_back_on_an_error_or_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        // One connection: what a failed write leaves behind is what the next gets.
        let db = SqliteDb::open(&dir.path().join("q.db"), 1).unwrap();
        let insert = |c: &Connection, v: i64| -> Result<usize, DbError> {
            Ok(c.execute("INSERT INTO schema_check (v) VALUES (?1)", [v])?)
        };
        db.write(|c| -> Result<(), DbError> {
            Ok(c.execute_batch("CREATE TABLE schema_check (v INTEGER)")?)
        })
        .unwrap();
        db.write(|c| insert(c, 1)).unwrap();
        let failed: Result<(), DbError> = db.write(|c| {
            insert(c, 2)?;
            Err(DbError::from(rusqlite::Error::InvalidQuery))
        });
        assert!(failed.is_err());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = db.write(|c| -> Result<(), DbError> {
                insert(c, 3)?;
                panic!("in the middle of a write")
            });
        }));
        assert!(panicked.is_err());
        db.write(|c| insert(c, 4)).unwrap();
        let values: Vec<i64> = db
            .read(|c| -> Result<Vec<i64>, DbError> {
                let mut st = c.prepare("SELECT v FROM schema_check ORDER BY v")?;
                let rows = st.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(values, [1, 4]);
    }

    #[test]
    fn pragmas_take_effect_on_pooled_connections() {
        let (_dir, db) = test_db();
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
