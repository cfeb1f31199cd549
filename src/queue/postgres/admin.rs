//! What a person does to tasks from the command line (cancel, retry), and
//! reading tasks back, on PostgreSQL. The rules are SQLite's
//! (`queue/sqlite/admin.rs`); the row being changed is locked first
//! (`FOR UPDATE`), so a worker's fenced update and a cancel serialise.

use postgres::GenericClient;
use postgres::error::SqlState;
use postgres::types::Type;

use super::{parse, set_documents_status};
use crate::queue::{DocumentStatus, Priority, QueueError, Task, TaskStatus};

/// The columns [`task_from_row`] reads, in order.
const TASK_COLUMNS: &str = "id, document_id, task_type, priority, status, attempts, max_attempts, \
    run_after, claimed_by, claimed_at, heartbeat_at, completed_at, last_error, created_at";

fn task_from_row(r: &postgres::Row) -> Result<Task, QueueError> {
    Ok(Task {
        id: r.get(0),
        document_id: r.get(1),
        task_type: parse(r.get(2))?,
        priority: Priority::from_rank(r.get(3)),
        status: parse(r.get(4))?,
        attempts: r.get(5),
        max_attempts: r.get(6),
        run_after: r.get(7),
        claimed_by: r.get(8),
        claimed_at: r.get(9),
        heartbeat_at: r.get(10),
        completed_at: r.get(11),
        last_error: r.get(12),
        created_at: r.get(13),
    })
}

/// Loads one task, or [`QueueError::TaskNotFound`]; `lock` takes its row
/// lock until the transaction ends.
pub fn task_by_id(
    c: &mut impl GenericClient,
    task_id: i64,
    lock: bool,
) -> Result<Task, QueueError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = c.query_typed_opt(
        &format!("SELECT {TASK_COLUMNS} FROM task_queue WHERE id = $1{lock}"),
        &[(&task_id, Type::INT8)],
    )?;
    task_from_row(&row.ok_or(QueueError::TaskNotFound(task_id))?)
}

/// Every task of a document, oldest first.
pub fn tasks_of(c: &mut impl GenericClient, document_id: i64) -> Result<Vec<Task>, QueueError> {
    let rows = c.query_typed(
        &format!("SELECT {TASK_COLUMNS} FROM task_queue WHERE document_id = $1 ORDER BY id"),
        &[(&document_id, Type::INT8)],
    )?;
    rows.iter().map(task_from_row).collect()
}

/// The newest `limit` tasks with `status`, newest first.
pub fn tasks_with_status(
    c: &mut impl GenericClient,
    status: TaskStatus,
    limit: usize,
) -> Result<Vec<Task>, QueueError> {
    let rows = c.query_typed(
        &format!(
            "SELECT {TASK_COLUMNS} FROM task_queue WHERE status = $1 ORDER BY id DESC LIMIT $2"
        ),
        &[
            (&status.as_str(), Type::TEXT),
            (&(limit as i64), Type::INT8),
        ],
    )?;
    rows.iter().map(task_from_row).collect()
}

/// Cancels a pending or claimed task. A worker still running it loses its
/// claim: its next heartbeat or completion is [`QueueError::LostClaim`].
pub fn do_cancel(tx: &mut impl GenericClient, task_id: i64, now: i64) -> Result<(), QueueError> {
    let task = task_by_id(tx, task_id, true)?;
    if !matches!(task.status, TaskStatus::Pending | TaskStatus::Claimed) {
        return Err(QueueError::WrongStatus {
            task_id,
            status: task.status,
            allowed: "pending or claimed",
            action: "cancelled",
        });
    }
    tx.execute_typed(
        "UPDATE task_queue SET status = 'cancelled', completed_at = $1, \
             claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL \
         WHERE id = $2",
        &[(&now, Type::INT8), (&task_id, Type::INT8)],
    )?;
    if task.task_type.is_stage() {
        let doc = [task.document_id];
        set_documents_status(tx, &doc, DocumentStatus::Cancelled, None, now)?;
    }
    Ok(())
}

