//! Taking work. Many workers on many hosts claim at once: each statement
//! locks the rows it takes and skips rows another transaction has locked
//! (`FOR UPDATE SKIP LOCKED`), so no two workers wait for each other or take
//! the same task.

use postgres::GenericClient;
use postgres::types::Type;

use super::{parse, set_documents_status};
use crate::queue::{Claim, Priority, QueueError, TaskType};

/// Claims up to `limit` due pending tasks for `worker`, by priority, then
/// by when they became due, then by id; counts an attempt on each and moves
/// their documents to the matching status.
pub fn do_claim(
    tx: &mut impl GenericClient,
    worker: &str,
    limit: usize,
    now: i64,
) -> Result<Vec<Claim>, QueueError> {
    // The UPDATE re-checks status = 'pending': under READ COMMITTED a row
    // the subquery chose can be re-read after another transaction's commit,
    // and without the re-check a task claimed meanwhile would be taken twice.
    let rows = tx.query_typed(
        "UPDATE task_queue \
         SET status = 'claimed', claimed_by = $1, claimed_at = $2, heartbeat_at = $2, \
             attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM task_queue \
                      WHERE status = 'pending' AND run_after <= $2 \
                      ORDER BY priority, run_after, id LIMIT $3 \
                      FOR UPDATE SKIP LOCKED) \
           AND status = 'pending' \
         RETURNING id, document_id, task_type, priority, attempts, max_attempts, run_after",
        &[
            (&worker, Type::TEXT),
            (&now, Type::INT8),
            (&(limit as i64), Type::INT8),
        ],
    )?;
    let mut claims = Vec::with_capacity(rows.len());
    for r in &rows {
        let claim = Claim {
            task_id: r.get(0),
            document_id: r.get(1),
            task_type: parse(r.get(2))?,
            priority: Priority::from_rank(r.get(3)),
            attempt: r.get(4),
            max_attempts: r.get(5),
            worker: worker.to_owned(),
        };
        claims.push((r.get::<_, i64>(6), claim));
    }
    // RETURNING has no order: put the claims back in claim order.
    claims.sort_by_key(|(run_after, c)| (c.priority.rank(), *run_after, c.task_id));
    let claims: Vec<Claim> = claims.into_iter().map(|(_, c)| c).collect();
    for c in &claims {
        if let Some(status) = c.task_type.claimed_document_status() {
            set_documents_status(tx, &[c.document_id], status, None, now)?;
        }
    }
    Ok(claims)
}

/// Whether a pending task of `priority` or higher is due.
pub fn do_others_waiting(
    c: &mut impl GenericClient,
    priority: Priority,
    now: i64,
) -> Result<bool, QueueError> {
    Ok(c.query_typed_one(
        "SELECT EXISTS (SELECT 1 FROM task_queue \
         WHERE status = 'pending' AND priority <= $1 AND run_after <= $2)",
        &[(&priority.rank(), Type::INT8), (&now, Type::INT8)],
    )?
    .get(0))
}

