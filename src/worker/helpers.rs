//! The pool's helper threads: the heartbeater, which keeps this process's
//! claims alive, and the waker, which wakes idle workers when another process
//! commits to the database, and stops running tasks that were cancelled.

use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::pool::{Active, Wake};
use crate::app::App;
use crate::queue::{QueueError, TaskStatus};

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

/// Sets the stop flag of every running task this process no longer holds
/// (cancelled, or released and taken elsewhere), saying why.
fn stop_lost_claims(app: &App, active: &Active) {
    let running: Vec<_> = active.lock().unwrap().values().cloned().collect();
    for (claim, stop) in running {
        if stop.load(Ordering::SeqCst) {
            continue;
        }
        let why = match app.queue.task(claim.task_id) {
            Ok(t)
                if t.status == TaskStatus::Claimed
                    && t.claimed_by.as_deref() == Some(claim.worker.as_str()) =>
            {
                None
            }
            Ok(t) if t.status == TaskStatus::Cancelled => Some("was cancelled".to_string()),
            // Finished by this very worker since the copy of `active` above.
            Ok(t) if t.status == TaskStatus::Completed || t.status == TaskStatus::Failed => None,
            Ok(t) if t.status == TaskStatus::Pending => {
                Some("was released (its claim went stale)".to_string())
            }
            Ok(_) => Some("was taken by another worker".to_string()),
            Err(QueueError::TaskNotFound(_)) => Some("was removed (quire rm)".to_string()),
            Err(_) => None, // the heartbeat will tell
        };
        if let Some(why) = why {
            log::info!(
                "task {} ({}) of document {} {why}; stopping it",
                claim.task_id,
                claim.task_type,
                claim.document_id
            );
            stop.store(true, Ordering::SeqCst);
        }
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
