//! Releasing claims whose worker stopped heartbeating, by the server's
//! clock. Every host may run it at once: each release is one fenced UPDATE
//! of a row still claimed, so two hosts releasing the same task release it
//! once, and rows another transaction holds are skipped, not waited for.

use postgres::GenericClient;
use postgres::types::Type;

use super::{enqueue, set_documents_status};
use crate::queue::sqlite::maintenance::KILLS_FORGIVEN_FACTOR;
use crate::queue::{DocumentStatus, Priority, QueueError, ReleasedStale, TaskType};

/// Releases every claim whose heartbeat is older than `cutoff` (Unix ms by
/// the server's clock) back to pending, or fails it when it has used up its
/// attempts. An attempt that made progress (`progress_at` after the claim)
/// does not count, as on SQLite.
pub fn do_release_stale(
    tx: &mut impl GenericClient,
    cutoff: i64,
    reason: &str,
    now: i64,
) -> Result<Vec<ReleasedStale>, QueueError> {
    let rows = tx.query_typed(
        "WITH stale AS (
             SELECT id, claimed_by, coalesce(progress_at > claimed_at, false) AS progressed
             FROM task_queue WHERE status = 'claimed' AND heartbeat_at < $1
             FOR UPDATE SKIP LOCKED)
         UPDATE task_queue t SET
             status = CASE WHEN NOT s.progressed AND t.attempts >= t.max_attempts
                          THEN 'failed' ELSE 'pending' END,
             completed_at = CASE WHEN NOT s.progressed AND t.attempts >= t.max_attempts
                                THEN $2::bigint END,
             max_attempts = t.max_attempts + CASE WHEN s.progressed THEN 1 ELSE 0 END,
             run_after = $2, last_error = $3,
             claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL
         FROM stale s WHERE t.id = s.id AND t.status = 'claimed'
         RETURNING t.id, t.document_id, s.claimed_by, t.status = 'failed', t.task_type",
        &[
            (&cutoff, Type::INT8),
            (&now, Type::INT8),
            (&reason, Type::TEXT),
        ],
    )?;
    let mut released = Vec::with_capacity(rows.len());
    for r in rows {
        let (task_id, document_id, worker, failed): (i64, i64, Option<String>, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let task_type: TaskType = super::parse(r.get(4))?;
        if failed && task_type.is_stage() {
            let error = format!(
                "{reason}, on every one of its attempts; `quire retry {task_id}` tries again"
            );
            let doc = [document_id];
            set_documents_status(tx, &doc, DocumentStatus::Failed, Some(&error), now)?;
        }
        log::warn!(
            "task {task_id} (document {document_id}): {reason}; {}",
            if failed { "failed" } else { "released" }
        );
        released.push(ReleasedStale {
            task_id,
            document_id,
            worker: worker.unwrap_or_default(),
            failed,
        });
    }
    Ok(released)
}

