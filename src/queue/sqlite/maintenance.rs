//! Housekeeping on SQLite: releasing stale and dead claims, re-queueing
//! orphaned documents, purging old finished tasks. Each function runs inside
//! the caller's write transaction.

use rusqlite::{Connection, named_params};

use super::{enqueue, set_document_status};
use crate::queue::{DocumentStatus, Priority, QueueError, ReleasedStale, TaskType};

/// How many times over `max_attempts` a task may be claimed by workers that
/// then die without making progress, before those deaths count.
pub(crate) const KILLS_FORGIVEN_FACTOR: i64 = 4;

/// Releases claimed tasks whose last heartbeat is older than `cutoff`.
pub(crate) fn do_release_stale(
    tx: &Connection,
    cutoff: i64,
    reason: &str,
    now: i64,
) -> Result<Vec<ReleasedStale>, QueueError> {
    claimed_where(tx, "heartbeat_at < :cutoff", cutoff)?
        .into_iter()
        .map(|(id, doc, worker)| release_one(tx, id, doc, worker, reason, None, now))
        .collect()
}

/// Releases the claims of workers that `is_dead` says are gone; their deaths
/// are forgiven until a task has been claimed `max_attempts *`
/// [`KILLS_FORGIVEN_FACTOR`] times.
pub(crate) fn do_release_dead(
    tx: &Connection,
    is_dead: impl Fn(&str) -> bool,
    max_attempts: i64,
    now: i64,
) -> Result<Vec<ReleasedStale>, QueueError> {
    let forgiven = max_attempts * KILLS_FORGIVEN_FACTOR;
    claimed_where(tx, "1", 0)?
        .into_iter()
        .filter(|(_, _, w)| is_dead(w))
        .map(|(id, doc, worker)| {
            let reason = format!("worker {worker} died while running this task");
            release_one(tx, id, doc, worker, &reason, Some(forgiven), now)
        })
        .collect()
}

/// Enqueues, at low priority, a task for every document that needs OCR or
/// indexing but has no live task.
pub(crate) fn do_enqueue_orphans(
    tx: &Connection,
    max_attempts: i64,
    now: i64,
) -> Result<Vec<(i64, TaskType)>, QueueError> {
    let mut st = tx.prepare_cached(
        "SELECT id, status FROM documents d \
         WHERE status IN ('queued', 'ocr', 'indexing') \
         AND NOT EXISTS (SELECT 1 FROM task_queue t WHERE t.document_id = d.id \
                         AND t.status IN ('pending', 'claimed'))",
    )?;
    let orphans: Vec<(i64, DocumentStatus)> = st
        .query_map([], |r| Ok((r.get(0)?, crate::db::sqlite::parse_col(r, 1)?)))?
        .collect::<Result<_, _>>()?;
    orphans
        .into_iter()
        .map(|(doc, status)| {
            let ty = crate::queue::maintenance::orphan_task(status);
            enqueue::do_enqueue(tx, doc, ty, Priority::Low, max_attempts, now)?;
            // Enqueueing OCR resets the status to queued; keep "ocr" visible
            // for a document whose OCR had started (its checkpoints remain).
            if status == DocumentStatus::Ocr {
                set_document_status(tx, doc, DocumentStatus::Ocr, None, now)?;
            }
            Ok((doc, ty))
        })
        .collect()
}

/// Deletes completed and cancelled tasks finished before `cutoff`.
pub(crate) fn do_purge(tx: &Connection, cutoff: i64) -> Result<usize, QueueError> {
    Ok(tx
        .prepare_cached(
            "DELETE FROM task_queue WHERE status IN ('completed', 'cancelled') \
             AND completed_at < :cutoff",
        )?
        .execute(named_params! { ":cutoff": cutoff })?)
}

