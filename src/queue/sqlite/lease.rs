//! Operations on a claimed task: heartbeat, complete, fail, release. Each is
//! fenced by the claiming worker's id: the `WHERE` clause names the worker, and
//! an update that touches no row means the claim was lost (released as stale,
//! cancelled, or re-claimed by another worker), reported as
//! [`QueueError::LostClaim`] without touching the new owner's state.

use rusqlite::{Connection, named_params};

use super::{enqueue, set_document_status, set_documents_status};
use crate::queue::{Claim, DocumentStatus, FailOutcome, FailureKind, Policy, QueueError, TaskType};

/// Fails with `LostClaim` unless exactly one row was touched.
fn fenced(changed: usize, claim: &Claim) -> Result<(), QueueError> {
    if changed == 1 {
        Ok(())
    } else {
        Err(QueueError::LostClaim {
            task_id: claim.task_id,
            worker: claim.worker.clone(),
        })
    }
}

/// Refreshes the claim's heartbeat.
pub(crate) fn do_heartbeat(tx: &Connection, claim: &Claim, now: i64) -> Result<(), QueueError> {
    let n = tx
        .prepare_cached(
            "UPDATE task_queue SET heartbeat_at = :now \
             WHERE id = :id AND status = 'claimed' AND claimed_by = :worker",
        )?
        .execute(named_params! { ":now": now, ":id": claim.task_id, ":worker": claim.worker })?;
    fenced(n, claim)
}

/// Marks the claimed attempt as having made progress.
pub(crate) fn do_record_progress(
    tx: &Connection,
    claim: &Claim,
    now: i64,
) -> Result<(), QueueError> {
    let n = tx
        .prepare_cached(
            "UPDATE task_queue SET progress_at = :now \
             WHERE id = :id AND status = 'claimed' AND claimed_by = :worker",
        )?
        .execute(named_params! { ":now": now, ":id": claim.task_id, ":worker": claim.worker })?;
    fenced(n, claim)
}

/// Completes the task and advances its document: OCR done enqueues indexing
/// and, when the policy asks for searchable PDFs, the PDF task (both at the
/// same priority); indexing done marks the document indexed.
pub(crate) fn do_complete(
    tx: &Connection,
    claim: &Claim,
    policy: &Policy,
    now: i64,
) -> Result<(), QueueError> {
    let n = tx
        .prepare_cached(
            "UPDATE task_queue SET status = 'completed', completed_at = :now, heartbeat_at = :now \
             WHERE id = :id AND status = 'claimed' AND claimed_by = :worker",
        )?
        .execute(named_params! { ":now": now, ":id": claim.task_id, ":worker": claim.worker })?;
    fenced(n, claim)?;
    for &next in policy.next_tasks(claim.task_type) {
        let max = policy.max_attempts;
        enqueue::do_enqueue(tx, claim.document_id, next, claim.priority, max, now)?;
    }
    if claim.task_type == TaskType::Indexing {
        set_document_status(tx, claim.document_id, DocumentStatus::Indexed, None, now)?;
    }
    Ok(())
}

/// Completes `claims` (see [`do_complete`]) in the caller's transaction;
/// each result says whether that claim was still held. Indexing tasks, the
/// many small ones, go in two statements per worker whatever their number
/// (the tasks, then their documents); the others one by one.
pub(crate) fn do_complete_batch(
    tx: &Connection,
    claims: &[Claim],
    policy: &Policy,
    now: i64,
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    crate::queue::batch::complete_by(
        &mut &*tx,
        claims,
        |tx, c| do_complete(tx, c, policy, now),
        |tx, worker, claims| {
            let ids: Vec<i64> = claims.iter().map(|c| c.task_id).collect();
            let ids = serde_json::to_string(&ids).expect("ids serialize");
            let done: std::collections::HashSet<i64> = tx
                .prepare_cached(
                    "UPDATE task_queue SET status = 'completed', completed_at = :now, heartbeat_at = :now \
                     WHERE id IN (SELECT value FROM json_each(:ids)) \
                       AND status = 'claimed' AND claimed_by = :worker \
                     RETURNING id",
                )?
                .query_map(
                    named_params! { ":now": now, ":ids": ids, ":worker": worker },
                    |r| r.get(0),
                )?
                .collect::<Result<_, _>>()?;
            let docs: Vec<i64> = claims
                .iter()
                .filter(|c| done.contains(&c.task_id))
                .map(|c| c.document_id)
                .collect();
            set_documents_status(tx, &docs, DocumentStatus::Indexed, now)?;
            Ok(done)
        },
    )
}

