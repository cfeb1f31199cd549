//! The task queue: the one API through which everything enqueues, claims and
//! finishes work. All of its SQL lives in this module's files (one per operation,
//! in the manner of effectum), so that a second storage engine can later implement
//! the same [`Queue`] API.
//!
//! Contracts every operation keeps:
//! - every write runs inside `BEGIN IMMEDIATE`;
//! - a document has at most one pending-or-claimed task per type, enforced by a
//!   partial unique index, not by a read-then-write;
//! - every update of a claimed task is fenced by the claiming worker's id, and an
//!   update that touches no row is [`QueueError::LostClaim`];
//! - time comes from the injected [`Clock`].

mod admin;
mod claim;
mod enqueue;
mod lease;
mod maintenance;
mod stats;
mod types;

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, Row};

use crate::clock::{Clock, SystemClock};
use crate::db::{Db, write_tx};

pub use maintenance::{Maintenance, ReleasedStale};
pub use stats::{DOCUMENT_STATUSES, QueueStats, RecentFailure, RunningTask, StatusCounts};
pub use types::*;

/// Retry and timing rules, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts before a task fails for good.
    pub max_attempts: i64,
    /// Delay before the first retry; doubled for each further attempt.
    pub backoff_base: Duration,
    /// Upper bound on the delay between attempts.
    pub backoff_max: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 3,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(3600),
        }
    }
}

impl Policy {
    /// The delay before retrying after `attempt` failed attempts:
    /// `base * 2^(attempt-1)`, capped at `max`, plus up to 25% random jitter so
    /// that tasks failing together do not come back together.
    pub fn backoff_ms(&self, attempt: i64) -> i64 {
        let base = self.backoff_base.as_millis() as i64;
        let exp = (attempt - 1).clamp(0, 30) as u32;
        let delay = base
            .saturating_mul(1i64 << exp)
            .min(self.backoff_max.as_millis() as i64);
        delay + jitter(delay / 4)
    }
}

/// A random number in `0..=max` (0 when `max` is 0), from std's per-instance
/// random hasher keys: enough for jitter, no extra dependency.
fn jitter(max: i64) -> i64 {
    use std::hash::{BuildHasher, RandomState};
    if max <= 0 {
        return 0;
    }
    (RandomState::new().hash_one(0u8) % (max as u64 + 1)) as i64
}

/// The task queue over one database.
#[derive(Clone)]
pub struct Queue {
    db: Db,
    clock: Arc<dyn Clock>,
    policy: Policy,
}

impl Queue {
    /// A queue on `db` using the wall clock.
    pub fn new(db: Db, policy: Policy) -> Queue {
        Queue::with_clock(db, policy, Arc::new(SystemClock))
    }

    /// A queue on `db` reading time from `clock`.
    pub fn with_clock(db: Db, policy: Policy, clock: Arc<dyn Clock>) -> Queue {
        Queue { db, clock, policy }
    }

