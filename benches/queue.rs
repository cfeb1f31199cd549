//! Queue throughput: N no-op tasks enqueued in one batch, then drained by W
//! worker threads doing claim + complete, on a real SQLite file. Prints
//! tasks/s for W = 1, 2, 4, 8: claims one at a time (a commit to claim, one
//! to complete), one at a time with the fused complete-and-claim the
//! workers use (one commit per task), and in batches of 16 (16 claimed in
//! one commit, completed in one); beside, as the baseline, a plain rusqlite
//! loop on a bare table with the same pragmas doing the same commits, and
//! the ratios. The fused steps are compared with a plain loop that also
//! commits once per task and sets a document's status, as quire does. The
//! fused step also runs with the workers split between two processes (W/2
//! threads each), as two daemons sharing a database would.
//!
//! Each row is followed by the same drain on PostgreSQL (#15), through the
//! same `Queue` API, when a server answers, with the daemon's vacuum thread
//! running beside the workers.
//!
//! Run: `cargo bench --bench queue` (QUIRE_BENCH_TASKS overrides N;
//! QUIRE_BENCH_ONLY and QUIRE_BENCH_WORKERS pick one case, for profiling;
//! QUIRE_BENCH_POSTGRES=0 leaves PostgreSQL out).

use std::time::Instant;