/// Releases the claims of workers that `is_dead` says are gone (on this
/// host: the caller answers for its own host's workers only; other hosts'
/// claims go by heartbeat). As on SQLite, a death does not count against
/// the attempts until the task has been claimed `max_attempts` times
/// [`KILLS_FORGIVEN_FACTOR`] over; then it fails.
pub fn do_release_dead(
    tx: &mut impl GenericClient,
    is_dead: impl Fn(&str) -> bool,
    max_attempts: i64,
    now: i64,
) -> Result<Vec<ReleasedStale>, QueueError> {
    let claimed = tx.query_typed(
        // No lock here: the claims of other hosts' live workers must not
        // wait on this; each release below re-checks its claim.
        "SELECT id, claimed_by FROM task_queue WHERE status = 'claimed'",
        &[],
    )?;
    let dead: Vec<(i64, String)> = claimed
        .iter()
        .map(|r| {
            (
                r.get::<_, i64>(0),
                r.get::<_, Option<String>>(1).unwrap_or_default(),
            )
        })
        .filter(|(_, worker)| is_dead(worker))
        .collect();
    let forgiven = max_attempts * KILLS_FORGIVEN_FACTOR;
    let mut released = vec![];
    for (task_id, worker) in dead {
        let reason = format!("worker {worker} died while running this task");
        let row = tx.query_typed_opt(
            "UPDATE task_queue SET \
                 status = CASE WHEN attempts >= $1 AND NOT coalesce(progress_at > claimed_at, false) \
                     THEN 'failed' ELSE 'pending' END, \
                 completed_at = CASE WHEN attempts >= $1 \
                     AND NOT coalesce(progress_at > claimed_at, false) THEN $2::bigint END, \
                 max_attempts = max_attempts + CASE WHEN attempts < $1 \
                     OR coalesce(progress_at > claimed_at, false) THEN 1 ELSE 0 END, \
                 run_after = $2, last_error = $3, \
                 claimed_by = NULL, claimed_at = NULL, heartbeat_at = NULL \
             WHERE id = $4 AND status = 'claimed' AND claimed_by = $5 \
             RETURNING document_id, status = 'failed', task_type",
            &[
                (&forgiven, Type::INT8),
                (&now, Type::INT8),
                (&reason, Type::TEXT),
                (&task_id, Type::INT8),
                (&worker, Type::TEXT),
            ],
        )?;
        // Completed, released or taken over since it was read.
        let Some(r) = row else { continue };
        let (document_id, failed): (i64, bool) = (r.get(0), r.get(1));
        let task_type: TaskType = super::parse(r.get(2))?;
        if failed && task_type.is_stage() {
            let error = format!(
                "{reason}, on every one of its attempts; `quire retry {task_id}` tries again"
            );
            set_documents_status(
                tx,
                &[document_id],
                DocumentStatus::Failed,
                Some(&error),
                now,
            )?;
        }
        log::warn!(
            "task {task_id} (document {document_id}): {reason}; {}",
            if failed {
                "failed"
            } else {
                "released (the attempt is not counted)"
            }
        );
        released.push(ReleasedStale {
            task_id,
            document_id,
            worker,
            failed,
        });
    }
    Ok(released)
}

/// Enqueues, at low priority, a task for every document that needs OCR or
/// indexing but has no live task. Safe when every host runs it at once: the
/// enqueue is idempotent (`task_queue_live`).
pub fn do_enqueue_orphans(
    tx: &mut impl GenericClient,
    max_attempts: i64,
    now: i64,
) -> Result<Vec<(i64, TaskType)>, QueueError> {
    let rows = tx.query_typed(
        "SELECT id, status FROM documents d \
         WHERE status IN ('queued', 'ocr', 'indexing') \
         AND NOT EXISTS (SELECT 1 FROM task_queue t WHERE t.document_id = d.id \
                         AND t.status IN ('pending', 'claimed'))",
        &[],
    )?;
    let mut orphans = vec![];
    for r in rows {
        let (doc, status): (i64, DocumentStatus) = (r.get(0), super::parse(r.get(1))?);
        let ty = crate::queue::maintenance::orphan_task(status);
        enqueue::do_enqueue(tx, doc, ty, Priority::Low, max_attempts, now)?;
        // Enqueueing OCR resets the status to queued; keep "ocr" visible
        // for a document whose OCR had started (its checkpoints remain).
        if status == DocumentStatus::Ocr {
            set_documents_status(tx, &[doc], DocumentStatus::Ocr, None, now)?;
        }
        orphans.push((doc, ty));
    }
    Ok(orphans)
}

/// Deletes completed and cancelled tasks finished before `cutoff`.
pub fn do_purge(tx: &mut impl GenericClient, cutoff: i64) -> Result<u64, QueueError> {
    Ok(tx.execute_typed(
        "DELETE FROM task_queue WHERE status IN ('completed', 'cancelled') AND completed_at < $1",
        &[(&cutoff, Type::INT8)],
    )?)
}

/// Dead row versions in `task_queue` past which [`do_vacuum`] vacuums it.
/// Each task leaves two (its claim and its completion); 10,000 is about a
/// second of a fast drain on a small machine, and a claim walks the dead
/// entries at the front of the claim index until they go (see
/// [`do_vacuum`]), about 25 index pages at this many.
pub const VACUUM_AFTER_DEAD_ROWS: i64 = 10_000;