    /// The database under this queue.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The retry policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The current time by this queue's clock, Unix ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committing if it succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&Connection, i64) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let mut conn = self.db.conn()?;
        let tx = write_tx(&mut conn)?;
        let out = f(&tx, self.now_ms())?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs a read-only `f` on a pooled connection.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection, i64) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let conn = self.db.conn()?;
        f(&conn, self.now_ms())
    }

    /// Enqueues a task for `document_id`, or says that one is already live.
    /// Also sets the document's status to match the task type.
    pub fn enqueue(
        &self,
        document_id: i64,
        task_type: TaskType,
        priority: Priority,
    ) -> Result<Enqueued, QueueError> {
        let max = self.policy.max_attempts;
        self.write(|tx, now| enqueue::do_enqueue(tx, document_id, task_type, priority, max, now))
    }

    /// [`Queue::enqueue`] inside a transaction the caller holds (opened with
    /// [`write_tx`]), so that a document and its first task commit together.
    pub(crate) fn enqueue_in(
        &self,
        tx: &Connection,
        document_id: i64,
        task_type: TaskType,
        priority: Priority,
    ) -> Result<Enqueued, QueueError> {
        enqueue::do_enqueue(
            tx,
            document_id,
            task_type,
            priority,
            self.policy.max_attempts,
            self.now_ms(),
        )
    }

    /// Enqueues many tasks in one transaction; the results are in input order.
    pub fn enqueue_batch(
        &self,
        tasks: &[(i64, TaskType, Priority)],
    ) -> Result<Vec<Enqueued>, QueueError> {
        let max = self.policy.max_attempts;
        self.write(|tx, now| {
            tasks
                .iter()
                .map(|&(doc, ty, pri)| enqueue::do_enqueue(tx, doc, ty, pri, max, now))
                .collect()
        })
    }

    /// Atomically claims up to `limit` due tasks for `worker`, by priority, then
    /// by the time they became due, then by id. Returns fewer (or none) when
    /// fewer are due.
    pub fn claim(&self, worker: &str, limit: usize) -> Result<Vec<Claim>, QueueError> {
        self.write(|tx, now| claim::do_claim(tx, worker, limit, now))
    }

    /// Claims one document's pending task of `task_type` whether due or not
    /// (`quire process`); `None` when it has none pending.
    pub fn claim_document(
        &self,
        worker: &str,
        document_id: i64,
        task_type: TaskType,
    ) -> Result<Option<Claim>, QueueError> {
        self.write(|tx, now| claim::do_claim_document(tx, worker, document_id, task_type, now))
    }

    /// Records that `claim`'s worker is still alive.
    pub fn heartbeat(&self, claim: &Claim) -> Result<(), QueueError> {
        self.write(|tx, now| lease::do_heartbeat(tx, claim, now))
    }

    /// Marks the task completed and moves its document on: a finished OCR task
    /// enqueues the document's indexing task in the same transaction.
    pub fn complete(&self, claim: &Claim) -> Result<(), QueueError> {
        let max = self.policy.max_attempts;
        self.write(|tx, now| lease::do_complete(tx, claim, max, now))
    }

    /// Records a failure: transient failures go back to pending with backoff
    /// until `max_attempts`; permanent ones (and the last attempt) fail the task
    /// and its document with `error`.
    pub fn fail(
        &self,
        claim: &Claim,
        kind: FailureKind,
        error: &str,
    ) -> Result<FailOutcome, QueueError> {
        let policy = self.policy;
        self.write(|tx, now| lease::do_fail(tx, claim, kind, error, &policy, now))
    }

    /// Gives a claimed task back to the queue without counting the attempt, for a
    /// clean shutdown; its checkpoints stay, so the next claim resumes.
    pub fn release(&self, claim: &Claim) -> Result<(), QueueError> {
        self.write(|tx, now| lease::do_release(tx, claim, now))
    }

    /// Cancels a pending or claimed task (and marks its document cancelled).
    pub fn cancel(&self, task_id: i64) -> Result<(), QueueError> {
        self.write(|tx, now| admin::do_cancel(tx, task_id, now))
    }

    /// Puts a failed or cancelled task back to pending with its attempts reset.
    pub fn retry(&self, task_id: i64) -> Result<(), QueueError> {
        let max = self.policy.max_attempts;
        self.write(|tx, now| admin::do_retry(tx, task_id, max, now))
    }

    /// Retries the newest failed task of each document and type that has no live
    /// task; returns the ids retried.
    pub fn retry_all_failed(&self) -> Result<Vec<i64>, QueueError> {
        let max = self.policy.max_attempts;
        self.write(|tx, now| admin::do_retry_all_failed(tx, max, now))
    }

    /// The queue's maintenance operations (stale claims, orphans, purge).
    pub fn maintenance(&self) -> Maintenance<'_> {
        Maintenance::new(self)
    }

    /// Counts and recent history, for `stats`.
    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        self.read(stats::do_stats)
    }

    /// The claimed tasks with their documents' progress.
    pub fn running(&self) -> Result<Vec<RunningTask>, QueueError> {
        self.read(|c, _| stats::do_running(c))
    }

    /// One task by id.
    pub fn task(&self, task_id: i64) -> Result<Task, QueueError> {
        self.read(|c, _| task_by_id(c, task_id))
    }

    /// Every task of a document, oldest first.
    pub fn tasks_of(&self, document_id: i64) -> Result<Vec<Task>, QueueError> {
        self.read(|c, _| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM task_queue WHERE document_id = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([document_id], task_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
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

/// Reads a text column into one of the queue's enums.
fn parse_col<T: std::str::FromStr<Err = String>>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    s.parse().map_err(|e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// Loads one task, or [`QueueError::TaskNotFound`].
fn task_by_id(c: &Connection, task_id: i64) -> Result<Task, QueueError> {
    use rusqlite::OptionalExtension;
    c.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM task_queue WHERE id = ?1"
    ))?
    .query_row([task_id], task_from_row)
    .optional()?
    .ok_or(QueueError::TaskNotFound(task_id))
}

/// Sets a document's status (and clears or sets its error) as its tasks move.
fn set_document_status(
    c: &Connection,
    document_id: i64,
    status: &str,
    error: Option<&str>,
    now: i64,
) -> Result<(), QueueError> {
    c.prepare_cached(
        "UPDATE documents SET status = :status, last_error = :error, updated_at = :now \
         WHERE id = :id",
    )?
    .execute(rusqlite::named_params! {
        ":status": status, ":error": error, ":now": now, ":id": document_id,
    })?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh database with documents in it, for the queue's unit tests.
    use super::*;
    use crate::clock::ManualClock;

    pub const T0: i64 = 1_700_000_000_000;

    pub struct Fixture {
        pub _dir: tempfile::TempDir,
        pub queue: Queue,
        pub clock: ManualClock,
    }

    /// A queue on a new database file with the manual clock at [`T0`].
    pub fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("quire.db"), 4).unwrap();
        let clock = ManualClock::new(T0);
        let queue = Queue::with_clock(db, Policy::default(), Arc::new(clock.clone()));
        Fixture {
            _dir: dir,
            queue,
            clock,
        }
    }

    impl Fixture {
        /// Inserts a document row and returns its id.
        pub fn document(&self, name: &str) -> i64 {
            let c = self.queue.db().conn().unwrap();
            c.execute(
                "INSERT INTO documents (original_name, stored_path, size, sha256, kind, created_at, updated_at) \
                 VALUES (?1, ?1, 1, ?1, 'png', ?2, ?2)",
                rusqlite::params![name, T0],
            )
            .unwrap();
            c.last_insert_rowid()
        }

        /// The document's status.
        pub fn doc_status(&self, id: i64) -> String {
            let c = self.queue.db().conn().unwrap();
            c.query_row("SELECT status FROM documents WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap()
        }

        /// Claims exactly one task as `worker`.
        pub fn claim_one(&self, worker: &str) -> Claim {
            let mut c = self.queue.claim(worker, 1).unwrap();
            assert_eq!(c.len(), 1, "expected one due task");
            c.pop().unwrap()
        }
    }
}
