//! Housekeeping the scheduler runs: releasing stale and dead claims,
//! re-queueing orphaned documents, purging old finished tasks. Every
//! operation is one transaction and safe to run from several processes at
//! once: a claim is released at most once, an orphan enqueued at most once.

use std::time::Duration;

use super::{DocumentStatus, Queue, QueueError, TaskType, postgres, sqlite};
use crate::db::Engine;

/// A claimed task given back because its worker stopped heartbeating or died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedStale {
    pub task_id: i64,
    pub document_id: i64,
    pub worker: String,
    /// True when that was its last attempt, so it failed instead of returning to pending.
    pub failed: bool,
}

/// The maintenance operations of a [`Queue`].
pub struct Maintenance<'q> {
    queue: &'q Queue,
}

impl<'q> Maintenance<'q> {
    pub(super) fn new(queue: &'q Queue) -> Self {
        Maintenance { queue }
    }

    /// Releases claimed tasks whose last heartbeat is older than `stale_timeout`
    /// (a hung worker). The attempt stays counted unless it made progress
    /// ([`Queue::record_progress`]), so a document that hangs its worker every
    /// time fails after `max_attempts` instead of looping.
    pub fn release_stale(&self, stale_timeout: Duration) -> Result<Vec<ReleasedStale>, QueueError> {
        let reason = format!(
            "worker stopped heartbeating for over {}s",
            stale_timeout.as_secs()
        );
        match self.queue.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                let now = self.queue.now_ms();
                let cutoff = now - stale_timeout.as_millis() as i64;
                sqlite::maintenance::do_release_stale(tx, cutoff, &reason, now)
            }),
            Engine::Postgres(db) => self.queue.pg_write(db, |tx, now| {
                let cutoff = now - stale_timeout.as_millis() as i64;
                postgres::maintenance::do_release_stale(tx, cutoff, &reason, now)
            }),
        }
    }

    /// Releases at once the claims held by workers that `is_dead` says are gone
    /// (for example an earlier process on this host that was killed). A death
    /// does not count against the task's attempts until the task has been
    /// claimed several times over `max_attempts` without progress.
    pub fn release_dead(
        &self,
        is_dead: impl Fn(&str) -> bool,
    ) -> Result<Vec<ReleasedStale>, QueueError> {
        let max = self.queue.policy.max_attempts;
        match self.queue.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                sqlite::maintenance::do_release_dead(tx, is_dead, max, self.queue.now_ms())
            }),
            Engine::Postgres(db) => self.queue.pg_write(db, |tx, now| {
                postgres::maintenance::do_release_dead(tx, is_dead, max, now)
            }),
        }
    }

    /// Enqueues, at low priority, a task for every document that needs OCR or
    /// indexing but has no live task (a crash between steps, a restored backup).
    /// Returns the documents and the task types enqueued.
    pub fn enqueue_orphans(&self) -> Result<Vec<(i64, TaskType)>, QueueError> {
        let max = self.queue.policy.max_attempts;
        match self.queue.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::maintenance::do_enqueue_orphans(tx, max, self.queue.now_ms()))
            }
            Engine::Postgres(db) => self.queue.pg_write(db, |tx, now| {
                postgres::maintenance::do_enqueue_orphans(tx, max, now)
            }),
        }
    }

    /// Deletes completed and cancelled tasks finished more than `retention` ago.
    /// Failed tasks are kept: they are what `retry` and `show` need.
    pub fn purge(&self, retention: Duration) -> Result<usize, QueueError> {
        match self.queue.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                let cutoff = self.queue.now_ms() - retention.as_millis() as i64;
                sqlite::maintenance::do_purge(tx, cutoff)
            }),
            Engine::Postgres(db) => self.queue.pg_write(db, |tx, now| {
                let cutoff = now - retention.as_millis() as i64;
                Ok(postgres::maintenance::do_purge(tx, cutoff)? as usize)
            }),
        }
    }

    /// Whether this queue's engine needs [`Maintenance::vacuum`] while the
    /// queue runs (`None`: SQLite, whose b-trees drop a deleted entry at
    /// once) and, on PostgreSQL, whether this user may run it (the table's
    /// or the database's owner, or a superuser).
    pub fn may_vacuum(&self) -> Result<Option<bool>, QueueError> {
        match self.queue.db.engine() {
            Engine::Sqlite(_) => Ok(None),
            Engine::Postgres(db) => {
                db.statement(|c| postgres::maintenance::may_vacuum(c).map(Some))
            }
        }
    }

    /// On PostgreSQL, vacuums the task table once it holds
    /// [`VACUUM_AFTER_DEAD_ROWS`](postgres::maintenance::VACUUM_AFTER_DEAD_ROWS)
    /// dead row versions, which a busy queue's claims walk over until a
    /// vacuum (see `postgres::maintenance::do_vacuum`); returns how many it
    /// found when it vacuumed. Safe to run from every host at once: a
    /// vacuum already running elsewhere is left to finish. Nothing on SQLite.
    pub fn vacuum(&self) -> Result<Option<i64>, QueueError> {
        match self.queue.db.engine() {
            Engine::Sqlite(_) => Ok(None),
            Engine::Postgres(db) => db.statement(|c| {
                postgres::maintenance::do_vacuum(c, postgres::maintenance::VACUUM_AFTER_DEAD_ROWS)
            }),
        }
    }
}

/// The task an orphaned document (one that needs work but has no live task)
/// gets: indexing when it was being indexed, else OCR. Enqueueing OCR sets
/// the status to queued; a document whose OCR had started is set back to
/// `ocr` by the engine, its checkpoints remaining.
pub(super) fn orphan_task(status: DocumentStatus) -> TaskType {
    if status == DocumentStatus::Indexing {
        TaskType::Indexing
    } else {
        TaskType::Ocr
    }
}