/// Puts a failed or cancelled task back to pending with a fresh budget
/// (attempts 0, the policy's `max_attempts`), due now; refused when its
/// document has a live task of the type already.
///
/// The revive runs in a savepoint: on PostgreSQL a unique violation aborts
/// the whole transaction, and `retry --all-failed` goes on to the next task.
pub fn do_retry(
    tx: &mut postgres::Transaction<'_>,
    task_id: i64,
    max_attempts: i64,
    now: i64,
) -> Result<(), QueueError> {
    let task = task_by_id(tx, task_id, true)?;
    if !matches!(task.status, TaskStatus::Failed | TaskStatus::Cancelled) {
        return Err(QueueError::WrongStatus {
            task_id,
            status: task.status,
            allowed: "failed or cancelled",
            action: "retried",
        });
    }
    let mut revive = tx.savepoint("revive")?;
    let revived = revive.execute_typed(
        "UPDATE task_queue SET status = 'pending', attempts = 0, max_attempts = $1, \
             run_after = $2, completed_at = NULL, claimed_by = NULL, claimed_at = NULL, \
             heartbeat_at = NULL \
         WHERE id = $3",
        &[
            (&max_attempts, Type::INT8),
            (&now, Type::INT8),
            (&task_id, Type::INT8),
        ],
    );
    match revived {
        Ok(_) => revive.commit()?,
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            revive.rollback()?;
            return Err(QueueError::AlreadyLive {
                task_id,
                document_id: task.document_id,
                task_type: task.task_type,
            });
        }
        Err(e) => return Err(e.into()),
    }
    match task.task_type.queued_document_status() {
        Some(status) => set_documents_status(tx, &[task.document_id], status, None, now),
        None => Ok(()),
    }
}

/// Retries the newest failed task of each document and type that has no
/// live task; returns their ids, oldest first.
pub fn do_retry_all_failed(
    tx: &mut postgres::Transaction<'_>,
    max_attempts: i64,
    now: i64,
) -> Result<Vec<i64>, QueueError> {
    let ids: Vec<i64> = tx
        .query_typed(
            "SELECT id FROM task_queue WHERE status = 'failed' ORDER BY id DESC",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    crate::queue::batch::retry_each(ids, |id| do_retry(tx, id, max_attempts, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::postgres::claim::do_claim;
    use crate::queue::postgres::enqueue::do_enqueue;
    use crate::queue::postgres::lease::do_heartbeat;
    use crate::queue::postgres::testing::{T0, fixture};
    use crate::queue::{FailureKind, Policy, TaskType};

    #[test]
    fn cancel_fences_out_the_worker_and_retry_brings_the_task_back() {
        let f = fixture();
        let doc = f.document("a");
        let mut c = f.conn();
        let id = do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::High, 3, T0)
            .unwrap()
            .task_id();
        let claim = do_claim(&mut *c, "w", 1, Some(T0)).unwrap().remove(0);
        do_cancel(&mut *c, id, T0 + 1).unwrap();
        assert_eq!(f.doc_status(doc), "cancelled");
        let late = do_heartbeat(&mut *c, &claim, T0 + 2);
        assert!(
            matches!(late, Err(QueueError::LostClaim { .. })),
            "{late:?}"
        );
        let again = do_cancel(&mut *c, id, T0 + 2).unwrap_err();
        assert!(matches!(again, QueueError::WrongStatus { .. }), "{again}");
        f.db.write(|tx| do_retry(tx, id, 3, T0 + 3)).unwrap();
        assert_eq!(f.doc_status(doc), "queued");
        let task = task_by_id(&mut *c, id, false).unwrap();
        assert_eq!((task.status, task.attempts), (TaskStatus::Pending, 0));
        let missing = task_by_id(&mut *c, 404, false).unwrap_err();
        assert!(
            matches!(missing, QueueError::TaskNotFound(404)),
            "{missing}"
        );
    }

    #[test]
    fn retry_all_failed_skips_documents_that_have_a_live_task_and_goes_on() {
        let f = fixture();
        let (a, b) = (f.document("a"), f.document("b"));
        let policy = Policy::default();
        let mut c = f.conn();
        for doc in [a, b] {
            do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::High, 1, T0).unwrap();
        }
        for claim in do_claim(&mut *c, "w", 2, Some(T0)).unwrap() {
            let kind = FailureKind::Permanent;
            crate::queue::postgres::lease::do_fail(&mut *c, &claim, kind, "bad", &policy, T0)
                .unwrap();
        }
        // a gets a new live OCR task: its failed one cannot come back.
        let live = do_enqueue(&mut *c, a, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        let retried = f.db.write(|tx| do_retry_all_failed(tx, 3, T0 + 1)).unwrap();
        assert_eq!(retried.len(), 1);
        assert_eq!(
            task_by_id(&mut *c, retried[0], false).unwrap().document_id,
            b
        );
        let a_tasks = tasks_of(&mut *c, a).unwrap();
        assert_eq!(a_tasks.len(), 2);
        assert_eq!(a_tasks[1].id, live.task_id());
        assert_eq!(a_tasks[0].status, TaskStatus::Failed);
    }
}