use quire::db::{Db, Location};
use quire::queue::{Policy, Priority, Queue, TaskType};

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    let n: usize = std::env::var("QUIRE_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    println!(
        "queue throughput, {n} tasks, claim + complete per task, SQLite WAL on {}",
        std::env::temp_dir().display()
    );
    // For profiling one case: QUIRE_BENCH_ONLY=fused (or "claim", "procs",
    // "batch") runs one kind, QUIRE_BENCH_WORKERS=1 one number of workers.
    let only = std::env::var("QUIRE_BENCH_ONLY").unwrap_or_default();
    assert!(
        ["", "claim", "fused", "procs", "batch"].contains(&only.as_str()),
        "QUIRE_BENCH_ONLY is one of claim, fused, procs, batch"
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
    for (label, batch, mode) in [
        ("claim 1", 1, Mode::Separate),
        ("fused 1", 1, Mode::Fused),
        ("procs 2", 1, Mode::FusedTwoProcesses),
        ("batch 16", 16, Mode::Separate),
    ] {
        if !label.starts_with(only.as_str()) {
            continue;
        }
        for workers in [1, 2, 4, 8] {
            // Two processes need a worker each.
            let too_few = mode == Mode::FusedTwoProcesses && workers < 2;
            if too_few || only_workers.is_some_and(|w| w != workers) {
                continue;
            }
            let (enq, drained) = run(n, workers, batch, mode);
            let sqlite_drained = drained;
            let ratio = baselines.map_or(String::new(), |(single, batched, fused_loop)| {
                let base = match (batch, mode) {
                    (1, Mode::Separate) => single,
                    (1, _) => fused_loop,
                    _ => batched,
                };
                format!(" = {:.2}x the baseline", drained / base)
            });
            println!(
                "workers {workers}, {label:<8}: enqueue {enq:>8.0} tasks/s, drain {drained:>8.0} tasks/s{ratio}"
            );
            if postgres {
                match run_postgres(n, workers, batch, mode) {
                    Some((enq, drained)) => {
                        println!(
                            "  on PostgreSQL   : enqueue {enq:>8.0} tasks/s, drain {drained:>8.0} \
                             tasks/s = {:.2}x SQLite",
                            drained / sqlite_drained
                        );
                        if mode == Mode::Fused {
                            let plain = postgres_fused_baseline(n, workers);
                            println!(
                                "  plain postgres  : drain {plain:>8.0} tasks/s, quire = {:.2}x",
                                drained / plain
                            );
                        }
                    }
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

/// The same drain on PostgreSQL, through the same `Queue` (which
/// dispatches to its PostgreSQL operations), on a fresh database of the
/// test server (`QUIRE_TEST_POSTGRES`, default the local one); `None` when
/// no server answers. Time comes from the server, as in the daemon.
fn run_postgres(n: usize, workers: usize, batch: usize, mode: Mode) -> Option<(f64, f64)> {
    use quire::db::postgres::testing::TestDatabase;
    let database = std::panic::catch_unwind(TestDatabase::new).ok()?;
    Some(drain(
        Location::Postgres(database.target().clone()),
        &database.url(),
        n,
        workers,
        batch,
        mode,
    ))
}

/// The PostgreSQL baseline of the fused step: `workers` threads, each on a
/// connection of its own with one prepared statement, draining a bare task
/// table (a primary key and the claim index) on a fresh database: each
/// statement completes the task it holds, sets its document's status and
/// claims the next with `FOR UPDATE SKIP LOCKED` (in a scalar subquery,
/// which runs once: joined as `UPDATE ... FROM (locked CTE)` it deadlocked
/// at 8 workers, see migration 0003; this form still does, now and then,
/// and the server rolls the statement back, so it is sent again), one
/// commit per task as quire's step. No fencing beyond the claimant, no attempts, no
/// notifications, no vacuum: what one durable commit per task costs the
/// server on this machine.
fn postgres_fused_baseline(n: usize, workers: usize) -> f64 {
    use quire::db::postgres::testing::TestDatabase;
    let database = TestDatabase::new();
    let connect = || database.target().config().connect(postgres::NoTls).unwrap();
    let mut setup = connect();
    setup
        .batch_execute(&format!(
            "CREATE TABLE d (id bigint PRIMARY KEY, status text NOT NULL, updated_at bigint);
             CREATE TABLE t (id bigint PRIMARY KEY, priority bigint NOT NULL,
                             run_after bigint NOT NULL, status text NOT NULL,
                             claimed_by text);
             CREATE INDEX t_claim ON t (priority, run_after, id) WHERE status = 'pending';
             INSERT INTO d SELECT i, 'indexing', 0 FROM generate_series(1, {n}) i;
             INSERT INTO t SELECT i, 1, 0, 'pending' FROM generate_series(1, {n}) i"
        ))
        .unwrap();
    // Apart: VACUUM cannot run in the batch's implicit transaction.
    setup.batch_execute("VACUUM ANALYZE").unwrap();
    drop(setup);
    let t = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let mut c = connect();
                s.spawn(move || {
                    let step = c
                        .prepare_typed(
                            "WITH done AS (
                                 UPDATE t SET status = 'completed'
                                 WHERE id = $1 AND status = 'claimed' AND claimed_by = $2
                                 RETURNING id),
                             doc AS (
                                 UPDATE d SET status = 'indexed', updated_at = 1
                                 WHERE id IN (SELECT id FROM done))
                             UPDATE t SET status = 'claimed', claimed_by = $2
                             WHERE id = (SELECT id FROM t WHERE status = 'pending'
                                         ORDER BY priority, run_after, id LIMIT 1
                                         FOR UPDATE SKIP LOCKED)
                             RETURNING id",
                            &[postgres::types::Type::INT8, postgres::types::Type::TEXT],
                        )
                        .unwrap();
                    let me = format!("w{w}");
                    // Counts claims; 0 holds nothing (ids start at 1).
                    let (mut held, mut done) = (0i64, 0);
                    loop {
                        let answer = match c.query_opt(&step, &[&held, &me]) {
                            Err(e)
                                if e.code()
                                    == Some(&postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
                            {
                                // Rolled back: nothing completed or claimed.
                                continue;
                            }
                            answer => answer.unwrap(),
                        };
                        match answer {
                            Some(row) => {
                                held = row.get(0);
                                done += 1;
                            }
                            None if held == 0 => return done,
                            None => held = 0,
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let took = t.elapsed();
    assert_eq!(done, n, "every task claimed exactly once");
    n as f64 / took.as_secs_f64()
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

/// Returns (enqueue rate, drain rate) in tasks per second, on a new SQLite file.
fn run(n: usize, workers: usize, batch: usize, mode: Mode) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quire.db");
    drain(
        Location::Sqlite(path.clone()),
        &path.display().to_string(),
        n,
        workers,
        batch,
        mode,
    )
}

/// How the workers step and where they run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A commit to claim, one to complete (or one per batch of each).
    Separate,
    /// `complete_and_claim`, the daemon's step: one commit per task.
    Fused,
    /// Fused, with the workers split between two processes (this bench's
    /// binary run again), as two daemons on one machine would be.
    FusedTwoProcesses,
}

/// Enqueues `n` indexing tasks on a new database at `location` (`url` to
/// child processes) and drains them with `workers` threads (or two
/// processes) through `Queue`; returns (enqueue rate, drain rate) in tasks
/// per second.
fn drain(
    location: Location,
    url: &str,
    n: usize,
    workers: usize,
    batch: usize,
    mode: Mode,
) -> (f64, f64) {
    let queue = Queue::new(
        Db::open(location, workers as u32 + 1).unwrap(),
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
    // The daemon's vacuum thread runs beside its workers (PostgreSQL only).
    let (stop_vacuum, stop) = crossbeam_channel::bounded::<()>(0);
    let vacuum = quire::scheduler::spawn_vacuum(queue.clone(), stop);
    let (done, took) = if mode == Mode::FusedTwoProcesses {
        two_processes(url, workers)
    } else {
        let t = Instant::now();
        let done = work(&queue, "bench", workers, batch, mode == Mode::Fused);
        (done, t.elapsed())
    };
    drop(stop_vacuum);
    if let Some(v) = vacuum {
        v.join().unwrap();
    }
    assert_eq!(done, n, "every task drained exactly once");
    (enqueue_rate, n as f64 / took.as_secs_f64())
}

/// Drains `queue` with `workers` threads until nothing is left; returns how
/// many tasks they completed.
fn work(queue: &Queue, name: &str, workers: usize, batch: usize, fused: bool) -> usize {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    let id = format!("{name}-w{w}");
                    let mut done = 0;
                    loop {
                        let mut claims = queue.claim(&id, batch).unwrap();
                        if claims.is_empty() {
                            return done;
                        }
                        if fused {
                            // As the workers do: each completion claims the next.
                            while let Some(c) = claims.pop() {
                                claims.extend(queue.complete_and_claim(&c, 1).unwrap());
                                done += 1;
                            }
                            continue;
                        }
                        if batch > 1 {
                            // Completions batched as claims are: one commit each.
                            let results = queue.complete_batch(&claims).unwrap();
                            assert!(results.iter().all(Result::is_ok));
                        } else {
                            for c in &claims {
                                queue.complete(c).unwrap();
                            }
                        }
                        done += claims.len();
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// The environment variable that makes this binary a child of
/// [`two_processes`]: the database to drain, then the number of workers.
const CHILD: &str = "QUIRE_BENCH_CHILD";

/// Runs this binary twice as a child draining the database at `url` (a
/// SQLite file's path or a PostgreSQL URL) with half the workers each,
/// started together (each child opens its pool, says "ready", and waits for
/// a line on stdin); returns the tasks both completed and the time from
/// "go" until both were done: the children's start-up is not timed, as
/// the threads' is not.
fn two_processes(url: &str, workers: usize) -> (usize, std::time::Duration) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut children: Vec<_> = (0..2)
        .map(|i| {
            Command::new(std::env::current_exe().unwrap())
                .env(CHILD, format!("{} {url}", (workers / 2).max(1)))
                .env("QUIRE_BENCH_CHILD_NAME", format!("p{i}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|c| BufReader::new(c.stdout.take().unwrap()))
        .collect();
    for out in &mut outputs {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "a bench child did not start");
    }
    let t = Instant::now();
    for c in &mut children {
        writeln!(c.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let mut done = 0;
    for out in &mut outputs {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        done += line.trim().parse::<usize>().expect("a bench child's count");
    }
    let took = t.elapsed();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    (done, took)
}

/// The child's side of [`two_processes`].
fn child(spec: &str) {
    use std::io::BufRead;
    let (workers, url) = spec.split_once(' ').expect("workers, then the database");
    let workers: usize = workers.parse().unwrap();
    let location = if url.starts_with("postgres") {
        Location::Postgres(quire::db::postgres::Target::parse(url, None, |_| None).unwrap())
    } else {
        Location::Sqlite(url.into())
    };
    let queue = Queue::new(
        Db::open(location, workers as u32 + 1).unwrap(),
        Policy::default(),
    );
    println!("ready");
    std::io::stdin().lock().lines().next();
    let name = std::env::var("QUIRE_BENCH_CHILD_NAME").unwrap_or_default();
    println!("{}", work(&queue, &name, workers, 1, true));
}

/// Inserts `n` bare documents (ids 1..=n) in one transaction, for tasks to
/// be enqueued against: setup, not measured, and without the OCR task that
/// `Queue::create_document_with_task` would add to the queue.
fn insert_documents(queue: &Queue, n: usize) {
    match queue.db().engine() {
        quire::db::Engine::Sqlite(db) => {
            let mut conn = db.conn().unwrap();
            let tx = conn.transaction().unwrap();
            for i in 0..n {
                tx.execute(
                    "INSERT INTO documents (original_name, stored_path, size, sha256, kind, \
                                            created_at, updated_at) \
                     VALUES (?1, ?1, 1, ?1, 'png', 0, 0)",
                    [format!("d{i}")],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        quire::db::Engine::Postgres(db) => db
            .write(|tx| {
                tx.execute(
                    "INSERT INTO documents (original_name, stored_path, size, sha256, kind, \
                                            created_at, updated_at) \
                     SELECT 'd' || i, 'd' || i, 1, 'd' || i, 'png', 0, 0 \
                     FROM generate_series(1, $1::bigint) AS i",
                    &[&(n as i64)],
                )?;
                Ok::<_, quire::queue::QueueError>(())
            })
            .unwrap(),
    }
}
