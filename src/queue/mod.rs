//! The task queue: the one API through which everything enqueues, claims and
//! finishes work, and the one owner of a document's status (which follows its
//! tasks: queued, ocr, indexing, indexed, failed, cancelled).
//!
//! [`Queue`]'s methods state the contract every storage engine keeps; each
//! dispatches on the database's [`Engine`] to a per-engine file with its SQL
//! and its tests beside it (`queue/sqlite/`: one file per operation, in the manner
//! of effectum).
//!
//! Contracts every operation keeps, on every engine:
//! - every operation is one transaction: it happens whole or not at all,
//!   whoever else writes at the same time and wherever the process is killed;
//! - a document has at most one pending-or-claimed task per type, enforced by
//!   the database (on SQLite, triggers that skip the write which would add a
//!   second), not by the caller's read-then-write;
//! - a task is claimed by at most one worker at a time, and every update of a
//!   claimed task is fenced by the claiming worker's id: an update that
//!   touches no row is [`QueueError::LostClaim`] and changes nothing;
//! - time comes from the injected [`Clock`] (Unix ms), read once the
//!   transaction holds its locks, so a wait for another writer does not
//!   leave a stale timestamp.

mod batch;
mod maintenance;
pub mod postgres;
pub(crate) mod sqlite;
mod stats;
mod types;

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::{Db, Engine};
use crate::store::NewDocument;

pub use crate::store::DocumentStatus;

pub use maintenance::{Maintenance, ReleasedStale};
pub use stats::{QueueStats, RecentFailure, RunningTask, StatusCounts};
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
    /// Whether a finished OCR task enqueues the document's searchable PDF
    /// task (`output.searchable_pdf`).
    pub searchable_pdf: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_attempts: 3,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(3600),
            searchable_pdf: true,
        }
    }
}

impl Policy {
    /// The policy the configuration sets (its `[queue]` section, and
    /// `output.searchable_pdf`).
    pub fn from_config(config: &Config) -> Policy {
        let queue = &config.queue;
        Policy {
            max_attempts: queue.max_attempts,
            backoff_base: queue.backoff_base.0,
            backoff_max: queue.backoff_max.0,
            searchable_pdf: config.output.searchable_pdf,
        }
    }

