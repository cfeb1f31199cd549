//! Taking work. Claims run inside `BEGIN IMMEDIATE`, which holds SQLite's one
//! write lock from the first statement: the tasks a claim selects cannot be
//! taken by another worker (thread or process) before it marks them claimed.

use rusqlite::{Connection, named_params};

use super::{set_document_status, set_documents_status};
use crate::queue::{Claim, DocumentStatus, Priority, QueueError, TaskType};

/// Claims up to `limit` due pending tasks for `worker`, counting an attempt on
/// each, and moves their documents to the matching status.
pub(crate) fn do_claim(
    tx: &Connection,
    worker: &str,
    limit: usize,
    now: i64,
) -> Result<Vec<Claim>, QueueError> {
    // Select, then update by id: the caller's BEGIN IMMEDIATE holds the
    // write lock, so no other writer can claim in between. One
    // `UPDATE ... WHERE id IN (SELECT ...) RETURNING` does the same with two
    // temporary tables per run (the IN list and the returned rows), which
    // cost a tenth of a claim.
    // The limit is written into the statement, not bound: SQLite plans with
    // a bound LIMIT's value and so prepares such a statement again on every
    // run, which cost a third of a claim. One cached statement per limit.
    let claims: Vec<Claim> = tx
        .prepare_cached(&format!(
            "SELECT id, document_id, task_type, priority, attempts + 1, max_attempts \
             FROM task_queue WHERE status = 'pending' AND run_after <= ?1 \
             ORDER BY priority, run_after, id LIMIT {limit}",
        ))?
        .query_map([now], |r| {
            Ok(Claim {
                task_id: r.get(0)?,
                document_id: r.get(1)?,
                task_type: crate::db::sqlite::parse_col(r, 2)?,
                priority: Priority::from_rank(r.get(3)?),
                attempt: r.get(4)?,
                max_attempts: r.get(5)?,
                worker: worker.to_owned(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut take = tx.prepare_cached(
        "UPDATE task_queue \
         SET status = 'claimed', claimed_by = :worker, claimed_at = :now, heartbeat_at = :now, \
             attempts = attempts + 1 \
         WHERE id = :id",
    )?;
    for c in &claims {
        take.execute(named_params! { ":worker": worker, ":now": now, ":id": c.task_id })?;
    }
    if let [c] = claims.as_slice() {
        if let Some(status) = c.task_type.claimed_document_status() {
            set_document_status(tx, c.document_id, status, None, now)?;
        }
    } else {
        // A batch: one statement per status, not per document.
        let mut by_status: Vec<(DocumentStatus, Vec<i64>)> = vec![];
        for c in &claims {
            let Some(status) = c.task_type.claimed_document_status() else {
                continue;
            };
            match by_status.iter_mut().find(|(s, _)| *s == status) {
                Some((_, docs)) => docs.push(c.document_id),
                None => by_status.push((status, vec![c.document_id])),
            }
        }
        for (status, docs) in by_status {
            set_documents_status(tx, &docs, status, now)?;
        }
    }
    Ok(claims)
}

/// Whether a pending task of `priority` or higher is due.
pub(crate) fn do_others_waiting(
    c: &Connection,
    priority: Priority,
    now: i64,
) -> Result<bool, QueueError> {
    Ok(c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM task_queue \
         WHERE status = 'pending' AND priority <= ?1 AND run_after <= ?2)",
    )?
    .query_row(rusqlite::params![priority.rank(), now], |r| r.get(0))?)
}

/// Claims the pending task of `task_type` for one document: due or not
/// (`quire process`), or, with `due_only`, only if due (the step after an
/// OCR completion, which must not take a task waiting out its backoff).
pub(crate) fn do_claim_document(
    tx: &Connection,
    worker: &str,
    document_id: i64,
    task_type: TaskType,
    due_only: bool,
    now: i64,
) -> Result<Option<Claim>, QueueError> {
    use rusqlite::OptionalExtension;
    let claim = tx
        .prepare_cached(
            "UPDATE task_queue \
             SET status = 'claimed', claimed_by = :worker, claimed_at = :now, heartbeat_at = :now, \
                 attempts = attempts + 1 \
             WHERE document_id = :doc AND task_type = :type AND status = 'pending' \
               AND (NOT :due_only OR run_after <= :now) \
             RETURNING id, priority, attempts, max_attempts",
        )?
        .query_row(
            named_params! {
                ":worker": worker, ":now": now, ":doc": document_id,
                ":type": task_type.as_str(), ":due_only": due_only,
            },
            |r| {
                Ok(Claim {
                    task_id: r.get(0)?,
                    document_id,
                    task_type,
                    priority: Priority::from_rank(r.get(1)?),
                    attempt: r.get(2)?,
                    max_attempts: r.get(3)?,
                    worker: worker.to_owned(),
                })
            },
        )
        .optional()?;
    if let (Some(_), Some(status)) = (&claim, task_type.claimed_document_status()) {
        set_document_status(tx, document_id, status, None, now)?;
    }
    Ok(claim)
}

#[cfg(test)]
mod tests {
    use crate::queue::sqlite::testing::fixture;
    use crate::queue::*;

    #[test]
    fn claims_by_priority_then_age() {
        let f = fixture();
        let docs: Vec<i64> = (0..4).map(|i| f.document(&format!("d{i}"))).collect();
        let low = f
            .queue
            .enqueue(docs[0], TaskType::Ocr, Priority::Low)
            .unwrap()
            .task_id();
        f.clock.advance(1);
        let normal_old = f
            .queue
            .enqueue(docs[1], TaskType::Ocr, Priority::Normal)
            .unwrap()
            .task_id();
        f.clock.advance(1);
        let normal_new = f
            .queue
            .enqueue(docs[2], TaskType::Ocr, Priority::Normal)
            .unwrap()
            .task_id();
        f.clock.advance(1);
        let high = f
            .queue
            .enqueue(docs[3], TaskType::Ocr, Priority::High)
            .unwrap()
            .task_id();
        let order: Vec<i64> = (0..4).map(|_| f.claim_one("w").task_id).collect();
        assert_eq!(order, vec![high, normal_old, normal_new, low]);
        assert!(f.queue.claim("w", 1).unwrap().is_empty());
    }

    #[test]
    fn others_waiting_counts_due_tasks_of_the_same_or_a_higher_priority() {
        let f = fixture();
        let (a, b) = (f.document("a"), f.document("b"));
        assert!(!f.queue.others_waiting(Priority::Low).unwrap());
        f.queue.enqueue(a, TaskType::Ocr, Priority::Normal).unwrap();
        assert!(f.queue.others_waiting(Priority::Normal).unwrap());
        assert!(f.queue.others_waiting(Priority::Low).unwrap());
        assert!(!f.queue.others_waiting(Priority::High).unwrap());
        // Claimed, it no longer waits; a retry not yet due does not either.
        let claim = f.claim_one("w");
        assert!(!f.queue.others_waiting(Priority::Low).unwrap());
        f.queue
            .fail(&claim, FailureKind::Transient, "try later")
            .unwrap();
        assert!(!f.queue.others_waiting(Priority::Low).unwrap());
        f.queue.enqueue(b, TaskType::Ocr, Priority::High).unwrap();
        assert!(f.queue.others_waiting(Priority::High).unwrap());
    }

    #[test]
    fn a_batch_claim_comes_back_in_claim_order() {
        let f = fixture();
        let a = f.document("a");
        let b = f.document("b");
        let low = f
            .queue
            .enqueue(a, TaskType::Ocr, Priority::Low)
            .unwrap()
            .task_id();
        let high = f
            .queue
            .enqueue(b, TaskType::Ocr, Priority::High)
            .unwrap()
            .task_id();
        let got: Vec<i64> = f
            .queue
            .claim("w", 5)
            .unwrap()
            .iter()
            .map(|c| c.task_id)
            .collect();
        assert_eq!(got, vec![high, low]);
    }

    #[test]
    fn run_after_in_the_future_is_skipped_until_due() {
        let f = fixture();
        let doc = f.document("a");
        let id = f
            .queue
            .enqueue(doc, TaskType::Ocr, Priority::High)
            .unwrap()
            .task_id();
        let c = f.claim_one("w");
        let FailOutcome::RetryAt(at) = f.queue.fail(&c, FailureKind::Transient, "io").unwrap()
        else {
            panic!("expected a retry");
        };
        assert!(at > f.queue.now_ms());
        assert!(f.queue.claim("w", 1).unwrap().is_empty(), "not due yet");
        f.clock.advance(at - f.queue.now_ms());
        assert_eq!(f.claim_one("w").task_id, id);
    }

    #[test]
    fn claiming_sets_the_document_status_and_counts_the_attempt() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        assert_eq!(f.doc_status(doc), DocumentStatus::Queued);
        let c = f.claim_one("w");
        assert_eq!(c.attempt, 1);
        assert_eq!(f.doc_status(doc), DocumentStatus::Ocr);
        let t = f.queue.task(c.task_id).unwrap();
        assert_eq!(t.status, TaskStatus::Claimed);
        assert_eq!(t.claimed_by.as_deref(), Some("w"));
    }

    #[test]
    fn claims_and_stale_checks_walk_the_active_index() {
        // A partial index serves a query only when the query's WHERE implies
        // the index's: a slip (an IN list in either) turns each claim into a
        // scan of the whole queue, which no other test would notice.
        let f = fixture();
        let plan = |sql: &str| -> String {
            let c = f.conn();
            let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = st.query_map([], |r| r.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        for sql in [
            "SELECT id FROM task_queue WHERE status = 'pending' AND run_after <= 0 \
             ORDER BY priority, run_after, id LIMIT 1",
            "SELECT id FROM task_queue WHERE status = 'claimed' AND heartbeat_at < 0",
        ] {
            let plan = plan(sql);
            assert!(
                plan.contains("USING COVERING INDEX task_queue_active")
                    || plan.contains("USING INDEX task_queue_active"),
                "{sql}: {plan}"
            );
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        }
    }

    #[test]
    fn threads_never_claim_the_same_task() {
        let f = fixture();
        let docs: Vec<_> = (0..200).map(|i| f.document(&format!("d{i}"))).collect();
        let batch: Vec<_> = docs
            .iter()
            .map(|&d| (d, TaskType::Ocr, Priority::Normal))
            .collect();
        f.queue.enqueue_batch(&batch).unwrap();
        let claimed: Vec<i64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|w| {
                    let q = &f.queue;
                    s.spawn(move || {
                        let mut mine = vec![];
                        loop {
                            let got = q.claim(&format!("w{w}"), 3).unwrap();
                            if got.is_empty() {
                                return mine;
                            }
                            mine.extend(got.iter().map(|c| c.task_id));
                        }
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = claimed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), claimed.len(), "a task was claimed twice");
        assert_eq!(claimed.len(), 200);
    }
}