/// Whether this session's user may vacuum `task_queue`: its owner (the
/// user who ran the migrations), the database's owner, or a superuser.
/// Anyone else's VACUUM is skipped by the server with a warning.
pub fn may_vacuum(c: &mut impl GenericClient) -> Result<bool, QueueError> {
    Ok(c.query_typed_one(
        "SELECT pg_has_role(c.relowner, 'MEMBER') OR pg_has_role(d.datdba, 'MEMBER') \
         FROM pg_class c, pg_database d \
         WHERE c.oid = 'task_queue'::regclass AND d.datname = current_database()",
        &[],
    )?
    .get(0))
}

/// Vacuums `task_queue` when the server counts at least `threshold` dead
/// row versions in it; returns how many it counted, or `None` when there
/// were fewer.
///
/// Why a daemon vacuums: a claim walks the claim index from its front, and
/// every task claimed since the last vacuum left a dead entry there (a
/// claim changes `status`, so no update is HOT, and a btree only drops dead
/// entries in VACUUM or when an insert lands on their page, which never
/// happens at the front). During a drain of 60,000 tasks the walk grew to
/// 220 pages a claim and the drain slowed by a third; autovacuum looks once
/// a minute at most. Index cleanup is forced on: PostgreSQL skips the
/// indexes when few heap pages hold dead rows, which in a table of many
/// finished tasks is always, and the claim index is what needs it.
///
/// `SKIP_LOCKED`: when another host's daemon or autovacuum is vacuuming
/// the table, this one does nothing rather than wait; the server's warning
/// that it skipped is silenced, since every host tries. VACUUM cannot run
/// in a transaction, so `c` is a connection, not a transaction.
pub fn do_vacuum(c: &mut postgres::Client, threshold: i64) -> Result<Option<i64>, QueueError> {
    let dead: i64 = c
        .query_typed_one(
            "SELECT pg_stat_get_dead_tuples('task_queue'::regclass)",
            &[],
        )?
        .get(0);
    if dead < threshold {
        return Ok(None);
    }
    c.batch_execute("SET client_min_messages = error")?;
    let vacuumed = c.batch_execute("VACUUM (SKIP_LOCKED, INDEX_CLEANUP ON) task_queue");
    // The connection goes back to the pool: it must warn as others do.
    let reset = c.batch_execute("RESET client_min_messages");
    vacuumed?;
    reset?;
    Ok(Some(dead))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::postgres::Conn;
    use crate::queue::postgres::claim::do_claim;
    use crate::queue::postgres::enqueue::do_enqueue;
    use crate::queue::postgres::lease::do_heartbeat;
    use crate::queue::postgres::testing::{T0, fixture};
    use crate::queue::{Priority, QueueError};

    #[test]
    fn only_claims_past_the_cutoff_are_released_and_their_owner_is_fenced_out() {
        let f = fixture();
        let (a, b) = (f.document("a"), f.document("b"));
        let mut c = f.conn();
        do_enqueue(&mut *c, a, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        do_enqueue(&mut *c, b, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        let claims = do_claim(&mut *c, "host-a", 2, Some(T0)).unwrap();
        // One worker keeps heartbeating, the other went quiet.
        do_heartbeat(&mut *c, &claims[1], T0 + 50_000).unwrap();
        let released = do_release_stale(&mut *c, T0 + 30_000, "stale", T0 + 60_000).unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].task_id, claims[0].task_id);
        assert_eq!(released[0].worker, "host-a");
        assert!(!released[0].failed);
        assert_eq!(f.task_status(claims[0].task_id), "pending");
        assert_eq!(f.task_status(claims[1].task_id), "claimed");
        let late = do_heartbeat(&mut *c, &claims[0], T0 + 61_000);
        assert!(
            matches!(late, Err(QueueError::LostClaim { .. })),
            "{late:?}"
        );
        // Hosts releasing at the same moment release it once.
        assert!(
            do_release_stale(&mut *c, T0 + 30_000, "stale", T0 + 60_000)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn orphans_get_a_task_and_old_finished_tasks_are_purged() {
        let f = fixture();
        let (a, b) = (f.document("a"), f.document("b"));
        let mut c = f.conn();
        // a is queued with no task (as after a crash between two writes of
        // an older quire); b has its task.
        do_enqueue(&mut *c, b, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        let orphans = do_enqueue_orphans(&mut *c, 3, T0).unwrap();
        assert_eq!(orphans, vec![(a, TaskType::Ocr)]);
        assert!(do_enqueue_orphans(&mut *c, 3, T0).unwrap().is_empty());
        let claims = do_claim(&mut *c, "w", 2, Some(T0)).unwrap();
        let policy = crate::queue::Policy::default();
        crate::queue::postgres::lease::do_complete(&mut *c, &claims[0], &policy, Some(T0 + 10))
            .unwrap();
        assert_eq!(
            do_purge(&mut *c, T0 + 10).unwrap(),
            0,
            "finished at the cutoff: kept"
        );
        assert_eq!(do_purge(&mut *c, T0 + 11).unwrap(), 1);
    }

    #[test]
    fn the_queue_is_vacuumed_once_it_has_churned_by_a_user_who_may() {
        let f = fixture();
        let doc = f.document("a");
        let mut c = f.conn();
        do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        let claim = do_claim(&mut *c, "w", 1, Some(T0)).unwrap().remove(0);
        let policy = crate::queue::Policy::default();
        crate::queue::postgres::lease::do_complete(&mut *c, &claim, &policy, Some(T0)).unwrap();
        let stat = |c: &mut Conn, f: &str| -> i64 {
            c.query_one(&format!("SELECT {f}('task_queue'::regclass)"), &[])
                .unwrap()
                .get(0)
        };
        assert_eq!(
            do_vacuum(&mut c, i64::MAX).unwrap(),
            None,
            "too few dead rows"
        );
        assert_eq!(stat(&mut c, "pg_stat_get_vacuum_count"), 0);
        assert!(do_vacuum(&mut c, 0).unwrap().is_some());
        assert_eq!(stat(&mut c, "pg_stat_get_vacuum_count"), 1);
        assert_eq!(stat(&mut c, "pg_stat_get_dead_tuples"), 0);
        let warns: String = c.query_one("SHOW client_min_messages", &[]).unwrap().get(0);
        assert_eq!(warns, "notice", "the pooled connection's setting is back");
        assert!(may_vacuum(&mut *c).unwrap(), "the owner may");
        // A role that owns nothing may not (the role goes with the rollback).
        let mut tx = c.transaction().unwrap();
        tx.batch_execute("CREATE ROLE quire_test_stranger; SET LOCAL ROLE quire_test_stranger")
            .unwrap();
        assert!(!may_vacuum(&mut tx).unwrap());
    }

    #[test]
    fn only_the_dead_workers_claims_are_released_and_their_attempt_is_forgiven() {
        let f = fixture();
        let (a, b) = (f.document("a"), f.document("b"));
        let mut c = f.conn();
        do_enqueue(&mut *c, a, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        do_enqueue(&mut *c, b, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        let dead = do_claim(&mut *c, "here:100:w1", 1, Some(T0))
            .unwrap()
            .remove(0);
        let alive = do_claim(&mut *c, "there:200:w1", 1, Some(T0))
            .unwrap()
            .remove(0);
        let released = do_release_dead(&mut *c, |w| w.starts_with("here:100:"), 3, T0 + 1).unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(
            (released[0].task_id, released[0].failed),
            (dead.task_id, false)
        );
        assert_eq!(f.task_status(dead.task_id), "pending");
        assert_eq!(f.task_status(alive.task_id), "claimed");
        let max: i64 = c
            .query_one(
                "SELECT max_attempts FROM task_queue WHERE id = $1",
                &[&dead.task_id],
            )
            .unwrap()
            .get(0);
        assert_eq!(max, 4, "the death does not count");
    }

    #[test]
    fn the_last_attempt_released_as_stale_fails_the_document() {
        let f = fixture();
        let doc = f.document("a");
        let mut c = f.conn();
        do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::High, 1, T0).unwrap();
        do_claim(&mut *c, "w", 1, Some(T0)).unwrap();
        let released = do_release_stale(&mut *c, T0 + 1, "stale", T0 + 2).unwrap();
        assert!(released[0].failed);
        assert_eq!(f.doc_status(doc), "failed");
    }
}