/// Records a failed attempt. Transient failures with attempts left go back to
/// pending after a backoff; anything else fails the task and its document.
pub(crate) fn do_fail(
    tx: &Connection,
    claim: &Claim,
    kind: FailureKind,
    error: &str,
    policy: &Policy,
    now: i64,
) -> Result<FailOutcome, QueueError> {
    let outcome = policy.fail_outcome(claim, kind, now);
    let (status, run_after, completed_at) = outcome.columns(now);
    let n = tx
        .prepare_cached(
            "UPDATE task_queue SET status = :status, run_after = :run_after, completed_at = :completed_at, \
                 last_error = :error, claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL \
             WHERE id = :id AND status = 'claimed' AND claimed_by = :worker",
        )?
        .execute(named_params! {
            ":status": status, ":run_after": run_after, ":completed_at": completed_at,
            ":error": error, ":id": claim.task_id, ":worker": claim.worker,
        })?;
    fenced(n, claim)?;
    if outcome == FailOutcome::Failed && claim.task_type.is_stage() {
        set_document_status(
            tx,
            claim.document_id,
            DocumentStatus::Failed,
            Some(error),
            now,
        )?;
    }
    Ok(outcome)
}

/// Puts the task back to pending, due now, without counting this attempt.
pub(crate) fn do_release(tx: &Connection, claim: &Claim, now: i64) -> Result<(), QueueError> {
    let n = tx
        .prepare_cached(
            "UPDATE task_queue SET status = 'pending', run_after = :now, attempts = max(attempts - 1, 0), \
                 claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL \
             WHERE id = :id AND status = 'claimed' AND claimed_by = :worker",
        )?
        .execute(named_params! { ":now": now, ":id": claim.task_id, ":worker": claim.worker })?;
    fenced(n, claim)
}

#[cfg(test)]
mod tests {
    use crate::queue::sqlite::testing::fixture;
    use crate::queue::*;

    #[test]
    fn a_batch_completes_each_held_claim_and_changes_nothing_for_a_lost_one() {
        let f = fixture();
        let docs: Vec<i64> = ["a", "b", "c"].iter().map(|n| f.document(n)).collect();
        for &d in &docs {
            f.queue
                .enqueue(d, TaskType::Indexing, Priority::Normal)
                .unwrap();
        }
        let claims = f.queue.claim("w", 3).unwrap();
        assert_eq!(claims.len(), 3);
        f.queue.cancel(claims[1].task_id).unwrap();
        let results = f.queue.complete_batch(&claims).unwrap();
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(
            matches!(results[1], Err(QueueError::LostClaim { .. })),
            "{results:?}"
        );
        let status = |c: &Claim| f.queue.task(c.task_id).unwrap().status;
        assert_eq!(status(&claims[0]), TaskStatus::Completed);
        assert_eq!(status(&claims[1]), TaskStatus::Cancelled);
        assert_eq!(f.doc_status(claims[0].document_id), DocumentStatus::Indexed);
        assert_eq!(
            f.doc_status(claims[1].document_id),
            DocumentStatus::Cancelled
        );
        assert_eq!(f.doc_status(claims[2].document_id), DocumentStatus::Indexed);
        // Completing them again: every claim is gone.
        let again = f.queue.complete_batch(&claims).unwrap();
        assert!(again.iter().all(|r| r.is_err()));
    }

    #[test]
    fn a_batch_of_mixed_types_and_workers_moves_each_document_on() {
        let f = fixture();
        let (a, b, c) = (f.document("a"), f.document("b"), f.document("c"));
        f.queue.enqueue(a, TaskType::Ocr, Priority::Normal).unwrap();
        f.queue
            .enqueue(b, TaskType::Indexing, Priority::Normal)
            .unwrap();
        f.queue
            .enqueue(c, TaskType::Indexing, Priority::Normal)
            .unwrap();
        let mut claims = f.queue.claim("w1", 2).unwrap();
        claims.extend(f.queue.claim("w2", 1).unwrap());
        let results = f.queue.complete_batch(&claims).unwrap();
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        // The OCR completion enqueued a's indexing; b and c are indexed.
        let a_tasks = f.queue.tasks_of(a).unwrap();
        assert!(
            a_tasks
                .iter()
                .any(|t| t.task_type == TaskType::Indexing && t.status == TaskStatus::Pending)
        );
        assert_eq!(f.doc_status(b), DocumentStatus::Indexed);
        assert_eq!(f.doc_status(c), DocumentStatus::Indexed);
    }

