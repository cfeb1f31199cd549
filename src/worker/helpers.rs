//! The pool's helper threads: the heartbeater, which keeps this process's
//! claims alive, and the waker, which wakes idle workers when another process
//! commits to the database, and stops running tasks that were cancelled.

use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::pool::{Active, Wake};
use crate::app::App;
use crate::queue::{Claim, QueueError, TaskStatus};

/// How often the waker asks whether another process committed (on SQLite a
/// read of shared memory, no I/O).
const WAKER_INTERVAL: Duration = Duration::from_millis(20);

/// Heartbeats every running task each `heartbeat_interval`; a lost claim sets
/// that task's stop flag so its processor gives up at the next checkpoint.
pub(super) fn spawn_heartbeater(app: App, active: Active, stop_rx: Receiver<()>) -> JoinHandle<()> {
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
                        // Said by the worker when the task has stopped.
                        Err(e @ QueueError::LostClaim { .. }) => {
                            log::debug!("heartbeat: {e}");
                            stop.store(true, Ordering::SeqCst);
                        }
                        Err(e) => log::warn!("heartbeat of task {} failed: {e}", claim.task_id),
                    }
                }
            }
        })
        .expect("spawn heartbeat thread")
}

/// Sets the stop flag of every running task this process no longer holds
/// (cancelled, or released and taken elsewhere). The worker says why once
/// the task has stopped ([`lost_claim_reason`]): whichever of the waker, the
/// heartbeat or the task's own fenced write notices first, one line.
fn stop_lost_claims(app: &App, active: &Active) {
    let running: Vec<_> = active.lock().unwrap().values().cloned().collect();
    for (claim, stop) in running {
        if !stop.load(Ordering::SeqCst) && lost_claim_reason(app, &claim).is_some() {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

/// Why a worker no longer holds a claim it was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LostBy {
    Cancelled,
    Released,
    Taken,
    Removed,
}

impl std::fmt::Display for LostBy {
    /// Words that follow "task N (type) of document D".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LostBy::Cancelled => "was cancelled",
            LostBy::Released => "was released (its claim went stale)",
            LostBy::Taken => "was taken by another worker",
            LostBy::Removed => "was removed (quire rm)",
        })
    }
}

/// Why this worker no longer holds `claim`; `None` while it does (or has
/// just finished it), or when the queue cannot be read (the heartbeat will
/// tell).
pub(super) fn lost_claim_reason(app: &App, claim: &Claim) -> Option<LostBy> {
    match app.queue.task(claim.task_id) {
        // Still held, or finished by this very worker since it was looked
        // up (the finished keep their last worker).
        Ok(t)
            if matches!(
                t.status,
                TaskStatus::Claimed | TaskStatus::Completed | TaskStatus::Failed
            ) && t.claimed_by.as_deref() == Some(claim.worker.as_str()) =>
        {
            None
        }
        Ok(t) if t.status == TaskStatus::Cancelled => Some(LostBy::Cancelled),
        Ok(t) if t.status == TaskStatus::Pending => Some(LostBy::Released),
        Ok(_) => Some(LostBy::Taken),
        Err(QueueError::TaskNotFound(_)) => Some(LostBy::Removed),
        Err(_) => None,
    }
}

/// Wakes workers when another process commits to the database; on each
/// such commit also checks this process's running tasks (one indexed read
/// each), so that a `quire cancel` stops its task within a fraction of a
/// second instead of at the next heartbeat.
pub(super) fn spawn_waker(
    app: App,
    wake: Wake,
    n: usize,
    active: Active,
    stop_rx: Receiver<()>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("waker".into())
        .spawn(move || {
            let mut watcher = match app.db.change_watcher() {
                Ok(w) => w,
                Err(e) => {
                    log::warn!("waker: {e}; relying on poll_interval");
                    return;
                }
            };
            while stop_rx
                .recv_timeout(WAKER_INTERVAL)
                .is_err_and(|e| e.is_timeout())
            {
                if watcher.changed() {
                    wake.notify_many(n);
                    stop_lost_claims(&app, &active);
                }
            }
        })
        .expect("spawn waker thread")
}
