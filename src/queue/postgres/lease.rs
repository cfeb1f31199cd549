//! Operations on a claimed task: heartbeat, complete, fail, release. Each
//! is fenced by the claiming worker's id, as on SQLite: an update that
//! touches no row means the claim was lost (released as stale by another
//! host, cancelled, or re-claimed), reported as [`QueueError::LostClaim`]
//! without touching the new owner's state. This is what keeps a host that
//! was cut off for longer than `stale_timeout` from overwriting the work of
//! the host that took its task over.

use postgres::types::Type;
use postgres::{GenericClient, Statement};

use super::set_documents_status;
use crate::queue::{Claim, DocumentStatus, FailOutcome, FailureKind, Policy, QueueError};

/// Fails with `LostClaim` unless exactly one row was touched.
fn fenced(changed: u64, claim: &Claim) -> Result<(), QueueError> {
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
pub fn do_heartbeat(
    tx: &mut impl GenericClient,
    claim: &Claim,
    now: i64,
) -> Result<(), QueueError> {
    stamp(tx, claim, "heartbeat_at", now)
}

/// Marks the claimed attempt as having made progress (a stale release then
/// does not count it).
pub fn do_record_progress(
    tx: &mut impl GenericClient,
    claim: &Claim,
    now: i64,
) -> Result<(), QueueError> {
    stamp(tx, claim, "progress_at", now)
}

/// Sets one time column of the claimed task, fenced.
fn stamp(
    tx: &mut impl GenericClient,
    claim: &Claim,
    column: &'static str,
    now: i64,
) -> Result<(), QueueError> {
    let n = tx.execute_typed(
        &format!(
            "UPDATE task_queue SET {column} = $1 \
             WHERE id = $2 AND status = 'claimed' AND claimed_by = $3"
        ),
        &[
            (&now, Type::INT8),
            (&claim.task_id, Type::INT8),
            (&claim.worker, Type::TEXT),
        ],
    )?;
    fenced(n, claim)
}

/// Completes the task and advances its document, as on SQLite: OCR done
/// enqueues indexing and, when the policy asks for searchable PDFs, the PDF
/// task (both at the same priority); indexing done marks the document
/// indexed (`quire_complete`, migration 0003). `now` is `None` for the
/// server's clock at the call.
pub fn do_complete(
    c: &mut impl GenericClient,
    claim: &Claim,
    policy: &Policy,
    now: Option<i64>,
) -> Result<(), QueueError> {
    let held: bool = c
        .query_typed_one(
            "SELECT quire_complete($1, $2, $3, $4, $5) IS NOT NULL",
            &[
                (&claim.task_id, Type::INT8),
                (&claim.worker, Type::TEXT),
                (&after_ocr(policy), Type::TEXT_ARRAY),
                (&policy.max_attempts, Type::INT8),
                (&now, Type::INT8),
            ],
        )?
        .get(0);
    fenced(held as u64, claim)
}

/// [`do_complete`], then the worker's next work in the same statement
/// (`quire_complete_and_claim`): after an OCR task its document's indexing
/// task if due, else up to `limit` due tasks. Run outside a transaction it
/// is one round trip and one commit, the daemon's whole step. A lost claim
/// is [`QueueError::LostClaim`], and completes and claims nothing.
///
/// `step` is [`COMPLETE_AND_CLAIM`] prepared with [`COMPLETE_AND_CLAIM_TYPES`]
/// (the daemon keeps it prepared on each connection: `PostgresDb::prepared`).
pub fn do_complete_and_claim(
    c: &mut impl GenericClient,
    step: &Statement,
    claim: &Claim,
    policy: &Policy,
    limit: usize,
    now: Option<i64>,
) -> Result<Vec<Claim>, QueueError> {
    let rows = c.query(
        step,
        &[
            &claim.task_id,
            &claim.worker,
            &after_ocr(policy),
            &policy.max_attempts,
            &(limit as i64),
            &now,
        ],
    );
    match rows {
        Ok(rows) => super::claim::claims(&rows, &claim.worker),
        Err(e) if e.code().map(|c| c.code()) == Some(LOST_CLAIM) => {
            fenced(0, claim).map(|_| vec![])
        }
        Err(e) => Err(e.into()),
    }
}

/// The daemon's step, for [`do_complete_and_claim`].
pub const COMPLETE_AND_CLAIM: &str =
    "SELECT * FROM quire_complete_and_claim($1, $2, $3, $4, $5, $6)";

/// The types of [`COMPLETE_AND_CLAIM`]'s parameters.
pub const COMPLETE_AND_CLAIM_TYPES: &[Type] = &[
    Type::INT8,
    Type::TEXT,
    Type::TEXT_ARRAY,
    Type::INT8,
    Type::INT8,
    Type::INT8,
];

/// The SQLSTATE `quire_complete_and_claim` raises for a claim no longer held.
const LOST_CLAIM: &str = "QU001";

/// The task types a completed OCR task enqueues, by the policy, as the
/// SQL functions take them.
fn after_ocr(policy: &Policy) -> Vec<&'static str> {
    let next = policy.next_tasks(crate::queue::TaskType::Ocr);
    next.iter().map(|t| t.as_str()).collect()
}

