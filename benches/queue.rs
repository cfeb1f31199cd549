//! Queue throughput: N no-op tasks enqueued in one batch, then drained by W
//! worker threads doing claim + complete, on a real SQLite file. Prints
//! tasks/s for W = 1, 2, 4, 8 (and for a claim batch of 16).
//!
//! Run: `cargo bench --bench queue` (QUIRE_BENCH_TASKS overrides N).

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
    for batch in [1, 16] {
        for workers in [1, 2, 4, 8] {
            let (enq, drained) = run(n, workers, batch);
            println!(
                "workers {workers}, claim batch {batch:>2}: enqueue {enq:>8.0} tasks/s, drain {drained:>8.0} tasks/s"
            );
        }
    }
}

/// Returns (enqueue rate, drain rate) in tasks per second.
fn run(n: usize, workers: usize, batch: usize) -> (f64, f64) {
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
                        let claims = q.claim(&id, batch).unwrap();
                        if claims.is_empty() {
                            return done;
                        }
                        for c in &claims {
                            q.complete(c).unwrap();
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
    let quire::db::Engine::Sqlite(db) = queue.db().engine();
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