/// Claimed tasks matching `condition` (which may use `:cutoff`).
fn claimed_where(
    tx: &Connection,
    condition: &str,
    cutoff: i64,
) -> Result<Vec<(i64, i64, String)>, QueueError> {
    let sql = format!(
        "SELECT id, document_id, claimed_by FROM task_queue WHERE status = 'claimed' AND {condition}"
    );
    let mut st = tx.prepare_cached(&sql)?;
    let params: &[(&str, &dyn rusqlite::ToSql)] = if condition.contains(":cutoff") {
        &[(":cutoff", &cutoff)]
    } else {
        &[]
    };
    let rows = st.query_map(params, |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Releases one claimed task back to pending, or fails it when it has used
/// up its attempts.
///
/// Whether the released attempt counts against `max_attempts`:
/// - The attempt made progress (`progress_at` after the claim, set by
///   [`crate::queue::Queue::record_progress`]): it never counts. A long document whose
///   daemon was killed or hung mid-way keeps its budget.
/// - `killed_forgiven: Some(n)`: the worker's process is gone (a reboot, an
///   OOM kill, an operator's SIGKILL, a crash). Documents cannot take the
///   daemon down (tesseract, leptonica and pdf-extract run in OCR child
///   processes), so a death says little about the task and does not count,
///   until the task has been claimed `n` times: then it fails, rather than
///   crash-loop the service with something we did not foresee.
/// - `None`: the worker is alive but stopped heartbeating (hung). It counts.
///
/// An attempt that does not count raises `max_attempts` by one, so attempt
/// numbers still tell runs apart; `quire retry` restores the policy's.
fn release_one(
    tx: &Connection,
    task_id: i64,
    document_id: i64,
    worker: String,
    reason: &str,
    killed_forgiven: Option<i64>,
    now: i64,
) -> Result<ReleasedStale, QueueError> {
    let (progressed, attempts, task_type): (bool, i64, TaskType) = tx
        .prepare_cached(
            "SELECT coalesce(progress_at > claimed_at, 0), attempts, task_type \
             FROM task_queue WHERE id = ?1",
        )?
        .query_row([task_id], |r| {
            Ok((r.get(0)?, r.get(1)?, crate::db::sqlite::parse_col(r, 2)?))
        })?;
    let refund = progressed || killed_forgiven.is_some_and(|n| attempts < n);
    // Claimed n times and died again without progress: give up now.
    let exhausted = !refund && killed_forgiven.is_some();
    let failed: bool = tx
        .prepare_cached(
            "UPDATE task_queue SET \
                 status = CASE WHEN :exhausted OR (NOT :refund AND attempts >= max_attempts) \
                     THEN 'failed' ELSE 'pending' END, \
                 completed_at = CASE WHEN :exhausted OR (NOT :refund AND attempts >= max_attempts) \
                     THEN :now END, \
                 max_attempts = max_attempts + :refund, \
                 run_after = :now, last_error = :reason, \
                 claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL \
             WHERE id = :id AND status = 'claimed' \
             RETURNING status = 'failed'",
        )?
        .query_row(
            named_params! {
                ":now": now, ":reason": reason, ":id": task_id, ":refund": refund,
                ":exhausted": exhausted,
            },
            |r| r.get(0),
        )?;
    if failed && task_type.is_stage() {
        let error =
            format!("{reason}, on every one of its attempts; `quire retry {task_id}` tries again");
        set_document_status(tx, document_id, DocumentStatus::Failed, Some(&error), now)?;
    }
    log::warn!(
        "task {task_id} (document {document_id}): {reason}; {}",
        match (failed, refund, progressed) {
            (true, _, _) => "failed",
            (false, true, true) => "released (it had made progress: the attempt is not counted)",
            (false, true, false) => "released (the attempt is not counted)",
            (false, false, _) => "released",
        }
    );
    Ok(ReleasedStale {
        task_id,
        document_id,
        worker,
        failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::sqlite::testing::fixture;
    use crate::queue::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn stale_claims_go_back_to_pending_with_the_attempt_counted() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let c = f.claim_one("w");
        f.clock.advance(30_000);
        assert!(
            f.queue.maintenance().release_stale(MIN).unwrap().is_empty(),
            "not stale yet"
        );
        f.queue.heartbeat(&c).unwrap();
        f.clock.advance(59_000);
        assert!(
            f.queue.maintenance().release_stale(MIN).unwrap().is_empty(),
            "heartbeat kept it"
        );
        f.clock.advance(2_000);
        let r = f.queue.maintenance().release_stale(MIN).unwrap();
        assert_eq!(
            r,
            vec![ReleasedStale {
                task_id: c.task_id,
                document_id: doc,
                worker: "w".into(),
                failed: false
            }]
        );
        let again = f.claim_one("w2");
        assert_eq!(again.attempt, 2);
    }

    #[test]
    fn a_task_that_keeps_going_stale_fails_after_max_attempts() {
        let f = fixture();
        let doc = f.document("poison");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        for _ in 0..3 {
            f.claim_one("w");
            f.clock.advance(120_000);
            f.queue.maintenance().release_stale(MIN).unwrap();
        }
        assert!(f.queue.claim("w", 1).unwrap().is_empty());
        assert_eq!(f.doc_status(doc), DocumentStatus::Failed);
    }

    #[test]
    fn an_attempt_that_made_progress_before_going_stale_is_not_counted() {
        let f = fixture();
        let doc = f.document("long");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        for attempt in 1..=5 {
            let c = f.claim_one("w");
            assert_eq!(c.attempt, attempt);
            f.clock.advance(1_000);
            // A checkpoint, as the OCR and indexing tasks record after each step.
            f.queue.record_progress(&c).unwrap();
            f.clock.advance(120_000);
            let r = f.queue.maintenance().release_stale(MIN).unwrap();
            assert!(!r[0].failed, "attempt {attempt} made progress");
        }
        // Without progress, the budget of 3 counts again from here.
        let c = f.claim_one("w");
        assert_eq!((c.attempt, c.max_attempts), (6, 8));
    }

    #[test]
    fn dead_workers_are_released_at_once() {
        let f = fixture();
        let a = f.document("a");
        let b = f.document("b");
        f.queue.enqueue(a, TaskType::Ocr, Priority::High).unwrap();
        f.queue.enqueue(b, TaskType::Ocr, Priority::High).unwrap();
        f.claim_one("dead:1");
        let alive = f.claim_one("alive:2");
        let r = f
            .queue
            .maintenance()
            .release_dead(|w| w.starts_with("dead"))
            .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].document_id, a);
        assert_eq!(
            f.queue.task(alive.task_id).unwrap().status,
            TaskStatus::Claimed
        );
    }

    #[test]
    fn deaths_without_progress_are_forgiven_up_to_a_bound() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let forgiven = 3 * KILLS_FORGIVEN_FACTOR;
        for attempt in 1..forgiven {
            let c = f.claim_one("dead:1");
            assert_eq!(c.attempt, attempt);
            let r = f.queue.maintenance().release_dead(|_| true).unwrap();
            assert!(!r[0].failed, "killed {attempt} times");
        }
        // The n-th death without progress fails it.
        f.claim_one("dead:1");
        let r = f.queue.maintenance().release_dead(|_| true).unwrap();
        assert!(r[0].failed);
        assert_eq!(f.doc_status(doc), DocumentStatus::Failed);
        // A retry starts over with the policy's budget.
        let task = r[0].task_id;
        f.queue.retry(task).unwrap();
        let c = f.claim_one("w");
        assert_eq!((c.attempt, c.max_attempts), (1, 3));
    }

    #[test]
    fn orphans_are_found_and_enqueued_at_low_priority() {
        let f = fixture();
        let queued = f.document("no task at all");
        let mid = f.document("between ocr and indexing");
        let done = f.document("indexed");
        let live = f.document("has a task");
        let conn = f.conn();
        conn.execute(
            "UPDATE documents SET status = 'indexing' WHERE id = ?1",
            [mid],
        )
        .unwrap();
        conn.execute(
            "UPDATE documents SET status = 'indexed' WHERE id = ?1",
            [done],
        )
        .unwrap();
        f.queue
            .enqueue(live, TaskType::Ocr, Priority::High)
            .unwrap();
        let mut found = f.queue.maintenance().enqueue_orphans().unwrap();
        found.sort();
        assert_eq!(
            found,
            vec![(queued, TaskType::Ocr), (mid, TaskType::Indexing)]
        );
        assert!(
            f.queue.maintenance().enqueue_orphans().unwrap().is_empty(),
            "now they have tasks"
        );
        let t = f.queue.tasks_of(mid).unwrap();
        assert_eq!(t[0].priority, Priority::Low);
    }

    #[test]
    fn purge_removes_old_finished_tasks_only() {
        let f = fixture();
        let a = f.document("a");
        let b = f.document("b");
        f.queue.enqueue(a, TaskType::Ocr, Priority::High).unwrap();
        f.queue.enqueue(b, TaskType::Ocr, Priority::High).unwrap();
        let ca = f.claim_one("w");
        f.queue.complete(&ca).unwrap();
        let cb = f.claim_one("w");
        f.queue.fail(&cb, FailureKind::Permanent, "bad").unwrap();
        f.clock.advance(8 * 24 * 3600 * 1000);
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(f.queue.maintenance().purge(week).unwrap(), 1);
        // The failed task and the (pending) indexing and PDF tasks remain.
        assert_eq!(f.queue.tasks_of(b).unwrap().len(), 1);
        assert_eq!(f.queue.tasks_of(a).unwrap().len(), 2);
    }

    #[test]
    fn deleting_a_document_deletes_its_tasks() {
        let f = fixture();
        let a = f.document("a");
        f.queue.enqueue(a, TaskType::Ocr, Priority::High).unwrap();
        let conn = f.conn();
        conn.execute("DELETE FROM documents WHERE id = ?1", [a])
            .unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM task_queue", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
