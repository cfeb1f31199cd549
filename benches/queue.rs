//! Queue throughput: N no-op tasks enqueued in one batch, then drained by W
//! worker threads doing claim + complete, on a real SQLite file. Prints
//! tasks/s for W = 1, 2, 4, 8: claims one at a time (a commit to claim, one
//! to complete), one at a time with the fused complete-and-claim the
//! workers use (one commit per task), and in batches of 16 (16 claimed in
//! one commit, completed in one); beside, as the baseline, a plain rusqlite
//! loop on a bare table with the same pragmas doing the same commits, and
//! the ratios. The fused steps are compared with a plain loop that also
//! commits once per task and sets a document's status, as quire does.
//!
//! Each row is followed by the same drain on PostgreSQL (#15), through the
//! queue's PostgreSQL operations, when a server answers.
//!
//! Run: `cargo bench --bench queue` (QUIRE_BENCH_TASKS overrides N;
//! QUIRE_BENCH_ONLY and QUIRE_BENCH_WORKERS pick one case, for profiling;
//! QUIRE_BENCH_POSTGRES=0 leaves PostgreSQL out).

use std::time::Instant;

use quire::db::Db;
use quire::queue::{Policy, Priority, Queue, TaskType};

fn main() {
    let n: usize = std::env::var("QUIRE_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    println!(
        "queue throughput, {n} tasks, claim + complete per task, SQLite WAL on {}",
        std::env::temp_dir().display()
    );
    // For profiling one case: QUIRE_BENCH_ONLY=fused (or "claim", "batch")
    // runs one kind, QUIRE_BENCH_WORKERS=1 one number of workers.
    let only = std::env::var("QUIRE_BENCH_ONLY").unwrap_or_default();
    assert!(
        ["", "claim", "fused", "batch"].contains(&only.as_str()),
        "QUIRE_BENCH_ONLY is one of claim, fused, batch"
    );
    let only_workers: Option<usize> = std::env::var("QUIRE_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok());
    // The baselines run unless one kind was asked for (they would be in its profile).
    let baselines = only.is_empty().then(|| {
        let (single, batch) = (baseline(n, 1), baseline(n, 16));
        println!(
            "baseline, plain rusqlite: claim + complete {single:.0} tasks/s one at a time, \
             {batch:.0} in batches of 16"
        );
        // What one commit per task reaches on a bare table, and with a
        // document's status set in the same commit, as quire sets it.
        let (bare, fused) = (fused_baseline(n, false), fused_baseline(n, true));
        println!(
            "baseline, plain rusqlite, fused (complete + claim the next in one commit): \
             {bare:.0} tasks/s bare, {fused:.0} also setting a document's status"
        );
        (single, batch, fused)
    });
    // Each row is followed by the same drain on PostgreSQL, unless
    // QUIRE_BENCH_POSTGRES=0 (or no server answers).
    let mut postgres = std::env::var("QUIRE_BENCH_POSTGRES").map_or(true, |v| v != "0");
    for (label, batch, fused) in [
        ("claim 1", 1, false),
        ("fused 1", 1, true),
        ("batch 16", 16, false),
    ] {
        if !label.starts_with(only.as_str()) {
            continue;
        }
        for workers in [1, 2, 4, 8] {
            if only_workers.is_some_and(|w| w != workers) {
                continue;
            }
            let (enq, drained) = run(n, workers, batch, fused);
            let sqlite_drained = drained;
            let ratio = baselines.map_or(String::new(), |(single, batched, fused_loop)| {
                let base = match (batch, fused) {
                    (1, true) => fused_loop,
                    (1, false) => single,
                    _ => batched,
                };
                format!(" = {:.2}x the baseline", drained / base)
            });
            println!(
                "workers {workers}, {label:<8}: enqueue {enq:>8.0} tasks/s, drain {drained:>8.0} tasks/s{ratio}"
            );
            if postgres {
                match run_postgres(n, workers, batch, fused) {
                    Some((enq, drained)) => println!(
                        "  on PostgreSQL   : enqueue {enq:>8.0} tasks/s, drain {drained:>8.0} tasks/s \
                         = {:.2}x SQLite",
                        drained / sqlite_drained
                    ),
                    None => {
                        println!(
                            "  on PostgreSQL: no server answers (QUIRE_TEST_POSTGRES); skipped"
                        );
                        postgres = false;
                    }
                }
            }
        }
    }
}

/// The same drain on PostgreSQL (the queue's PostgreSQL operations, which
/// `Queue` dispatches to), on a fresh database of the test server
/// (`QUIRE_TEST_POSTGRES`, default the local one); `None` when no server
/// answers. Time comes from the server, as it will in the daemon.
fn run_postgres(n: usize, workers: usize, batch: usize, fused: bool) -> Option<(f64, f64)> {
    use quire::db::postgres::PostgresDb;
    use quire::db::postgres::testing::TestDatabase;
    use quire::queue::postgres::{claim, db_now_ms, enqueue, lease};
    let database = std::panic::catch_unwind(TestDatabase::new).ok()?;
    let db = PostgresDb::open(database.target(), workers as u32 + 1).unwrap();
    let policy = Policy::default();
    db.write(|tx| {
        tx.execute(
            "INSERT INTO documents (original_name, stored_path, size, sha256, kind, created_at, updated_at) \
             SELECT 'd' || i, 'd' || i, 1, 'd' || i, 'png', 0, 0 FROM generate_series(1, $1::bigint) AS i",
            &[&(n as i64)],
        )?;
        Ok::<_, quire::queue::QueueError>(())
    })
    .unwrap();
    let t = Instant::now();
    db.write(|tx| {
        let now = db_now_ms(tx)?;
        for doc in 1..=n as i64 {
            enqueue::do_enqueue(tx, doc, TaskType::Indexing, Priority::Normal, 3, now)?;
        }
        Ok::<_, quire::queue::QueueError>(())
    })
    .unwrap();
    let enqueue_rate = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (db, policy) = (&db, &policy);
                s.spawn(move || {
                    let id = format!("bench-w{w}");
                    let claim = |tx: &mut postgres::Transaction<'_>| {
                        let now = db_now_ms(tx)?;
                        claim::do_claim(tx, &id, batch, now)
                    };
                    let mut done = 0;
                    let mut claims = db.write(claim).unwrap();
                    while !claims.is_empty() {
                        done += claims.len();
                        claims = if fused {
                            // Complete and claim the next in one transaction.
                            db.write(|tx| {
                                let now = db_now_ms(tx)?;
                                lease::do_complete(tx, &claims[0], policy, now)?;
                                claim::do_claim(tx, &id, 1, now)
                            })
                            .unwrap()
                        } else {
                            // One transaction for the batch's completions.
                            db.write(|tx| {
                                let now = db_now_ms(tx)?;
                                for c in &claims {
                                    lease::do_complete(tx, c, policy, now)?;
                                }
                                Ok::<_, quire::queue::QueueError>(())
                            })
                            .unwrap();
                            db.write(claim).unwrap()
                        };
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(done, n, "every task drained exactly once");
    Some((enqueue_rate, n as f64 / t.elapsed().as_secs_f64()))
}

/// The plain rusqlite loop: a bare task table, WAL and synchronous=NORMAL as
/// quire sets them, one worker claiming `batch` tasks (UPDATE ... RETURNING,
/// BEGIN IMMEDIATE, the LIMIT written into the statement as quire does) and
/// completing them: one at a time in its own transaction, or a batch in one.
fn baseline(n: usize, batch: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut c = plain_db(dir.path(), n, false);
    let t = Instant::now();
    let mut done = 0;
    loop {
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let ids: Vec<i64> = tx
            .prepare_cached(&format!(
                "UPDATE t SET status = 'claimed', claimed_by = 'w' WHERE id IN \
                 (SELECT id FROM t WHERE status = 'pending' ORDER BY priority, run_after, id LIMIT {batch}) \
                 RETURNING id",
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tx.commit().unwrap();
        if ids.is_empty() {
            break;
        }
        for chunk in ids.chunks(if batch > 1 { batch } else { 1 }) {
            let tx = c
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            for id in chunk {
                tx.prepare_cached(
                    "UPDATE t SET status = 'completed' WHERE id = ?1 AND claimed_by = 'w'",
                )
                .unwrap()
                .execute([id])
                .unwrap();
                done += 1;
            }
            tx.commit().unwrap();
        }
    }
    assert_eq!(done, n);
    n as f64 / t.elapsed().as_secs_f64()
}

/// A new plain database in `dir` with quire's pragmas, a bare task table
/// with its claim index and `n` pending tasks; with `documents`, also a
/// document per task ('indexing'), on a table indexed by status as
/// quire's is.
fn plain_db(dir: &std::path::Path, n: usize, documents: bool) -> rusqlite::Connection {
    let mut c = rusqlite::Connection::open(dir.join("plain.db")).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         CREATE TABLE t (id INTEGER PRIMARY KEY, status TEXT NOT NULL, priority INTEGER NOT NULL, \
                         run_after INTEGER NOT NULL, claimed_by TEXT); \
         CREATE INDEX t_claim ON t (priority, run_after, id) WHERE status = 'pending';",
    )
    .unwrap();
    if documents {
        c.execute_batch(
            "CREATE TABLE d (id INTEGER PRIMARY KEY, status TEXT NOT NULL, updated_at INTEGER); \
             CREATE INDEX d_status ON d (status);",
        )
        .unwrap();
    }
    let tx = c.transaction().unwrap();
    for i in 0..n {
        tx.execute(
            "INSERT INTO t (status, priority, run_after) VALUES ('pending', 1, 0)",
            [],
        )
        .unwrap();
        if documents {
            tx.execute(
                "INSERT INTO d (id, status) VALUES (?1, 'indexing')",
                [i as i64 + 1],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    c
}

/// The plain loop as quire's workers step: each transaction completes the
/// task just run and claims the next (one commit per task). With
/// `documents`, each completion also sets its document's status, on a
/// table indexed by status as quire's is.
fn fused_baseline(n: usize, documents: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut c = plain_db(dir.path(), n, documents);
    let t = Instant::now();
    let (mut done, mut running): (usize, Option<i64>) = (0, None);
    loop {
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        if let Some(id) = running {
            tx.prepare_cached(
                "UPDATE t SET status = 'completed' WHERE id = ?1 AND claimed_by = 'w'",
            )
            .unwrap()
            .execute([id])
            .unwrap();
            if documents {
                tx.prepare_cached("UPDATE d SET status = 'indexed', updated_at = 1 WHERE id = ?1")
                    .unwrap()
                    .execute([id])
                    .unwrap();
            }
            done += 1;
        }
        use rusqlite::OptionalExtension;
        running = tx
            .prepare_cached(
                "SELECT id FROM t WHERE status = 'pending' ORDER BY priority, run_after, id LIMIT 1",
            )
            .unwrap()
            .query_row([], |r| r.get(0))
            .optional()
            .unwrap();
        if let Some(id) = running {
            tx.prepare_cached("UPDATE t SET status = 'claimed', claimed_by = 'w' WHERE id = ?1")
                .unwrap()
                .execute([id])
                .unwrap();
        }
        tx.commit().unwrap();
        if running.is_none() {
            break;
        }
    }
    assert_eq!(done, n);
    n as f64 / t.elapsed().as_secs_f64()
}

/// Returns (enqueue rate, drain rate) in tasks per second.
fn run(n: usize, workers: usize, batch: usize, fused: bool) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::new(
        Db::open(dir.path().join("quire.db"), workers as u32 + 1).unwrap(),
        Policy::default(),
    );
    insert_documents(&queue, n);
    // Indexing tasks: completing one enqueues nothing further, so N tasks are N claims.
    let tasks: Vec<_> = (1..=n as i64)
        .map(|d| (d, TaskType::Indexing, Priority::Normal))
        .collect();
    let t = Instant::now();
    queue.enqueue_batch(&tasks).unwrap();
    let enqueue_rate = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let q = &queue;
                s.spawn(move || {
                    let id = format!("bench-w{w}");
                    let mut done = 0;
                    loop {
                        let mut claims = q.claim(&id, batch).unwrap();
                        if claims.is_empty() {
                            return done;
                        }
                        if fused {
                            // As the workers do: each completion claims the next.
                            while let Some(c) = claims.pop() {
                                claims.extend(q.complete_and_claim(&c, 1).unwrap());
                                done += 1;
                            }
                            continue;
                        }
                        if batch > 1 {
                            // Completions batched as claims are: one commit each.
                            let results = q.complete_batch(&claims).unwrap();
                            assert!(results.iter().all(Result::is_ok));
                        } else {
                            for c in &claims {
                                q.complete(c).unwrap();
                            }
                        }
                        done += claims.len();
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(done, n, "every task drained exactly once");
    (enqueue_rate, n as f64 / t.elapsed().as_secs_f64())
}

/// Inserts `n` bare documents (ids 1..=n) in one SQLite transaction, for
/// tasks to be enqueued against: setup, not measured, and without the OCR
/// task that `Queue::create_document_with_task` would add to the queue.
fn insert_documents(queue: &Queue, n: usize) {
    let quire::db::Engine::Sqlite(db) = queue.db().engine() else {
        unreachable!("the bench opens a SQLite file")
    };
    let mut conn = db.conn().unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..n {
        tx.execute(
            "INSERT INTO documents (original_name, stored_path, size, sha256, kind, created_at, updated_at) \
             VALUES (?1, ?1, 1, ?1, 'png', 0, 0)",
            [format!("d{i}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}
