//! The scheduler thread: every `check_interval`, release stale claims (and at
//! once those of dead processes on this host), enqueue orphaned documents,
//! purge old finished tasks, and log a one-line summary. Beside it, where
//! the engine needs one, the vacuum thread: every second, a vacuum of the
//! queue once it has churned (PostgreSQL, `Maintenance::vacuum`).

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::app::App;
use crate::queue::Queue;
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

/// How often the vacuum thread asks whether the queue needs a vacuum: a
/// fast drain leaves [`VACUUM_AFTER_DEAD_ROWS`] dead rows in about a second
/// on a small machine.
///
/// [`VACUUM_AFTER_DEAD_ROWS`]: crate::queue::postgres::maintenance::VACUUM_AFTER_DEAD_ROWS
pub const VACUUM_EVERY: Duration = Duration::from_secs(1);

/// Starts the vacuum thread when `queue`'s engine needs one and this user
/// may vacuum (else says why not, once, and starts none); it stops when
/// `stop` is closed or disconnected. A failure is logged once until a
/// vacuum works again (a server restart would otherwise log every second).
pub fn spawn_vacuum(queue: Queue, stop: Receiver<()>) -> Option<JoinHandle<()>> {
    match queue.maintenance().may_vacuum() {
        Ok(None) => return None,
        Ok(Some(true)) => {}
        Ok(Some(false)) => {
            log::warn!(
                "the database user does not own the task table, so quire cannot vacuum it \
                 while the queue runs: large batches of fast tasks will slow down until \
                 autovacuum comes; run quire as the user that created the schema"
            );
            return None;
        }
        Err(e) => {
            log::warn!("cannot tell whether quire may vacuum the task table ({e}); not vacuuming");
            return None;
        }
    }
    let thread = std::thread::Builder::new()
        .name("vacuum".into())
        .spawn(move || {
            let mut failing = false;
            while stop
                .recv_timeout(VACUUM_EVERY)
                .is_err_and(|e| e.is_timeout())
            {
                match queue.maintenance().vacuum() {
                    Ok(vacuumed) => {
                        if failing {
                            log::info!("vacuuming the task table works again");
                        }
                        failing = false;
                        if let Some(dead) = vacuumed {
                            log::debug!("vacuumed the task table: {dead} dead rows");
                        }
                    }
                    Err(e) if !failing => {
                        failing = true;
                        log::warn!(
                            "vacuuming the task table failed: {e}; trying again every \
                             {VACUUM_EVERY:?}, saying so when it works"
                        );
                    }
                    Err(_) => {}
                }
            }
        })
        .expect("spawn vacuum thread");
    Some(thread)
}
