//! The pool's life: starting `n` worker threads ([`super::runner`]) and the
//! heartbeater and waker ([`super::helpers`]), stopping them, and releasing
//! what runs when the daemon must stop now.
//!
//! A worker with no task to claim helps a running task that shares its work
//! ([`super::sharing`]: the pages of a long document). Idle workers sleep on
//! a crossbeam channel. They wake at once when this
//! process enqueues work ([`Wake::notify`]), when another process commits to
//! the database (the waker's [`crate::db::ChangeWatcher`] says so), and in any
//! case every `poll_interval`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use super::helpers::{spawn_heartbeater, spawn_waker};
use super::identity::WorkerIdentity;
use super::processor::Processors;
use super::runner::worker_loop;
use super::sharing::Offers;
use crate::app::App;
use crate::queue::Claim;

/// Wakes idle workers.
#[derive(Clone)]
pub struct Wake(pub(super) Sender<()>);

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
pub(super) type Active = Arc<Mutex<HashMap<i64, (Claim, Arc<AtomicBool>)>>>;

/// The running pool.
pub struct Pool {
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
pub(super) struct Shared {
    pub(super) app: App,
    pub(super) processors: Processors,
    pub(super) stopping: Arc<AtomicBool>,
    pub(super) active: Active,
    /// Parts of running tasks that idle workers may do.
    pub(super) offers: Offers,
    pub(super) wake_rx: Receiver<()>,
    pub(super) stop_rx: Receiver<()>,
}

impl Pool {
    /// Starts `n` workers running `processors` on `app`'s queue.
    pub fn start(app: &App, processors: Processors, n: usize) -> Pool {
        let (wake_tx, wake_rx) = bounded(n.max(1) * 2);
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let stopping = Arc::new(AtomicBool::new(false));
        let active: Active = Arc::default();
        let identity = WorkerIdentity::current();
        let wake = Wake(wake_tx);
        let shared = Arc::new(Shared {
            app: app.clone(),
            processors,
            stopping: stopping.clone(),
            active: active.clone(),
            offers: Offers::new(wake.clone(), n),
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
        let helpers = vec![
            spawn_heartbeater(app.clone(), active.clone(), stop_rx.clone()),
            spawn_waker(app.clone(), wake.clone(), n, active.clone(), stop_rx),
        ];
        log::info!(
            "started {n} worker(s) as {}",
            identity.worker(0).trim_end_matches(":w0")
        );
        Pool {
            app: app.clone(),
            wake,
            stopping,
            stop_tx: Some(stop_tx),
            active,
            workers,
            helpers,
        }
    }

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

/// Releases a pool's running tasks; see [`Pool::releaser`].
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