    /// The tasks a completed task of type `done` enqueues for its document,
    /// at its priority: OCR is followed by indexing and, with
    /// `searchable_pdf`, by the PDF.
    pub fn next_tasks(&self, done: TaskType) -> &'static [TaskType] {
        match done {
            TaskType::Ocr if self.searchable_pdf => &[TaskType::Indexing, TaskType::Pdf],
            TaskType::Ocr => &[TaskType::Indexing],
            TaskType::Indexing | TaskType::Pdf => &[],
        }
    }

    /// What becomes of `claim`'s attempt failing with `kind` at `now`: a
    /// transient failure with attempts left is retried after the backoff;
    /// anything else fails the task.
    pub fn fail_outcome(&self, claim: &Claim, kind: FailureKind, now: i64) -> FailOutcome {
        if kind == FailureKind::Transient && claim.attempt < claim.max_attempts {
            FailOutcome::RetryAt(now + self.backoff_ms(claim.attempt))
        } else {
            FailOutcome::Failed
        }
    }

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

    /// The time a PostgreSQL transaction uses: the server's, so that hosts
    /// whose clocks disagree agree on heartbeats, stale claims and backoff;
    /// a queue with an injected clock (tests) uses that.
    fn pg_now(&self, tx: &mut impl ::postgres::GenericClient) -> Result<i64, QueueError> {
        if self.clock.is_wall() {
            postgres::db_now_ms(tx)
        } else {
            Ok(self.clock.now_ms())
        }
    }

    /// The time for a PostgreSQL function that reads the clock itself
    /// (migration 0003): `None`, the server's clock at the call, unless a
    /// clock was injected (tests).
    fn pg_clock(&self) -> Option<i64> {
        (!self.clock.is_wall()).then(|| self.clock.now_ms())
    }

    /// Runs `f` in one PostgreSQL transaction with [`Queue::pg_now`]'s time.
    fn pg_write<T>(
        &self,
        db: &crate::db::postgres::PostgresDb,
        f: impl FnOnce(&mut ::postgres::Transaction<'_>, i64) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        db.write(|tx| {
            let now = self.pg_now(tx)?;
            f(tx, now)
        })
    }

    /// Creates a document and its OCR task in one transaction, so that no
    /// document exists without the task that reads it. `Ok(None)` when a
    /// document with the same content (`sha256`) exists already, however
    /// many processes ingest the same content at once: exactly one creates it.
    pub fn create_document_with_task(
        &self,
        doc: &NewDocument<'_>,
        priority: Priority,
    ) -> Result<Option<(i64, Enqueued)>, QueueError> {
        let max = self.policy.max_attempts;
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                sqlite::enqueue::do_create_document(tx, doc, priority, max, self.now_ms())
            }),
            Engine::Postgres(db) => self.pg_write(db, |tx, now| {
                postgres::enqueue::do_create_document(tx, doc, priority, max, now)
            }),
        }
    }

    /// Enqueues a task for `document_id`, or says that one is already live
    /// (idempotent under concurrency). A new task sets the document's status
    /// to match the task type. [`QueueError::DocumentNotFound`] when there is
    /// no such document.
    pub fn enqueue(
        &self,
        document_id: i64,
        task_type: TaskType,
        priority: Priority,
    ) -> Result<Enqueued, QueueError> {
        self.enqueue_batch(&[(document_id, task_type, priority)])
            .map(|mut v| v.remove(0))
    }

    /// Enqueues many tasks in one transaction; the results are in input order.
    pub fn enqueue_batch(
        &self,
        tasks: &[(i64, TaskType, Priority)],
    ) -> Result<Vec<Enqueued>, QueueError> {
        let max = self.policy.max_attempts;
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                let now = self.now_ms();
                tasks
                    .iter()
                    .map(|&(doc, ty, pri)| sqlite::enqueue::do_enqueue(tx, doc, ty, pri, max, now))
                    .collect()
            }),
            Engine::Postgres(db) => self.pg_write(db, |tx, now| {
                tasks
                    .iter()
                    .map(|&(doc, ty, pri)| {
                        postgres::enqueue::do_enqueue(tx, doc, ty, pri, max, now)
                    })
                    .collect()
            }),
        }
    }

    /// Atomically claims up to `limit` due tasks for `worker`, by priority, then
    /// by the time they became due, then by id; counts an attempt on each and
    /// moves their documents to the task's status. Returns fewer (or none) when
    /// fewer are due. Two workers, in any processes, never claim the same task.
    pub fn claim(&self, worker: &str, limit: usize) -> Result<Vec<Claim>, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::claim::do_claim(tx, worker, limit, self.now_ms()))
            }
            Engine::Postgres(db) => {
                db.statement(|c| postgres::claim::do_claim(c, worker, limit, self.pg_clock()))
            }
        }
    }

    /// Claims one document's pending task of `task_type` whether due or not
    /// (`quire process`); `None` when it has none pending.
    pub fn claim_document(
        &self,
        worker: &str,
        document_id: i64,
        task_type: TaskType,
    ) -> Result<Option<Claim>, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                sqlite::claim::do_claim_document(
                    tx,
                    worker,
                    document_id,
                    task_type,
                    false,
                    self.now_ms(),
                )
            }),
            Engine::Postgres(db) => db.statement(|c| {
                let now = self.pg_clock();
                postgres::claim::do_claim_document(c, worker, document_id, task_type, false, now)
            }),
        }
    }

    /// Records that `claim`'s worker is still alive. Fenced.
    pub fn heartbeat(&self, claim: &Claim) -> Result<(), QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::lease::do_heartbeat(tx, claim, self.now_ms()))
            }
            Engine::Postgres(db) => {
                self.pg_write(db, |tx, now| postgres::lease::do_heartbeat(tx, claim, now))
            }
        }
    }

    /// Records that `claim`'s attempt made progress (a checkpoint a later
    /// attempt will not redo). Fenced. An attempt that made progress does not
    /// count against `max_attempts` when its worker dies or hangs
    /// ([`Maintenance::release_stale`], [`Maintenance::release_dead`]).
    pub fn record_progress(&self, claim: &Claim) -> Result<(), QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::lease::do_record_progress(tx, claim, self.now_ms()))
            }
            Engine::Postgres(db) => self.pg_write(db, |tx, now| {
                postgres::lease::do_record_progress(tx, claim, now)
            }),
        }
    }

    /// Marks the task completed and moves its document on, in one
    /// transaction: a finished OCR task enqueues the document's indexing task
    /// and (with [`Policy::searchable_pdf`]) its PDF task, at the same
    /// priority; a finished indexing task marks the document indexed.
    /// Fenced: a lost claim completes nothing.
    pub fn complete(&self, claim: &Claim) -> Result<(), QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::lease::do_complete(tx, claim, &self.policy, self.now_ms()))
            }
            Engine::Postgres(db) => db.statement(|c| {
                postgres::lease::do_complete(c, claim, &self.policy, self.pg_clock())
            }),
        }
    }

    /// Completes many claimed tasks in one transaction (one commit where
    /// there were as many as tasks), each as [`Queue::complete`] does and
    /// each fenced on its own: the answer says, in input order, which were
    /// completed and which claims were lost (those change nothing). A
    /// database error completes none.
    pub fn complete_batch(
        &self,
        claims: &[Claim],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                sqlite::lease::do_complete_batch(tx, claims, &self.policy, self.now_ms())
            }),
            Engine::Postgres(db) => db.statement(|c| {
                postgres::lease::do_complete_batch(c, claims, &self.policy, self.pg_clock())
            }),
        }
    }

    /// [`Queue::complete`], then the worker's next work, in the same write
    /// transaction (one commit where two were): after an OCR task, its
    /// document's indexing task (so that a document is searchable the moment
    /// it is read); otherwise up to `limit` due tasks, as [`Queue::claim`].
    /// Fenced like `complete`: a lost claim completes and claims nothing.
    pub fn complete_and_claim(
        &self,
        claim: &Claim,
        limit: usize,
    ) -> Result<Vec<Claim>, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                let now = self.now_ms();
                sqlite::lease::do_complete(tx, claim, &self.policy, now)?;
                if claim.task_type == TaskType::Ocr
                    && let Some(next) = sqlite::claim::do_claim_document(
                        tx,
                        &claim.worker,
                        claim.document_id,
                        TaskType::Indexing,
                        true,
                        now,
                    )?
                {
                    return Ok(vec![next]);
                }
                sqlite::claim::do_claim(tx, &claim.worker, limit, now)
            }),
            // One statement: the whole step is one round trip (see lease.rs),
            // prepared once per connection.
            Engine::Postgres(db) => db.prepared(
                postgres::lease::COMPLETE_AND_CLAIM,
                postgres::lease::COMPLETE_AND_CLAIM_TYPES,
                |c, step| {
                    let now = self.pg_clock();
                    postgres::lease::do_complete_and_claim(c, step, claim, &self.policy, limit, now)
                },
            ),
        }
    }

    /// Records a failure: transient failures go back to pending with backoff
    /// until `max_attempts`; permanent ones (and the last attempt) fail the task
    /// and its document with `error`. Fenced.
    pub fn fail(
        &self,
        claim: &Claim,
        kind: FailureKind,
        error: &str,
    ) -> Result<FailOutcome, QueueError> {
        let policy = self.policy;
        match self.db.engine() {
            Engine::Sqlite(db) => db
                .write(|tx| sqlite::lease::do_fail(tx, claim, kind, error, &policy, self.now_ms())),
            Engine::Postgres(db) => self.pg_write(db, |tx, now| {
                postgres::lease::do_fail(tx, claim, kind, error, &policy, now)
            }),
        }
    }

    /// Gives a claimed task back to the queue, due now, without counting the
    /// attempt, for a clean shutdown; its checkpoints stay, so the next claim
    /// resumes. Fenced. Its document keeps its status ('ocr' for an OCR
    /// task), as with a release of a stale claim.
    pub fn release(&self, claim: &Claim) -> Result<(), QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::lease::do_release(tx, claim, self.now_ms()))
            }
            Engine::Postgres(db) => {
                self.pg_write(db, |tx, now| postgres::lease::do_release(tx, claim, now))
            }
        }
    }

    /// Cancels a pending or claimed task; a stage task (OCR, indexing) marks
    /// its document cancelled. A worker holding the claim finds it lost: at
    /// once in a daemon (its waker sees the commit), else at its next
    /// heartbeat.
    pub fn cancel(&self, task_id: i64) -> Result<(), QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::admin::do_cancel(tx, task_id, self.now_ms()))
            }
            Engine::Postgres(db) => {
                self.pg_write(db, |tx, now| postgres::admin::do_cancel(tx, task_id, now))
            }
        }
    }

    /// Puts a failed or cancelled task back to pending with its attempts reset
    /// and the policy's `max_attempts`; refused while the document has another
    /// live task of the same type.
    pub fn retry(&self, task_id: i64) -> Result<(), QueueError> {
        let max = self.policy.max_attempts;
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::admin::do_retry(tx, task_id, max, self.now_ms()))
            }
            Engine::Postgres(db) => self.pg_write(db, |tx, now| {
                postgres::admin::do_retry(tx, task_id, max, now)
            }),
        }
    }

    /// Retries the newest failed task of each document and type that has no live
    /// task; returns the ids retried.
    pub fn retry_all_failed(&self) -> Result<Vec<i64>, QueueError> {
        let max = self.policy.max_attempts;
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::admin::do_retry_all_failed(tx, max, self.now_ms()))
            }
            Engine::Postgres(db) => self.pg_write(db, |tx, now| {
                postgres::admin::do_retry_all_failed(tx, max, now)
            }),
        }
    }

    /// True when a task of `priority` or a higher one is due and waits
    /// for a worker (a task running that long should give way; see
    /// `queue.time_slice`).
    pub fn others_waiting(&self, priority: Priority) -> Result<bool, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.read(|c| sqlite::claim::do_others_waiting(c, priority, self.now_ms()))
            }
            Engine::Postgres(db) => self.pg_write(db, |tx, now| {
                postgres::claim::do_others_waiting(tx, priority, now)
            }),
        }
    }

    /// The queue's maintenance operations (stale claims, orphans, purge).
    pub fn maintenance(&self) -> Maintenance<'_> {
        Maintenance::new(self)
    }

    /// Counts and recent history, for `stats`, read in one snapshot so the
    /// numbers agree with each other.
    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::stats::do_stats(c, self.now_ms())),
            Engine::Postgres(db) => db.snapshot(|tx| {
                let now = self.pg_now(tx)?;
                postgres::stats::do_stats(tx, now)
            }),
        }
    }

    /// The claimed tasks with their documents' progress, oldest claim first.
    pub fn running(&self) -> Result<Vec<RunningTask>, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(sqlite::stats::do_running),
            Engine::Postgres(db) => db.snapshot(|tx| postgres::stats::do_running(tx)),
        }
    }

    /// One task by id, or [`QueueError::TaskNotFound`].
    pub fn task(&self, task_id: i64) -> Result<Task, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::task_by_id(c, task_id)),
            Engine::Postgres(db) => {
                db.snapshot(|tx| postgres::admin::task_by_id(tx, task_id, false))
            }
        }
    }

    /// The newest `limit` tasks with `status`, newest first (the web page's
    /// queue view).
    pub fn tasks_with_status(
        &self,
        status: TaskStatus,
        limit: usize,
    ) -> Result<Vec<Task>, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::tasks_with_status(c, status, limit)),
            Engine::Postgres(db) => {
                db.snapshot(|tx| postgres::admin::tasks_with_status(tx, status, limit))
            }
        }
    }

    /// Every task of a document, oldest first.
    pub fn tasks_of(&self, document_id: i64) -> Result<Vec<Task>, QueueError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::tasks_of(c, document_id)),
            Engine::Postgres(db) => db.snapshot(|tx| postgres::admin::tasks_of(tx, document_id)),
        }
    }
}