/// Claims the pending task of `task_type` for one document: due or not
/// (`quire process`), or, with `due_only`, only if due.
pub fn do_claim_document(
    tx: &mut impl GenericClient,
    worker: &str,
    document_id: i64,
    task_type: TaskType,
    due_only: bool,
    now: i64,
) -> Result<Option<Claim>, QueueError> {
    let row = tx.query_typed_opt(
        "UPDATE task_queue \
         SET status = 'claimed', claimed_by = $1, claimed_at = $2, heartbeat_at = $2, \
             attempts = attempts + 1 \
         WHERE document_id = $3 AND task_type = $4 AND status = 'pending' \
           AND (NOT $5 OR run_after <= $2) \
         RETURNING id, priority, attempts, max_attempts",
        &[
            (&worker, Type::TEXT),
            (&now, Type::INT8),
            (&document_id, Type::INT8),
            (&task_type.as_str(), Type::TEXT),
            (&due_only, Type::BOOL),
        ],
    )?;
    let Some(r) = row else {
        return Ok(None);
    };
    if let Some(status) = task_type.claimed_document_status() {
        set_documents_status(tx, &[document_id], status, None, now)?;
    }
    Ok(Some(Claim {
        task_id: r.get(0),
        document_id,
        task_type,
        priority: Priority::from_rank(r.get(1)),
        attempt: r.get(2),
        max_attempts: r.get(3),
        worker: worker.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::postgres::enqueue::do_enqueue;
    use crate::queue::postgres::testing::{T0, fixture};

    #[test]
    fn claims_by_priority_then_age_and_skips_what_is_not_due() {
        let f = fixture();
        let docs: Vec<i64> = (0..4).map(|i| f.document(&format!("d{i}"))).collect();
        let mut c = f.conn();
        let mut enqueue = |doc, priority, at| {
            do_enqueue(&mut *c, doc, TaskType::Ocr, priority, 3, at)
                .unwrap()
                .task_id()
        };
        let low = enqueue(docs[0], Priority::Low, T0);
        let normal_old = enqueue(docs[1], Priority::Normal, T0 + 1);
        let normal_new = enqueue(docs[2], Priority::Normal, T0 + 2);
        let later = enqueue(docs[3], Priority::High, T0 + 60_000);
        let mut c = f.conn();
        let got: Vec<i64> = do_claim(&mut *c, "w", 10, T0 + 10)
            .unwrap()
            .iter()
            .map(|c| c.task_id)
            .collect();
        assert_eq!(
            got,
            vec![normal_old, normal_new, low],
            "not yet due: {later}"
        );
        assert_eq!(f.doc_status(docs[1]), "ocr");
        assert_eq!(f.task_status(low), "claimed");
        let due = do_claim(&mut *c, "w", 10, T0 + 60_000).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].task_id, due[0].attempt), (later, 1));
    }

    #[test]
    fn one_documents_task_is_claimed_due_or_not_and_others_waiting_sees_due_ones() {
        let f = fixture();
        let (a, b) = (f.document("a"), f.document("b"));
        let mut c = f.conn();
        do_enqueue(&mut *c, a, TaskType::Ocr, Priority::Low, 3, T0 + 60_000).unwrap();
        do_enqueue(&mut *c, b, TaskType::Ocr, Priority::Normal, 3, T0).unwrap();
        assert!(do_others_waiting(&mut *c, Priority::Normal, T0).unwrap());
        assert!(!do_others_waiting(&mut *c, Priority::High, T0).unwrap());
        let not_due = do_claim_document(&mut *c, "w", a, TaskType::Ocr, true, T0).unwrap();
        assert!(not_due.is_none());
        let claim = do_claim_document(&mut *c, "w", a, TaskType::Ocr, false, T0).unwrap();
        assert_eq!(claim.map(|c| (c.document_id, c.attempt)), Some((a, 1)));
        assert_eq!(f.doc_status(a), "ocr");
        assert!(
            do_claim_document(&mut *c, "w", a, TaskType::Ocr, false, T0)
                .unwrap()
                .is_none(),
            "claimed already"
        );
    }

    #[test]
    fn workers_on_many_connections_never_claim_the_same_task() {
        let f = fixture();
        let tasks = 300;
        f.db.write(|tx| {
            for i in 0..tasks {
                let doc: i64 = tx
                    .query_one(
                        "INSERT INTO documents (original_name, stored_path, size, sha256, kind, \
                                                created_at, updated_at) \
                         VALUES ($1, $1, 1, $1, 'png', 0, 0) RETURNING id",
                        &[&format!("d{i}")],
                    )?
                    .get(0);
                do_enqueue(tx, doc, TaskType::Indexing, Priority::Normal, 3, T0)?;
            }
            Ok::<_, QueueError>(())
        })
        .unwrap();
        let claimed: Vec<i64> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..6)
                .map(|w| {
                    let db = &f.db;
                    s.spawn(move || {
                        let mut mine = vec![];
                        loop {
                            let got = db
                                .write(|tx| do_claim(tx, &format!("w{w}"), 3, T0))
                                .unwrap();
                            if got.is_empty() {
                                return mine;
                            }
                            mine.extend(got.iter().map(|c| c.task_id));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut unique = claimed.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), claimed.len(), "a task was claimed twice");
        assert_eq!(claimed.len(), tasks);
    }
}
