//! The pool's threads: `n` workers, one heartbeater, and one waker that watches
//! the database for commits made by other processes.
//!
//! Idle workers sleep on a crossbeam channel. They wake at once when this
//! process enqueues work ([`Wake::notify`]), when another process commits to
//! the database (the waker sees `PRAGMA data_version` change), and in any case
//! every `poll_interval`.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select};

use super::identity::WorkerIdentity;
use super::processor::{Processors, TaskContext, TaskError};
use crate::app::App;
use crate::queue::{Claim, FailOutcome, QueueError};

/// How often the waker looks at `data_version`. A read of shared memory, no I/O.
const WAKER_INTERVAL: Duration = Duration::from_millis(20);

/// Wakes idle workers.
#[derive(Clone)]
pub struct Wake(Sender<()>);

impl Wake {
    /// Wakes one idle worker (a no-op when all are already awake or busy).
    pub fn notify(&self) {
        let _ = self.0.try_send(());
    }

    /// Wakes up to `n` idle workers.
    pub fn notify_many(&self, n: usize) {
        for _ in 0..n {
            self.notify();
        }
    }
}

/// Claims being worked on in this process, with each one's stop flag.
type Active = Arc<Mutex<HashMap<i64, (Claim, Arc<AtomicBool>)>>>;

/// A starter for the pool.
pub struct Pool;

/// The running pool.
pub struct PoolHandle {
    app: App,
    wake: Wake,
    stopping: Arc<AtomicBool>,
    /// Dropped to tell sleeping threads to stop sleeping.
    stop_tx: Option<Sender<()>>,
    active: Active,
    workers: Vec<JoinHandle<()>>,
    helpers: Vec<JoinHandle<()>>,
}

/// What every worker thread shares.
struct Shared {
    app: App,
    processors: Processors,
    stopping: Arc<AtomicBool>,
    active: Active,
    wake_rx: Receiver<()>,
    stop_rx: Receiver<()>,
}

impl Pool {
    /// Starts `n` workers running `processors` on `app`'s queue.
    pub fn start(app: &App, processors: Processors, n: usize) -> PoolHandle {
        let (wake_tx, wake_rx) = bounded(n.max(1) * 2);
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let stopping = Arc::new(AtomicBool::new(false));
        let active: Active = Arc::default();
        let identity = WorkerIdentity::current();
        let shared = Arc::new(Shared {
            app: app.clone(),
            processors,
            stopping: stopping.clone(),
            active: active.clone(),
            wake_rx,
            stop_rx: stop_rx.clone(),
        });
        let workers = (0..n)
            .map(|i| {
                let shared = shared.clone();
                let id = identity.worker(i);
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || worker_loop(&shared, &id))
                    .expect("spawn worker thread")
            })
            .collect();
        let wake = Wake(wake_tx);
        let helpers = vec![
            spawn_heartbeater(app.clone(), active.clone(), stop_rx.clone()),
            spawn_waker(app.clone(), wake.clone(), n, stop_rx),
        ];
        log::info!(
            "started {n} worker(s) as {}",
            identity.worker(0).trim_end_matches(":w0")
        );
        PoolHandle {
            app: app.clone(),
            wake,
            stopping,
            stop_tx: Some(stop_tx),
            active,
            workers,
            helpers,
        }
    }
}

impl PoolHandle {
    /// A handle that wakes this pool's idle workers.
    pub fn waker(&self) -> Wake {
        self.wake.clone()
    }

