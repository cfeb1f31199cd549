//! Adding tasks. The trigger `task_queue_one_live_insert` (migration 0007)
//! is what makes enqueue idempotent: the insert does nothing when the
//! document has a live task of the type.

use rusqlite::{Connection, OptionalExtension, named_params};

use super::set_document_status;
use crate::queue::{Enqueued, Priority, QueueError, TaskType};
use crate::store::NewDocument;

/// Inserts a document and its OCR task; `Ok(None)` (and nothing written)
/// when a document with the same content exists.
pub(crate) fn do_create_document(
    tx: &Connection,
    doc: &NewDocument<'_>,
    priority: Priority,
    max_attempts: i64,
    now: i64,
) -> Result<Option<(i64, Enqueued)>, QueueError> {
    let Some(id) = crate::store::sqlite::documents::insert_document(tx, doc, now)? else {
        return Ok(None);
    };
    let task = do_enqueue(tx, id, TaskType::Ocr, priority, max_attempts, now)?;
    Ok(Some((id, task)))
}

/// Inserts a pending task unless the document already has a pending or claimed
/// task of this type; sets the document's status for the task type when added.
pub(crate) fn do_enqueue(
    tx: &Connection,
    document_id: i64,
    task_type: TaskType,
    priority: Priority,
    max_attempts: i64,
    now: i64,
) -> Result<Enqueued, QueueError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO task_queue (document_id, task_type, priority, max_attempts, run_after, created_at) \
             VALUES (:doc, :type, :priority, :max, :now, :now)",
        )?
        .execute(named_params! {
            ":doc": document_id, ":type": task_type.as_str(), ":priority": priority.rank(),
            ":max": max_attempts, ":now": now,
        });
    match inserted {
        Ok(1) => {
            let id = tx.last_insert_rowid();
            if let Some(status) = task_type.queued_document_status() {
                set_document_status(tx, document_id, status, None, now)?;
            }
            Ok(Enqueued::Added(id))
        }
        Ok(_) => live_task(tx, document_id, task_type).map(Enqueued::AlreadyQueued),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            Err(QueueError::DocumentNotFound(document_id))
        }
        Err(e) => Err(e.into()),
    }
}

/// The id of the document's pending or claimed task of this type.
fn live_task(tx: &Connection, document_id: i64, task_type: TaskType) -> Result<i64, QueueError> {
    tx.prepare_cached(
        "SELECT id FROM task_queue WHERE document_id = ?1 AND task_type = ?2 \
         AND status IN ('pending', 'claimed')",
    )?
    .query_row(rusqlite::params![document_id, task_type.as_str()], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or(QueueError::DocumentNotFound(document_id))
}

#[cfg(test)]
mod tests {
    use crate::queue::sqlite::testing::fixture;
    use crate::queue::*;

    #[test]
    fn enqueue_twice_is_a_no_op_that_says_so() {
        let f = fixture();
        let doc = f.document("a");
        let first = f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let second = f.queue.enqueue(doc, TaskType::Ocr, Priority::Low).unwrap();
        assert!(matches!(first, Enqueued::Added(_)));
        assert_eq!(second, Enqueued::AlreadyQueued(first.task_id()));
        // A different type is a different task.
        let idx = f
            .queue
            .enqueue(doc, TaskType::Indexing, Priority::High)
            .unwrap();
        assert!(matches!(idx, Enqueued::Added(_)));
    }

    #[test]
    fn enqueue_for_a_missing_document_names_it() {
        let f = fixture();
        let err = f
            .queue
            .enqueue(999, TaskType::Ocr, Priority::High)
            .unwrap_err();
        assert!(matches!(err, QueueError::DocumentNotFound(999)), "{err}");
    }

    #[test]
    fn batch_enqueue_is_one_transaction_in_input_order() {
        let f = fixture();
        let a = f.document("a");
        let b = f.document("b");
        let out = f
            .queue
            .enqueue_batch(&[
                (a, TaskType::Ocr, Priority::Normal),
                (b, TaskType::Ocr, Priority::Normal),
                (a, TaskType::Ocr, Priority::Normal),
            ])
            .unwrap();
        assert!(matches!(out[0], Enqueued::Added(_)));
        assert!(matches!(out[1], Enqueued::Added(_)));
        assert_eq!(out[2], Enqueued::AlreadyQueued(out[0].task_id()));
        // A batch with a bad document adds nothing at all.
        let c = f.document("c");
        let err = f.queue.enqueue_batch(&[
            (c, TaskType::Ocr, Priority::Normal),
            (404, TaskType::Ocr, Priority::Normal),
        ]);
        assert!(err.is_err());
        assert!(f.queue.tasks_of(c).unwrap().is_empty());
    }

    #[test]
    fn concurrent_enqueue_of_the_same_task_adds_exactly_one() {
        let f = fixture();
        let doc = f.document("a");
        let results: Vec<Enqueued> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        f.queue
                            .enqueue(doc, TaskType::Ocr, Priority::Normal)
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let added = results
            .iter()
            .filter(|e| matches!(e, Enqueued::Added(_)))
            .count();
        assert_eq!(added, 1);
        let id = results[0].task_id();
        assert!(results.iter().all(|e| e.task_id() == id));
        assert_eq!(f.queue.tasks_of(doc).unwrap().len(), 1);
    }
}
