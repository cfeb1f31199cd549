//! Taking work. Many workers on many hosts claim at once: each statement
//! locks the rows it takes and skips rows another transaction has locked
//! (`FOR UPDATE SKIP LOCKED`), so no two workers wait for each other or take
//! the same task.

use postgres::types::Type;
use postgres::{GenericClient, Row};

use super::parse;
use crate::queue::{Claim, Priority, QueueError, TaskType};

/// Claims up to `limit` due pending tasks for `worker`, by priority, then
/// by when they became due, then by id; counts an attempt on each and moves
/// their documents to the matching status (`quire_claim`, migration 0003).
/// `now` is `None` for the server's clock at the call.
pub fn do_claim(
    c: &mut impl GenericClient,
    worker: &str,
    limit: usize,
    now: Option<i64>,
) -> Result<Vec<Claim>, QueueError> {
    let rows = c.query_typed(
        "SELECT * FROM quire_claim($1, $2, $3)",
        &[
            (&worker, Type::TEXT),
            (&(limit as i64), Type::INT8),
            (&now, Type::INT8),
        ],
    )?;
    claims(&rows, worker)
}

/// The claims in `rows` (the columns the claim functions return), in claim
/// order: RETURNING has none.
pub(super) fn claims(rows: &[Row], worker: &str) -> Result<Vec<Claim>, QueueError> {
    let mut claims = Vec::with_capacity(rows.len());
    for r in rows {
        let claim = Claim {
            task_id: r.get("id"),
            document_id: r.get("document_id"),
            task_type: parse(r.get("task_type"))?,
            priority: Priority::from_rank(r.get("priority")),
            attempt: r.get("attempts"),
            max_attempts: r.get("max_attempts"),
            worker: worker.to_owned(),
        };
        claims.push((r.get::<_, i64>("run_after"), claim));
    }
    claims.sort_by_key(|(run_after, c)| (c.priority.rank(), *run_after, c.task_id));
    Ok(claims.into_iter().map(|(_, c)| c).collect())
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
/// (`quire process`), or, with `due_only`, only if due
/// (`quire_claim_document`). `now` is `None` for the server's clock.
pub fn do_claim_document(
    c: &mut impl GenericClient,
    worker: &str,
    document_id: i64,
    task_type: TaskType,
    due_only: bool,
    now: Option<i64>,
) -> Result<Option<Claim>, QueueError> {
    let rows = c.query_typed(
        "SELECT * FROM quire_claim_document($1, $2, $3, $4, $5)",
        &[
            (&worker, Type::TEXT),
            (&document_id, Type::INT8),
            (&task_type.as_str(), Type::TEXT),
            (&due_only, Type::BOOL),
            (&now, Type::INT8),
        ],
    )?;
    Ok(claims(&rows, worker)?.pop())
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
        let got: Vec<i64> = do_claim(&mut *c, "w", 10, Some(T0 + 10))
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
        let due = do_claim(&mut *c, "w", 10, Some(T0 + 60_000)).unwrap();
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
        let not_due = do_claim_document(&mut *c, "w", a, TaskType::Ocr, true, Some(T0)).unwrap();
        assert!(not_due.is_none());
        let claim = do_claim_document(&mut *c, "w", a, TaskType::Ocr, false, Some(T0)).unwrap();
        assert_eq!(claim.map(|c| (c.document_id, c.attempt)), Some((a, 1)));
        assert_eq!(f.doc_status(a), "ocr");
        assert!(
            do_claim_document(&mut *c, "w", a, TaskType::Ocr, false, Some(T0))
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
                                .write(|tx| do_claim(tx, &format!("w{w}"), 3, Some(T0)))
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