/// Completes each of `claims` as [`do_complete`] does, in one statement
/// (`quire_complete_each`): one round trip and, outside a transaction, one
/// commit for the batch. Each result says whether that claim was still
/// held; a lost one changed nothing.
pub fn do_complete_batch(
    c: &mut impl GenericClient,
    claims: &[Claim],
    policy: &Policy,
    now: Option<i64>,
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    let ids: Vec<i64> = claims.iter().map(|c| c.task_id).collect();
    let workers: Vec<&str> = claims.iter().map(|c| c.worker.as_str()).collect();
    let rows = c.query_typed(
        "SELECT * FROM quire_complete_each($1, $2, $3, $4, $5)",
        &[
            (&ids, Type::INT8_ARRAY),
            (&workers, Type::TEXT_ARRAY),
            (&after_ocr(policy), Type::TEXT_ARRAY),
            (&policy.max_attempts, Type::INT8),
            (&now, Type::INT8),
        ],
    )?;
    let done: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    Ok(claims
        .iter()
        .map(|c| fenced(done.contains(&c.task_id) as u64, c))
        .collect())
}

/// Records a failed attempt. Transient failures with attempts left go back
/// to pending after the policy's backoff (from the server's `now`); anything
/// else fails the task and, for a stage, its document.
pub fn do_fail(
    tx: &mut impl GenericClient,
    claim: &Claim,
    kind: FailureKind,
    error: &str,
    policy: &Policy,
    now: i64,
) -> Result<FailOutcome, QueueError> {
    let outcome = policy.fail_outcome(claim, kind, now);
    let (status, run_after, completed_at) = outcome.columns(now);
    let n = tx.execute_typed(
        "UPDATE task_queue SET status = $1, run_after = $2, completed_at = $3, last_error = $4, \
             claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL \
         WHERE id = $5 AND status = 'claimed' AND claimed_by = $6",
        &[
            (&status, Type::TEXT),
            (&run_after, Type::INT8),
            (&completed_at, Type::INT8),
            (&error, Type::TEXT),
            (&claim.task_id, Type::INT8),
            (&claim.worker, Type::TEXT),
        ],
    )?;
    fenced(n, claim)?;
    if outcome == FailOutcome::Failed && claim.task_type.is_stage() {
        let doc = [claim.document_id];
        set_documents_status(tx, &doc, DocumentStatus::Failed, Some(error), now)?;
    }
    Ok(outcome)
}

