//! What a person does to tasks from the command line: cancel and retry.

use rusqlite::{Connection, named_params};

use super::{set_document_status, task_by_id};
use crate::queue::{DocumentStatus, QueueError, TaskStatus};

/// Cancels a pending or claimed task. A worker still running it loses its claim
/// and its result is discarded at the next heartbeat or completion.
pub(crate) fn do_cancel(tx: &Connection, task_id: i64, now: i64) -> Result<(), QueueError> {
    let task = task_by_id(tx, task_id)?;
    if !matches!(task.status, TaskStatus::Pending | TaskStatus::Claimed) {
        return Err(QueueError::WrongStatus {
            task_id,
            status: task.status,
            allowed: "pending or claimed",
            action: "cancelled",
        });
    }
    tx.prepare_cached(
        "UPDATE task_queue SET status = 'cancelled', completed_at = :now, \
             claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL \
         WHERE id = :id",
    )?
    .execute(named_params! { ":now": now, ":id": task_id })?;
    if !task.task_type.is_stage() {
        return Ok(());
    }
    set_document_status(tx, task.document_id, DocumentStatus::Cancelled, None, now)
}

/// Puts a failed or cancelled task back to pending, attempts reset, due now.
pub(crate) fn do_retry(
    tx: &Connection,
    task_id: i64,
    max_attempts: i64,
    now: i64,
) -> Result<(), QueueError> {
    let task = task_by_id(tx, task_id)?;
    if !matches!(task.status, TaskStatus::Failed | TaskStatus::Cancelled) {
        return Err(QueueError::WrongStatus {
            task_id,
            status: task.status,
            allowed: "failed or cancelled",
            action: "retried",
        });
    }
    if !revive(tx, task_id, max_attempts, now)? {
        return Err(QueueError::AlreadyLive {
            task_id,
            document_id: task.document_id,
            task_type: task.task_type,
        });
    }
    match task.task_type.queued_document_status() {
        Some(status) => set_document_status(tx, task.document_id, status, None, now),
        None => Ok(()),
    }
}

/// Retries the newest failed task of each document and type that has no live task.
pub(crate) fn do_retry_all_failed(
    tx: &Connection,
    max_attempts: i64,
    now: i64,
) -> Result<Vec<i64>, QueueError> {
    let ids: Vec<i64> = tx
        .prepare_cached("SELECT id FROM task_queue WHERE status = 'failed' ORDER BY id DESC")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    crate::queue::batch::retry_each(ids, |id| do_retry(tx, id, max_attempts, now))
}

/// Sets the task back to pending unless that would give its document a second
/// live task of the type (the trigger `task_queue_one_live_update` skips the
/// row then, so no row changed). Returns whether it was revived.
/// Back to pending with a fresh budget: attempts 0 and the policy's
/// max_attempts (undoing attempts given back by stale releases).
fn revive(tx: &Connection, task_id: i64, max_attempts: i64, now: i64) -> Result<bool, QueueError> {
    let n = tx
        .prepare_cached(
            "UPDATE task_queue SET status = 'pending', attempts = 0, max_attempts = :max, run_after = :now, \
                 completed_at = NULL, claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL \
             WHERE id = :id",
        )?
        .execute(named_params! { ":now": now, ":id": task_id, ":max": max_attempts })?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use crate::queue::sqlite::testing::fixture;
    use crate::queue::*;

    #[test]
    fn cancel_then_retry() {
        let f = fixture();
        let doc = f.document("a");
        let id = f
            .queue
            .enqueue(doc, TaskType::Ocr, Priority::High)
            .unwrap()
            .task_id();
        f.queue.cancel(id).unwrap();
        assert_eq!(f.doc_status(doc), DocumentStatus::Cancelled);
        assert!(f.queue.claim("w", 1).unwrap().is_empty());
        let again = f.queue.cancel(id).unwrap_err();
        assert!(matches!(again, QueueError::WrongStatus { .. }), "{again}");
        f.queue.retry(id).unwrap();
        assert_eq!(f.doc_status(doc), DocumentStatus::Queued);
        assert_eq!(f.claim_one("w").task_id, id);
    }

    #[test]
    fn cancelling_a_claimed_task_fences_out_its_worker() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let c = f.claim_one("w");
        f.queue.cancel(c.task_id).unwrap();
        assert!(matches!(
            f.queue.heartbeat(&c),
            Err(QueueError::LostClaim { .. })
        ));
        assert!(matches!(
            f.queue.complete(&c),
            Err(QueueError::LostClaim { .. })
        ));
        assert_eq!(f.doc_status(doc), DocumentStatus::Cancelled);
    }

    #[test]
    fn retry_resets_attempts_and_clears_the_error() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let c = f.claim_one("w");
        f.queue
            .fail(&c, FailureKind::Permanent, "unsupported")
            .unwrap();
        assert!(matches!(
            f.queue.retry(9999),
            Err(QueueError::TaskNotFound(9999))
        ));
        f.queue.retry(c.task_id).unwrap();
        let t = f.queue.task(c.task_id).unwrap();
        assert_eq!((t.status, t.attempts), (TaskStatus::Pending, 0));
        assert_eq!(f.doc_status(doc), DocumentStatus::Queued);
        assert!(matches!(
            f.queue.retry(c.task_id),
            Err(QueueError::WrongStatus { .. })
        ));
    }

    #[test]
    fn retry_all_failed_skips_documents_with_a_live_task() {
        let f = fixture();
        let a = f.document("a");
        let b = f.document("b");
        for d in [a, b] {
            f.queue.enqueue(d, TaskType::Ocr, Priority::High).unwrap();
            let c = f.claim_one("w");
            f.queue.fail(&c, FailureKind::Permanent, "bad").unwrap();
        }
        // b was re-enqueued by hand: its failed task must not be revived beside it.
        f.queue.enqueue(b, TaskType::Ocr, Priority::High).unwrap();
        let retried = f.queue.retry_all_failed().unwrap();
        assert_eq!(retried.len(), 1);
        assert_eq!(f.queue.task(retried[0]).unwrap().document_id, a);
    }
}