    #[test]
    fn complete_and_claim_takes_the_next_work_in_the_same_step() {
        let f = fixture();
        let (a, b) = (f.document("a"), f.document("b"));
        f.queue.enqueue(a, TaskType::Ocr, Priority::High).unwrap();
        f.queue.enqueue(b, TaskType::Ocr, Priority::High).unwrap();
        let first = f.claim_one("w");
        // After OCR: that document's indexing, ahead of b's OCR (high).
        let next = f.queue.complete_and_claim(&first, 1).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(
            (next[0].document_id, next[0].task_type),
            (first.document_id, TaskType::Indexing)
        );
        assert_eq!(f.doc_status(first.document_id), DocumentStatus::Indexing);
        // After indexing: the queue's next by priority (b's OCR).
        let after = f.queue.complete_and_claim(&next[0], 1).unwrap();
        assert_eq!(after[0].task_type, TaskType::Ocr);
        assert_ne!(after[0].document_id, first.document_id);
        assert_eq!(f.doc_status(first.document_id), DocumentStatus::Indexed);
        // A lost claim completes and claims nothing.
        f.queue.cancel(after[0].task_id).unwrap();
        let lost = f.queue.complete_and_claim(&after[0], 1);
        assert!(
            matches!(lost, Err(QueueError::LostClaim { .. })),
            "{lost:?}"
        );
        let pending = f.queue.stats().unwrap().tasks.claimed;
        assert_eq!(pending, 0);
    }

