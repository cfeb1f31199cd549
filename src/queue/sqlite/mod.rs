//! The queue on SQLite: one file per operation, each a `do_x(tx, ...)` with
//! its SQL inline and its tests beside it. Every writing operation runs inside
//! the `BEGIN IMMEDIATE` transaction [`crate::db::sqlite::SqliteDb::write`] opens.

pub(crate) mod admin;
pub(crate) mod claim;
pub(crate) mod enqueue;
pub(crate) mod lease;
pub(crate) mod maintenance;
pub(crate) mod stats;

use rusqlite::{Connection, OptionalExtension, Row, named_params};

use super::{DocumentStatus, Priority, QueueError, Task};
use crate::db::DbError;
use crate::db::sqlite::parse_col;

impl From<rusqlite::Error> for QueueError {
    fn from(e: rusqlite::Error) -> Self {
        QueueError::Db(DbError::Sqlite(e))
    }
}

/// The columns [`task_from_row`] reads, in order.
const TASK_COLUMNS: &str = "id, document_id, task_type, priority, status, attempts, max_attempts, \
    run_after, claimed_by, claimed_at, heartbeat_at, completed_at, last_error, created_at";

/// Reads a [`Task`] from a row selected with [`TASK_COLUMNS`].
fn task_from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: r.get(0)?,
        document_id: r.get(1)?,
        task_type: parse_col(r, 2)?,
        priority: Priority::from_rank(r.get(3)?),
        status: parse_col(r, 4)?,
        attempts: r.get(5)?,
        max_attempts: r.get(6)?,
        run_after: r.get(7)?,
        claimed_by: r.get(8)?,
        claimed_at: r.get(9)?,
        heartbeat_at: r.get(10)?,
        completed_at: r.get(11)?,
        last_error: r.get(12)?,
        created_at: r.get(13)?,
    })
}

/// Loads one task, or [`QueueError::TaskNotFound`].
pub(crate) fn task_by_id(c: &Connection, task_id: i64) -> Result<Task, QueueError> {
    c.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM task_queue WHERE id = ?1"
    ))?
    .query_row([task_id], task_from_row)
    .optional()?
    .ok_or(QueueError::TaskNotFound(task_id))
}

/// Every task of a document, oldest first.
pub(crate) fn tasks_of(c: &Connection, document_id: i64) -> Result<Vec<Task>, QueueError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM task_queue WHERE document_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([document_id], task_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest `limit` tasks with `status`, newest first.
pub(crate) fn tasks_with_status(
    c: &Connection,
    status: crate::queue::TaskStatus,
    limit: usize,
) -> Result<Vec<Task>, QueueError> {
    // The limit is written in, as in the claim: a bound LIMIT re-prepares.
    let mut st = c.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM task_queue WHERE status = ?1 ORDER BY id DESC LIMIT {limit}"
    ))?;
    let rows = st.query_map([status.as_str()], task_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Sets a document's status (and clears or sets its error) as its tasks move.
/// The queue is the only writer of `documents.status`.
fn set_document_status(
    c: &Connection,
    document_id: i64,
    status: DocumentStatus,
    error: Option<&str>,
    now: i64,
) -> Result<(), QueueError> {
    c.prepare_cached(
        "UPDATE documents SET status = :status, last_error = :error, updated_at = :now \
         WHERE id = :id",
    )?
    .execute(named_params! {
        ":status": status.as_str(), ":error": error, ":now": now, ":id": document_id,
    })?;
    Ok(())
}

/// [`set_document_status`] for many documents in one statement (no error
/// to record): what a batch of claims or completions moves on.
fn set_documents_status(
    c: &Connection,
    documents: &[i64],
    status: DocumentStatus,
    now: i64,
) -> Result<(), QueueError> {
    c.prepare_cached(
        "UPDATE documents SET status = :status, last_error = NULL, updated_at = :now \
         WHERE id IN (SELECT value FROM json_each(:ids))",
    )?
    .execute(named_params! {
        ":status": status.as_str(), ":now": now,
        ":ids": serde_json::to_string(documents).expect("ids serialize"),
    })?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh database with documents in it, for the queue's unit tests.
    use std::sync::Arc;

    use crate::clock::ManualClock;
    use crate::db::{Db, Engine};
    use crate::queue::{Claim, DocumentStatus, Policy, Queue};

    pub const T0: i64 = 1_700_000_000_000;

    pub struct Fixture {
        pub _dir: tempfile::TempDir,
        pub queue: Queue,
        pub clock: ManualClock,
    }

    /// A queue on a new database file with the manual clock at [`T0`].
    pub fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("quire.db"), 4).unwrap();
        let clock = ManualClock::new(T0);
        let queue = Queue::with_clock(db, Policy::default(), Arc::new(clock.clone()));
        Fixture {
            _dir: dir,
            queue,
            clock,
        }
    }

    impl Fixture {
        /// The SQLite connection pool under the queue.
        pub fn conn(&self) -> crate::db::sqlite::Conn {
            let Engine::Sqlite(db) = self.queue.db().engine() else {
                unreachable!("the fixture opens a SQLite file")
            };
            db.conn().unwrap()
        }

        /// Inserts a document row and returns its id.
        pub fn document(&self, name: &str) -> i64 {
            let c = self.conn();
            c.execute(
                "INSERT INTO documents (original_name, stored_path, size, sha256, kind, created_at, updated_at) \
                 VALUES (?1, ?1, 1, ?1, 'png', ?2, ?2)",
                rusqlite::params![name, T0],
            )
            .unwrap();
            c.last_insert_rowid()
        }

        /// The document's status.
        pub fn doc_status(&self, id: i64) -> DocumentStatus {
            let s: String = self
                .conn()
                .query_row("SELECT status FROM documents WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .unwrap();
            s.parse().unwrap()
        }

        /// Claims exactly one task as `worker`.
        pub fn claim_one(&self, worker: &str) -> Claim {
            let mut c = self.queue.claim(worker, 1).unwrap();
            assert_eq!(c.len(), 1, "expected one due task");
            c.pop().unwrap()
        }
    }
}
