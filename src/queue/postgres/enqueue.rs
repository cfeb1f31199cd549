//! Adding tasks. The partial unique index `task_queue_live` makes enqueue
//! idempotent: the insert does nothing when the document has a live task of
//! the type, whoever inserts at the same time (the second inserter waits
//! for the first's commit, then finds the conflict).

use postgres::GenericClient;
use postgres::error::SqlState;
use postgres::types::Type;

use super::set_documents_status;
use crate::queue::{Enqueued, Priority, QueueError, TaskType};
use crate::store::NewDocument;

/// Inserts a document and its OCR task; `Ok(None)` (and nothing written)
/// when a document with the same content exists.
pub fn do_create_document(
    tx: &mut impl GenericClient,
    doc: &NewDocument<'_>,
    priority: Priority,
    max_attempts: i64,
    now: i64,
) -> Result<Option<(i64, Enqueued)>, QueueError> {
    let Some(id) = crate::store::postgres::documents::insert_document(tx, doc, now)? else {
        return Ok(None);
    };
    let task = do_enqueue(tx, id, TaskType::Ocr, priority, max_attempts, now)?;
    Ok(Some((id, task)))
}

/// Inserts a pending task unless the document already has a pending or
/// claimed task of this type; sets the document's status for the task type
/// when added. A missing document is [`QueueError::DocumentNotFound`] (and,
/// as on any error on PostgreSQL, the transaction is then aborted).
pub fn do_enqueue(
    tx: &mut impl GenericClient,
    document_id: i64,
    task_type: TaskType,
    priority: Priority,
    max_attempts: i64,
    now: i64,
) -> Result<Enqueued, QueueError> {
    let inserted = tx.query_typed_opt(
        "INSERT INTO task_queue (document_id, task_type, priority, max_attempts, run_after, created_at) \
         VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (document_id, task_type) WHERE status IN ('pending', 'claimed') DO NOTHING \
         RETURNING id",
        &[
            (&document_id, Type::INT8),
            (&task_type.as_str(), Type::TEXT),
            (&priority.rank(), Type::INT8),
            (&max_attempts, Type::INT8),
            (&now, Type::INT8),
        ],
    );
    match inserted {
        Ok(Some(row)) => {
            if let Some(status) = task_type.queued_document_status() {
                set_documents_status(tx, &[document_id], status, None, now)?;
            }
            Ok(Enqueued::Added(row.get(0)))
        }
        Ok(None) => {
            let live = tx.query_typed_opt(
                "SELECT id FROM task_queue WHERE document_id = $1 AND task_type = $2 \
                 AND status IN ('pending', 'claimed')",
                &[
                    (&document_id, Type::INT8),
                    (&task_type.as_str(), Type::TEXT),
                ],
            )?;
            live.map(|r| Enqueued::AlreadyQueued(r.get(0)))
                .ok_or(QueueError::DocumentNotFound(document_id))
        }
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
            Err(QueueError::DocumentNotFound(document_id))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::postgres::testing::{T0, fixture};

    #[test]
    fn enqueue_twice_is_a_no_op_that_says_so() {
        let f = fixture();
        let doc = f.document("a");
        let mut c = f.conn();
        let first = do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        let second = do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::Low, 3, T0).unwrap();
        assert!(matches!(first, Enqueued::Added(_)));
        assert_eq!(second, Enqueued::AlreadyQueued(first.task_id()));
        let idx = do_enqueue(&mut *c, doc, TaskType::Indexing, Priority::High, 3, T0).unwrap();
        assert!(
            matches!(idx, Enqueued::Added(_)),
            "another type, another task"
        );
        assert_eq!(f.doc_status(doc), "indexing");
    }

    #[test]
    fn enqueue_for_a_missing_document_names_it() {
        let f = fixture();
        let err = do_enqueue(&mut *f.conn(), 999, TaskType::Ocr, Priority::High, 3, T0);
        assert!(
            matches!(err, Err(QueueError::DocumentNotFound(999))),
            "{err:?}"
        );
    }

    #[test]
    fn concurrent_enqueues_of_the_same_task_add_exactly_one() {
        let f = fixture();
        let doc = f.document("a");
        let results: Vec<Enqueued> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        f.db.write(|tx| do_enqueue(tx, doc, TaskType::Ocr, Priority::Normal, 3, T0))
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
        assert_eq!(added, 1, "{results:?}");
        assert!(results.iter().all(|e| e.task_id() == results[0].task_id()));
    }
}
