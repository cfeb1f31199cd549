//! Counts for `quire stats` and the live view, on SQLite.

use std::collections::BTreeMap;

use rusqlite::Connection;

use crate::db::sqlite::parse_col;
use crate::queue::{
    DocumentStatus, QueueError, QueueStats, RecentFailure, RunningTask, StatusCounts, TaskStatus,
    TaskType,
};

/// Reads the snapshot in one read transaction, so the numbers agree with each other.
pub(crate) fn do_stats(c: &Connection, now: i64) -> Result<QueueStats, QueueError> {
    c.execute_batch("BEGIN DEFERRED")?;
    let out = read_stats(c, now);
    c.execute_batch("COMMIT")?;
    out
}

fn read_stats(c: &Connection, now: i64) -> Result<QueueStats, QueueError> {
    let mut documents: BTreeMap<String, i64> = DocumentStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    let mut st = c.prepare_cached("SELECT status, count(*) FROM documents GROUP BY status")?;
    let mut total = 0;
    for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (status, n) = row?;
        total += n;
        documents.insert(status, n);
    }
    documents.insert("total".into(), total);
    let (poor_pages, documents_with_poor_pages): (i64, i64) = c
        .prepare_cached(
            "SELECT coalesce(sum(poor_pages), 0), count(*) FROM documents WHERE poor_pages > 0",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;

    let mut tasks = StatusCounts::default();
    let mut by_type: BTreeMap<String, StatusCounts> = TaskType::ALL
        .iter()
        .map(|t| (t.to_string(), StatusCounts::default()))
        .collect();
    // One scan of the queue counts everything, completions of the last
    // minute and hour too: no index serves those (successful completions are
    // not indexed by time, to keep them off the queue's hot path).
    let (mut completed_last_minute, mut completed_last_hour) = (0, 0);
    let mut st = c.prepare_cached(
        "SELECT task_type, status, count(*), \
                count(*) FILTER (WHERE status = 'completed' AND completed_at >= ?1), \
                count(*) FILTER (WHERE status = 'completed' AND completed_at >= ?2) \
         FROM task_queue GROUP BY 1, 2",
    )?;
    for row in st.query_map([now - 60_000, now - 3_600_000], |r| {
        Ok((
            super::parse_col::<TaskType>(r, 0)?,
            super::parse_col::<TaskStatus>(r, 1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })? {
        let (ty, status, n, last_minute, last_hour) = row?;
        tasks.add(status, n);
        by_type.entry(ty.to_string()).or_default().add(status, n);
        completed_last_minute += last_minute;
        completed_last_hour += last_hour;
    }

    let oldest: Option<i64> = c
        .prepare_cached(
            "SELECT min(run_after) FROM task_queue WHERE status = 'pending' AND run_after <= ?1",
        )?
        .query_row([now], |r| r.get(0))?;
    let recent_failures = c
        .prepare_cached(
            "SELECT id, document_id, task_type, coalesce(last_error, ''), completed_at \
             FROM task_queue WHERE status = 'failed' ORDER BY completed_at DESC, id DESC LIMIT 5",
        )?
        .query_map([], |r| {
            Ok(RecentFailure {
                task_id: r.get(0)?,
                document_id: r.get(1)?,
                task_type: parse_col(r, 2)?,
                error: r.get(3)?,
                at: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(QueueStats {
        documents,
        tasks,
        by_type,
        oldest_pending_ms: oldest.map(|t| now - t),
        completed_last_minute,
        completed_last_hour,
        recent_failures,
        poor_pages,
        documents_with_poor_pages,
    })
}

/// The claimed tasks, oldest claim first.
pub(crate) fn do_running(c: &Connection) -> Result<Vec<RunningTask>, QueueError> {
    let mut st = c.prepare_cached(
        "SELECT t.id, t.task_type, coalesce(t.claimed_by, ''), d.id, d.original_name, d.page_count,              (SELECT count(*) FROM json_each(d.ocr_details, '$.pages')),              json_extract(d.indexing_details, '$.phase')          FROM task_queue t JOIN documents d ON d.id = t.document_id          WHERE t.status = 'claimed' ORDER BY t.claimed_at",
    )?;
    let rows = st.query_map([], |r| {
        Ok(RunningTask {
            task_id: r.get(0)?,
            task_type: parse_col(r, 1)?,
            worker: r.get(2)?,
            document_id: r.get(3)?,
            name: r.get(4)?,
            pages_total: r.get(5)?,
            pages_done: r.get(6)?,
            phase: r.get::<_, Option<String>>(7)?.and_then(|p| p.parse().ok()),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use crate::queue::sqlite::testing::fixture;
    use crate::queue::*;

    #[test]
    fn stats_count_by_status_and_type() {
        let f = fixture();
        let a = f.document("a");
        let b = f.document("b");
        f.queue.enqueue(a, TaskType::Ocr, Priority::High).unwrap();
        f.queue.enqueue(b, TaskType::Ocr, Priority::High).unwrap();
        f.clock.advance(5_000);
        let c = f.claim_one("w");
        f.queue.complete(&c).unwrap();
        let s = f.queue.stats().unwrap();
        assert_eq!(s.documents["total"], 2);
        assert_eq!(s.documents["indexing"], 1);
        assert_eq!(s.documents["queued"], 1);
        assert_eq!(
            s.tasks,
            StatusCounts {
                pending: 3,
                completed: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            s.by_type["ocr"],
            StatusCounts {
                pending: 1,
                completed: 1,
                ..Default::default()
            }
        );
        assert_eq!(s.by_type["indexing"].pending, 1);
        assert_eq!(s.by_type["pdf"].pending, 1);
        assert_eq!(s.oldest_pending_ms, Some(5_000));
        assert_eq!(s.completed_last_minute, 1);
        assert_eq!(s.completed_last_hour, 1);
        f.clock.advance(120_000);
        let s = f.queue.stats().unwrap();
        assert_eq!((s.completed_last_minute, s.completed_last_hour), (0, 1));
        f.clock.advance(3_600_000);
        let s = f.queue.stats().unwrap();
        assert_eq!((s.completed_last_minute, s.completed_last_hour), (0, 0));
    }
}