    #[test]
    fn a_failed_or_cancelled_pdf_task_leaves_the_document_indexed() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        for _ in 0..2 {
            let c = f.claim_one("w");
            f.queue.complete(&c).unwrap();
        }
        let pdf = f.claim_one("w");
        assert_eq!(pdf.task_type, TaskType::Pdf);
        let outcome = f
            .queue
            .fail(&pdf, FailureKind::Permanent, "disk full")
            .unwrap();
        assert_eq!(outcome, FailOutcome::Failed);
        assert_eq!(f.doc_status(doc), DocumentStatus::Indexed);
        f.queue.retry(pdf.task_id).unwrap();
        assert_eq!(f.doc_status(doc), DocumentStatus::Indexed);
        f.queue.cancel(pdf.task_id).unwrap();
        assert_eq!(f.doc_status(doc), DocumentStatus::Indexed);
    }

    #[test]
    fn completing_ocr_enqueues_indexing_in_the_same_step() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let c = f.claim_one("w");
        f.queue.complete(&c).unwrap();
        assert_eq!(f.doc_status(doc), DocumentStatus::Indexing);
        let next = f.claim_one("w");
        assert_eq!(next.task_type, TaskType::Indexing);
        assert_eq!(next.priority, Priority::High);
        f.queue.complete(&next).unwrap();
        assert_eq!(f.doc_status(doc), DocumentStatus::Indexed);
        // The searchable PDF's task came with the indexing task; it leaves
        // the document's status alone.
        let pdf = f.claim_one("w");
        assert_eq!(
            (pdf.task_type, pdf.priority),
            (TaskType::Pdf, Priority::High)
        );
        assert_eq!(f.doc_status(doc), DocumentStatus::Indexed);
        f.queue.complete(&pdf).unwrap();
        assert_eq!(f.doc_status(doc), DocumentStatus::Indexed);
        let tasks = f.queue.tasks_of(doc).unwrap();
        assert!(
            tasks
                .iter()
                .all(|t| t.status == TaskStatus::Completed && t.completed_at.is_some())
        );
    }

    #[test]
    fn a_stale_released_task_cannot_be_finished_by_its_old_worker() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let old = f.claim_one("old");
        f.clock.advance(10 * 60 * 1000);
        let released = f
            .queue
            .maintenance()
            .release_stale(std::time::Duration::from_secs(60))
            .unwrap();
        assert_eq!(released.len(), 1);
        let new = f.claim_one("new");
        assert_eq!(new.task_id, old.task_id);
        for result in [
            f.queue.heartbeat(&old).map(|_| ()),
            f.queue.complete(&old),
            f.queue.fail(&old, FailureKind::Permanent, "x").map(|_| ()),
            f.queue.release(&old),
        ] {
            assert!(
                matches!(result, Err(QueueError::LostClaim { .. })),
                "{result:?}"
            );
        }
        let t = f.queue.task(new.task_id).unwrap();
        assert_eq!(t.status, TaskStatus::Claimed);
        assert_eq!(t.claimed_by.as_deref(), Some("new"));
        f.queue.heartbeat(&new).unwrap();
        f.queue.complete(&new).unwrap();
    }

    #[test]
    fn transient_failures_back_off_exponentially_then_fail() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let base = f.queue.policy().backoff_base.as_millis() as i64;
        let mut delays = vec![];
        for attempt in 1..=3 {
            let c = f.claim_one("w");
            assert_eq!(c.attempt, attempt);
            match f
                .queue
                .fail(&c, FailureKind::Transient, "disk hiccup")
                .unwrap()
            {
                FailOutcome::RetryAt(at) => {
                    let delay = at - f.queue.now_ms();
                    delays.push(delay);
                    f.clock.advance(delay);
                }
                FailOutcome::Failed => {
                    assert_eq!(attempt, 3, "fails only when out of attempts");
                }
            }
        }
        assert_eq!(delays.len(), 2);
        assert!((base..=base * 5 / 4).contains(&delays[0]), "{delays:?}");
        assert!(
            (2 * base..=2 * base * 5 / 4).contains(&delays[1]),
            "{delays:?}"
        );
        let t = f.queue.tasks_of(doc).unwrap().pop().unwrap();
        assert_eq!(t.status, TaskStatus::Failed);
        assert_eq!(t.last_error.as_deref(), Some("disk hiccup"));
        assert_eq!(f.doc_status(doc), DocumentStatus::Failed);
    }

    #[test]
    fn backoff_is_capped() {
        let p = Policy::default();
        let max = p.backoff_max.as_millis() as i64;
        assert!(p.backoff_ms(40) <= max * 5 / 4);
        assert!(p.backoff_ms(40) >= max);
    }

    #[test]
    fn permanent_failures_fail_at_once() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let c = f.claim_one("w");
        let out = f
            .queue
            .fail(
                &c,
                FailureKind::Permanent,
                "encrypted PDF: password required",
            )
            .unwrap();
        assert_eq!(out, FailOutcome::Failed);
        assert!(f.queue.claim("w", 1).unwrap().is_empty());
        let c: String = f
            .conn()
            .query_row(
                "SELECT last_error FROM documents WHERE id = ?1",
                [doc],
                |r| r.get(0),
            )
            .unwrap();
        assert!(c.contains("password required"));
    }

    #[test]
    fn release_gives_the_attempt_back() {
        let f = fixture();
        let doc = f.document("a");
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let c = f.claim_one("w");
        f.queue.release(&c).unwrap();
        let again = f.claim_one("w2");
        assert_eq!(again.attempt, 1);
    }

    #[test]
    fn after_ocr_the_same_step_leaves_an_indexing_task_waiting_out_its_backoff() {
        let f = fixture();
        let doc = f.document("a");
        f.queue
            .enqueue(doc, TaskType::Indexing, Priority::High)
            .unwrap();
        let indexing = f.claim_one("w1");
        f.queue
            .fail(&indexing, FailureKind::Transient, "try later")
            .unwrap();
        f.queue.enqueue(doc, TaskType::Ocr, Priority::High).unwrap();
        let ocr = f.claim_one("w2");
        assert_eq!(ocr.task_type, TaskType::Ocr);
        // The next work is the document's PDF task, not its indexing.
        let next = f.queue.complete_and_claim(&ocr, 1).unwrap();
        assert!(
            next.iter().all(|c| c.task_type != TaskType::Indexing),
            "{next:?}"
        );
        assert_eq!(
            f.queue.task(indexing.task_id).unwrap().status,
            TaskStatus::Pending
        );
    }
}