    /// The tasks running now.
    pub fn running(&self) -> Vec<Claim> {
        self.active
            .lock()
            .unwrap()
            .values()
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Stops claiming; running tasks go on.
    pub fn stop_claiming(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop_tx.take();
    }

    /// Stops the pool: no new claims; running tasks get `grace` to finish, then
    /// are asked to stop at their next checkpoint, and whatever still runs a
    /// little later is released back to the queue (its checkpoints stay).
    pub fn shutdown(mut self, grace: Duration) {
        self.stop_claiming();
        if !join_all(&mut self.workers, Instant::now() + grace) {
            log::info!(
                "asking {} running task(s) to stop at their next checkpoint",
                self.running().len()
            );
            for (_, stop) in self.active.lock().unwrap().values() {
                stop.store(true, Ordering::SeqCst);
            }
            join_all(&mut self.workers, Instant::now() + Duration::from_secs(3));
        }
        self.release_running();
        join_all(&mut self.helpers, Instant::now() + Duration::from_secs(1));
    }

    /// Releases every running task at once.
    pub fn release_running(&self) {
        self.releaser().release_running();
    }

    /// A handle that can release the running tasks from another thread, for an
    /// immediate exit on a second signal.
    pub fn releaser(&self) -> Releaser {
        Releaser {
            app: self.app.clone(),
            active: self.active.clone(),
        }
    }
}

/// Releases a pool's running tasks; see [`PoolHandle::releaser`].
pub struct Releaser {
    app: App,
    active: Active,
}

impl Releaser {
    /// Gives every running task back to the queue, without counting the attempt.
    pub fn release_running(&self) {
        let running: Vec<Claim> = self
            .active
            .lock()
            .unwrap()
            .values()
            .map(|(c, _)| c.clone())
            .collect();
        for claim in running {
            match self.app.queue.release(&claim) {
                Ok(()) => log::info!(
                    "released task {} (document {}) for the next run",
                    claim.task_id,
                    claim.document_id
                ),
                Err(e) => log::warn!("could not release task {}: {e}", claim.task_id),
            }
        }
    }
}

/// Joins the threads that finish before `deadline`; true when all did.
fn join_all(threads: &mut Vec<JoinHandle<()>>, deadline: Instant) -> bool {
    while Instant::now() < deadline && threads.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (done, running): (Vec<_>, Vec<_>) = threads.drain(..).partition(|t| t.is_finished());
    for t in done {
        let _ = t.join();
    }
    let all = running.is_empty();
    *threads = running;
    all
}

/// A worker: claim, run, finish; sleep when there is nothing to do.
fn worker_loop(s: &Shared, worker: &str) {
    while !s.stopping.load(Ordering::SeqCst) {
        match s.app.queue.claim(worker, 1) {
            Ok(claims) if !claims.is_empty() => {
                for claim in claims {
                    run_task(s, claim);
                }
            }
            Ok(_) => sleep_until_woken(s, s.app.config.queue.poll_interval.0),
            Err(e) => {
                log::error!("{worker}: cannot claim tasks: {e}; trying again shortly");
                sleep_until_woken(s, Duration::from_secs(1));
            }
        }
    }
}

/// Sleeps until woken, stopped, or `timeout`.
fn sleep_until_woken(s: &Shared, timeout: Duration) {
    select! {
        recv(s.wake_rx) -> _ => {}
        recv(s.stop_rx) -> _ => {}
        default(timeout) => {}
    }
}

/// Runs one claimed task to its end: completed, failed, or released.
fn run_task(s: &Shared, claim: Claim) {
    let stop = Arc::new(AtomicBool::new(false));
    s.active
        .lock()
        .unwrap()
        .insert(claim.task_id, (claim.clone(), stop.clone()));
    let name = s
        .app
        .store
        .document(claim.document_id)
        .ok()
        .flatten()
        .map(|d| d.name)
        .unwrap_or_default();
    log::info!(
        "task {} ({}) claimed: document {} {name:?}, attempt {}/{}",
        claim.task_id,
        claim.task_type,
        claim.document_id,
        claim.attempt,
        claim.max_attempts
    );
    let started = Instant::now();
    let ctx = TaskContext {
        app: &s.app,
        claim: &claim,
        stop: &stop,
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        s.processors.get(claim.task_type).run(&ctx)
    }))
    .unwrap_or_else(|panic| {
        Err(TaskError::transient(format!(
            "processor panicked: {}",
            panic_message(&panic)
        )))
    });
    s.active.lock().unwrap().remove(&claim.task_id);
    let took = started.elapsed().as_secs_f64();
    let queue = &s.app.queue;
    let finished: Result<(), QueueError> = match result {
        Ok(()) => queue.complete(&claim).map(|()| {
            log::info!(
                "task {} ({}) completed in {took:.2}s: document {} {name:?}",
                claim.task_id,
                claim.task_type,
                claim.document_id
            )
        }),
        Err(TaskError::Failed { kind, message }) => {
            queue
                .fail(&claim, kind, &message)
                .map(|outcome| match outcome {
                    FailOutcome::RetryAt(_) => log::warn!(
                        "task {} ({}) failed, will retry: document {} {name:?}: {message}",
                        claim.task_id,
                        claim.task_type,
                        claim.document_id
                    ),
                    FailOutcome::Failed => log::error!(
                        "task {} ({}) failed: document {} {name:?}: {message}",
                        claim.task_id,
                        claim.task_type,
                        claim.document_id
                    ),
                })
        }
        Err(TaskError::Interrupted) => queue.release(&claim).map(|()| {
            log::info!(
                "task {} ({}) stopped at a checkpoint and was released",
                claim.task_id,
                claim.task_type
            )
        }),
    };
    match finished {
        Ok(()) => {}
        Err(e @ QueueError::LostClaim { .. }) => log::warn!("{e}"),
        Err(e) => log::error!(
            "task {}: cannot record its result: {e}; it will be released as stale",
            claim.task_id
        ),
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Heartbeats every running task each `heartbeat_interval`; a lost claim sets
/// that task's stop flag so its processor gives up at the next checkpoint.
fn spawn_heartbeater(app: App, active: Active, stop_rx: Receiver<()>) -> JoinHandle<()> {
    let interval = app.config.queue.heartbeat();
    std::thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || {
            while stop_rx
                .recv_timeout(interval)
                .is_err_and(|e| e.is_timeout())
            {
                let running: Vec<_> = active.lock().unwrap().values().cloned().collect();
                for (claim, stop) in running {
                    match app.queue.heartbeat(&claim) {
                        Ok(()) => {}
                        Err(e @ QueueError::LostClaim { .. }) => {
                            log::warn!("{e}; stopping it");
                            stop.store(true, Ordering::SeqCst);
                        }
                        Err(e) => log::warn!("heartbeat of task {} failed: {e}", claim.task_id),
                    }
                }
            }
        })
        .expect("spawn heartbeat thread")
}

/// Wakes workers when another connection commits to the database.
fn spawn_waker(app: App, wake: Wake, n: usize, stop_rx: Receiver<()>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("waker".into())
        .spawn(move || {
            // A connection of its own: data_version is per connection and only
            // changes for commits made by other connections.
            let Ok(conn) = rusqlite::Connection::open(app.db.path()) else {
                log::warn!("waker: cannot open the database; relying on poll_interval");
                return;
            };
            let version = || {
                conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
                    .ok()
            };
            let mut last = version();
            while stop_rx
                .recv_timeout(WAKER_INTERVAL)
                .is_err_and(|e| e.is_timeout())
            {
                let now = version();
                if now != last {
                    last = now;
                    wake.notify_many(n);
                }
            }
        })
        .expect("spawn waker thread")
}
