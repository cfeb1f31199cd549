//! The scheduler thread: every `check_interval`, release stale claims (and at
//! once those of dead processes on this host), enqueue orphaned documents,
//! purge old finished tasks, and log a one-line summary.

use std::thread::JoinHandle;

use crossbeam_channel::Receiver;

use crate::app::App;
use crate::worker::{Wake, is_dead_local_worker};

/// Runs one round of maintenance; returns how many tasks became runnable.
pub fn run_once(app: &App) -> anyhow::Result<usize> {
    let m = app.queue.maintenance();
    let dead = m.release_dead(is_dead_local_worker)?;
    let stale = m.release_stale(app.config.queue.stale_timeout.0)?;
    let orphans = m.enqueue_orphans()?;
    for (doc, ty) in &orphans {
        log::info!("document {doc} had no {ty} task; enqueued one");
    }
    let purged = m.purge(app.config.scheduler.retention.0)?;
    let s = app.queue.stats()?;
    log::info!(
        "{}; released {} stale and {} dead claim(s), {} orphan(s), purged {purged}",
        s.summary(),
        stale.len(),
        dead.len(),
        orphans.len()
    );
    Ok(dead.iter().chain(&stale).filter(|r| !r.failed).count() + orphans.len())
}

/// Starts the scheduler; it stops when `stop` is closed or disconnected.
pub fn spawn(app: App, wake: Option<Wake>, stop: Receiver<()>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || {
            let interval = app.config.scheduler.check_interval.0;
            while stop.recv_timeout(interval).is_err_and(|e| e.is_timeout()) {
                match run_once(&app) {
                    Ok(n) if n > 0 => {
                        if let Some(w) = &wake {
                            w.notify_many(n);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        log::error!("maintenance failed: {e:#}; will try again in {interval:?}")
                    }
                }
            }
        })
        .expect("spawn scheduler thread")
}