/// Puts the task back to pending, due now, without counting this attempt.
pub fn do_release(tx: &mut impl GenericClient, claim: &Claim, now: i64) -> Result<(), QueueError> {
    let n = tx.execute_typed(
        "UPDATE task_queue SET status = 'pending', run_after = $1, \
             attempts = greatest(attempts - 1, 0), \
             claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL \
         WHERE id = $2 AND status = 'claimed' AND claimed_by = $3",
        &[
            (&now, Type::INT8),
            (&claim.task_id, Type::INT8),
            (&claim.worker, Type::TEXT),
        ],
    )?;
    fenced(n, claim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::postgres::claim::{do_claim, do_claim_document};
    use crate::queue::postgres::enqueue::do_enqueue;
    use crate::queue::postgres::testing::{T0, fixture};
    use crate::queue::{Priority, TaskType};

    #[test]
    fn ocr_then_indexing_moves_the_document_on_to_indexed() {
        let f = fixture();
        let doc = f.document("a");
        let policy = Policy::default();
        let mut c = f.conn();
        do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        let ocr = do_claim(&mut *c, "w", 1, Some(T0)).unwrap().remove(0);
        do_heartbeat(&mut *c, &ocr, T0 + 5).unwrap();
        do_complete(&mut *c, &ocr, &policy, Some(T0 + 10)).unwrap();
        assert_eq!(f.doc_status(doc), "indexing");
        // Indexing comes first (high priority, as the OCR task was), then the PDF.
        let next = do_claim(&mut *c, "w", 2, Some(T0 + 10)).unwrap();
        let types: Vec<TaskType> = next.iter().map(|c| c.task_type).collect();
        assert_eq!(types.len(), 2);
        assert!(types.contains(&TaskType::Indexing) && types.contains(&TaskType::Pdf));
        for claim in &next {
            do_complete(&mut *c, claim, &policy, Some(T0 + 20)).unwrap();
        }
        assert_eq!(f.doc_status(doc), "indexed");
    }

    #[test]
    fn a_step_hands_a_read_document_to_its_indexing_then_claims_by_priority() {
        let f = fixture();
        let (read, other) = (f.document("read"), f.document("other"));
        let policy = Policy::default();
        let mut c = f.conn();
        let step = c
            .prepare_typed(COMPLETE_AND_CLAIM, COMPLETE_AND_CLAIM_TYPES)
            .unwrap();
        do_enqueue(&mut *c, read, TaskType::Ocr, Priority::Low, 3, T0).unwrap();
        do_enqueue(&mut *c, other, TaskType::Ocr, Priority::High, 3, T0 + 1).unwrap();
        let ocr = do_claim_document(&mut *c, "w", read, TaskType::Ocr, false, Some(T0))
            .unwrap()
            .unwrap();
        // The low-priority document just read goes on to its indexing,
        // before the high-priority OCR task that waits.
        let next = do_complete_and_claim(&mut *c, &step, &ocr, &policy, 1, Some(T0 + 5)).unwrap();
        assert_eq!(next.len(), 1);
        let indexing = &next[0];
        assert_eq!(
            (indexing.document_id, indexing.task_type, indexing.priority),
            (read, TaskType::Indexing, Priority::Low)
        );
        assert_eq!(f.task_status(ocr.task_id), "completed");
        assert_eq!(f.doc_status(read), "indexing");
        // After indexing, the next by priority: the other document's OCR
        // (high) before this one's PDF (low), its document marked 'ocr'.
        let next =
            do_complete_and_claim(&mut *c, &step, indexing, &policy, 1, Some(T0 + 6)).unwrap();
        assert_eq!(
            next.iter()
                .map(|c| (c.document_id, c.task_type))
                .collect::<Vec<_>>(),
            vec![(other, TaskType::Ocr)]
        );
        assert_eq!(f.doc_status(read), "indexed");
        assert_eq!(f.doc_status(other), "ocr");
        // A step on a claim no longer held completes and claims nothing.
        do_release(&mut *c, &next[0], T0 + 7).unwrap();
        let late = do_complete_and_claim(&mut *c, &step, &next[0], &policy, 1, Some(T0 + 8));
        assert!(
            matches!(late, Err(QueueError::LostClaim { .. })),
            "{late:?}"
        );
        assert_eq!(f.task_status(next[0].task_id), "pending");
        let pdf = do_claim(&mut *c, "w2", 2, Some(T0 + 9)).unwrap();
        assert_eq!(pdf.len(), 2, "the OCR task and the PDF are still there");
    }

    #[test]
    fn a_batch_completes_each_held_claim_and_changes_nothing_for_a_lost_one() {
        let f = fixture();
        let docs: Vec<i64> = ["a", "b", "c", "d"].iter().map(|n| f.document(n)).collect();
        let policy = Policy::default();
        let mut c = f.conn();
        for &d in &docs[..3] {
            do_enqueue(&mut *c, d, TaskType::Indexing, Priority::Normal, 3, T0).unwrap();
        }
        do_enqueue(&mut *c, docs[3], TaskType::Ocr, Priority::Low, 3, T0).unwrap();
        let mut claims = do_claim(&mut *c, "w1", 2, Some(T0)).unwrap();
        claims.extend(do_claim(&mut *c, "w2", 2, Some(T0)).unwrap());
        assert_eq!(claims.len(), 4);
        // Another host took the second claim over.
        do_release(&mut *c, &claims[1], T0).unwrap();
        let results =
            f.db.write(|tx| do_complete_batch(tx, &claims, &policy, Some(T0 + 1)))
                .unwrap();
        assert!(
            matches!(results[1], Err(QueueError::LostClaim { .. })),
            "{results:?}"
        );
        for i in [0, 2, 3] {
            assert!(results[i].is_ok(), "{results:?}");
        }
        assert_eq!(f.doc_status(claims[0].document_id), "indexed");
        assert_eq!(f.task_status(claims[1].task_id), "pending");
        assert_eq!(f.doc_status(claims[2].document_id), "indexed");
        assert_eq!(
            f.doc_status(docs[3]),
            "indexing",
            "its OCR done, indexing queued"
        );
    }

    #[test]
    fn a_batch_with_a_documents_ocr_and_indexing_leaves_it_to_be_indexed_again() {
        // The document is read again (a retry) while its last indexing task
        // runs; both finish in one batch, in either order.
        for ocr_first in [true, false] {
            let f = fixture();
            let doc = f.document("a");
            let policy = Policy::default();
            let mut c = f.conn();
            do_enqueue(&mut *c, doc, TaskType::Indexing, Priority::Normal, 3, T0).unwrap();
            do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::Normal, 3, T0).unwrap();
            let mut claims = do_claim(&mut *c, "w", 2, Some(T0)).unwrap();
            claims.sort_by_key(|c| (c.task_type != TaskType::Ocr) ^ !ocr_first);
            let results =
                f.db.write(|tx| do_complete_batch(tx, &claims, &policy, Some(T0 + 1)))
                    .unwrap();
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            assert_eq!(f.doc_status(doc), "indexing", "OCR first: {ocr_first}");
            let next = do_claim(&mut *c, "w", 5, Some(T0 + 2)).unwrap();
            assert!(
                next.iter().any(|c| c.task_type == TaskType::Indexing),
                "OCR first: {ocr_first}: {next:?}"
            );
        }
    }

    #[test]
    fn a_lost_claim_changes_nothing_for_the_new_owner() {
        let f = fixture();
        let doc = f.document("a");
        let policy = Policy::default();
        let mut c = f.conn();
        do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        let old = do_claim(&mut *c, "host-a", 1, Some(T0)).unwrap().remove(0);
        do_release(&mut *c, &old, T0 + 1).unwrap();
        let new = do_claim(&mut *c, "host-b", 1, Some(T0 + 2))
            .unwrap()
            .remove(0);
        assert_eq!(new.task_id, old.task_id);
        for late in [
            do_heartbeat(&mut *c, &old, T0 + 3),
            do_complete(&mut *c, &old, &policy, Some(T0 + 3)),
            do_release(&mut *c, &old, T0 + 3),
            do_fail(&mut *c, &old, FailureKind::Permanent, "x", &policy, T0 + 3).map(|_| ()),
        ] {
            assert!(
                matches!(late, Err(QueueError::LostClaim { .. })),
                "{late:?}"
            );
        }
        assert_eq!(f.task_status(new.task_id), "claimed");
        do_complete(&mut *c, &new, &policy, Some(T0 + 4)).unwrap();
    }

    #[test]
    fn transient_failures_back_off_then_fail_the_document() {
        let f = fixture();
        let doc = f.document("a");
        let policy = Policy::default();
        let mut c = f.conn();
        do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::High, 2, T0).unwrap();
        let first = do_claim(&mut *c, "w", 1, Some(T0)).unwrap().remove(0);
        let FailOutcome::RetryAt(at) =
            do_fail(&mut *c, &first, FailureKind::Transient, "io", &policy, T0).unwrap()
        else {
            panic!("a transient failure with attempts left is retried");
        };
        assert!(at >= T0 + policy.backoff_base.as_millis() as i64);
        assert!(
            do_claim(&mut *c, "w", 1, Some(at - 1)).unwrap().is_empty(),
            "not yet due"
        );
        let second = do_claim(&mut *c, "w", 1, Some(at)).unwrap().remove(0);
        assert_eq!(second.attempt, 2);
        let out = do_fail(&mut *c, &second, FailureKind::Transient, "io", &policy, at).unwrap();
        assert_eq!(out, FailOutcome::Failed);
        assert_eq!(f.doc_status(doc), "failed");
    }
}
