//! Counts for `quire stats` and the live view, on PostgreSQL. The shapes
//! are SQLite's (`queue/sqlite/stats.rs`), so `--json` is one shape on both.

use std::collections::BTreeMap;

use postgres::GenericClient;
use postgres::types::Type;

use super::parse;
use crate::queue::{
    DocumentStatus, QueueError, QueueStats, RecentFailure, RunningTask, StatusCounts, TaskType,
};

/// Reads the snapshot. Run it in a `REPEATABLE READ` transaction so that
/// the numbers agree with each other while other hosts write.
pub fn do_stats(c: &mut impl GenericClient, now: i64) -> Result<QueueStats, QueueError> {
    let mut documents: BTreeMap<String, i64> = DocumentStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    let mut total = 0;
    for r in c.query_typed(
        "SELECT status, count(*) FROM documents GROUP BY status",
        &[],
    )? {
        let n: i64 = r.get(1);
        total += n;
        documents.insert(r.get(0), n);
    }
    documents.insert("total".into(), total);
    let poor = c.query_typed_one(
        "SELECT coalesce(sum(poor_pages), 0)::bigint, count(*) FROM documents WHERE poor_pages > 0",
        &[],
    )?;

    let mut tasks = StatusCounts::default();
    let mut by_type: BTreeMap<String, StatusCounts> = TaskType::ALL
        .iter()
        .map(|t| (t.to_string(), StatusCounts::default()))
        .collect();
    let (mut completed_last_minute, mut completed_last_hour) = (0, 0);
    for r in c.query_typed(
        "SELECT task_type, status, count(*), \
                count(*) FILTER (WHERE status = 'completed' AND completed_at >= $1), \
                count(*) FILTER (WHERE status = 'completed' AND completed_at >= $2) \
         FROM task_queue GROUP BY 1, 2",
        &[
            (&(now - 60_000), Type::INT8),
            (&(now - 3_600_000), Type::INT8),
        ],
    )? {
        let ty: TaskType = parse(r.get(0))?;
        let status = parse(r.get(1))?;
        tasks.add(status, r.get(2));
        by_type
            .entry(ty.to_string())
            .or_default()
            .add(status, r.get(2));
        completed_last_minute += r.get::<_, i64>(3);
        completed_last_hour += r.get::<_, i64>(4);
    }
    let oldest: Option<i64> = c
        .query_typed_one(
            "SELECT min(run_after) FROM task_queue WHERE status = 'pending' AND run_after <= $1",
            &[(&now, Type::INT8)],
        )?
        .get(0);
    let mut recent_failures = vec![];
    for r in c.query_typed(
        "SELECT id, document_id, task_type, coalesce(last_error, ''), completed_at \
         FROM task_queue WHERE status = 'failed' ORDER BY completed_at DESC, id DESC LIMIT 5",
        &[],
    )? {
        recent_failures.push(RecentFailure {
            task_id: r.get(0),
            document_id: r.get(1),
            task_type: parse(r.get(2))?,
            error: r.get(3),
            at: r.get::<_, Option<i64>>(4).unwrap_or(0),
        });
    }
    Ok(QueueStats {
        documents,
        tasks,
        by_type,
        oldest_pending_ms: oldest.map(|t| now - t),
        completed_last_minute,
        completed_last_hour,
        recent_failures,
        poor_pages: poor.get(0),
        documents_with_poor_pages: poor.get(1),
    })
}

/// The claimed tasks, oldest claim first, with their documents' progress.
pub fn do_running(c: &mut impl GenericClient) -> Result<Vec<RunningTask>, QueueError> {
    let rows = c.query_typed(
        "SELECT t.id, t.task_type, coalesce(t.claimed_by, ''), d.id, d.original_name, \
                d.page_count, \
                (SELECT count(*) FROM jsonb_object_keys(coalesce(d.ocr_details -> 'pages', '{}'))), \
                d.indexing_details ->> 'phase' \
         FROM task_queue t JOIN documents d ON d.id = t.document_id \
         WHERE t.status = 'claimed' ORDER BY t.claimed_at",
        &[],
    )?;
    rows.iter()
        .map(|r| {
            Ok(RunningTask {
                task_id: r.get(0),
                task_type: parse(r.get(1))?,
                worker: r.get(2),
                document_id: r.get(3),
                name: r.get(4),
                pages_total: r.get(5),
                pages_done: r.get(6),
                phase: r.get::<_, Option<String>>(7).and_then(|p| p.parse().ok()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::postgres::claim::do_claim;
    use crate::queue::postgres::enqueue::do_enqueue;
    use crate::queue::postgres::lease::do_complete;
    use crate::queue::postgres::testing::{T0, fixture};
    use crate::queue::{Policy, Priority};

    #[test]
    fn stats_count_by_status_and_type_as_on_sqlite() {
        let f = fixture();
        let (a, b) = (f.document("a"), f.document("b"));
        let mut c = f.conn();
        do_enqueue(&mut *c, a, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        do_enqueue(&mut *c, b, TaskType::Ocr, Priority::High, 3, T0).unwrap();
        let claim = do_claim(&mut *c, "w", 1, Some(T0 + 5_000))
            .unwrap()
            .remove(0);
        let running = do_running(&mut *c).unwrap();
        assert_eq!(running.len(), 1);
        assert_eq!(
            (running[0].task_id, running[0].pages_done),
            (claim.task_id, 0)
        );
        do_complete(&mut *c, &claim, &Policy::default(), Some(T0 + 5_000)).unwrap();
        let s = do_stats(&mut *c, T0 + 5_000).unwrap();
        assert_eq!(s.documents["total"], 2);
        assert_eq!((s.documents["indexing"], s.documents["queued"]), (1, 1));
        assert_eq!(
            s.tasks,
            StatusCounts {
                pending: 3,
                completed: 1,
                ..Default::default()
            }
        );
        assert_eq!(s.by_type["pdf"].pending, 1);
        assert_eq!(s.oldest_pending_ms, Some(5_000));
        assert_eq!((s.completed_last_minute, s.completed_last_hour), (1, 1));
        let later = do_stats(&mut *c, T0 + 120_000).unwrap();
        assert_eq!(
            (later.completed_last_minute, later.completed_last_hour),
            (0, 1)
        );
    }
}
