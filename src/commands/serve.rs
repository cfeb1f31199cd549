//! `quire serve`: the daemon. Watches the inbox, runs the worker pool and the
//! scheduler, and shuts down cleanly on SIGINT/SIGTERM.

use std::process::ExitCode;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender, bounded};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::app::App;
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::db::LeaderLock;
use crate::worker::{Pool, Processors, Wake};
use crate::{inbox, live, scheduler, systemd};

/// Runs `quire serve` with the real OCR and indexing processors.
pub fn run(config: &Config, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = config.clone();
    if let Some(n) = args.workers {
        config.queue.workers = n;
    }
    if let Some(addr) = &args.http {
        config.http.listen = addr.clone();
        config.validate()?;
    }
    let workers = if config.queue.enabled {
        config.worker_count()
    } else {
        0
    };
    if workers > 0 {
        check_languages(&config)?;
    }
    // The workers', the watcher's, scheduler's and vacuum's, and the web page's.
    let app = App::open(&config, workers as u32 + 5 + crate::http::DB_THREADS as u32)?;
    crate::tasks::index::prepare(&app, true)?;
    serve(&app, crate::tasks::processors(&app), !args.no_watch)
}

/// Refuses to start workers that would fail every page: asks an OCR child
/// (tesseract never runs in the daemon) which configured languages are
/// missing.
fn check_languages(config: &Config) -> anyhow::Result<()> {
    let mut child = crate::tasks::ocr::child::Child::spawn(&config.ocr)
        .map_err(|e| anyhow::anyhow!("cannot check the OCR languages: {e}"))?;
    let missing = child
        .missing_languages(config.ocr.page_timeout.0)
        .map_err(|f| {
            anyhow::anyhow!("cannot check the OCR languages: {}", f.message("the check"))
        })?;
    if !missing.is_empty() {
        anyhow::bail!(
            "tesseract cannot load the OCR language(s) {} (ocr.languages = {}); every page \
             would fail: {}",
            missing.join(", "),
            config.ocr.languages.join("+"),
            super::doctor::language_fix(&missing)
        );
    }
    Ok(())
}

/// Runs the daemon on `app` until SIGINT or SIGTERM. `watch` asks to own the
/// inbox watcher; if another process holds it, this one runs workers only.
pub fn serve(app: &App, processors: Processors, watch: bool) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    scheduler::run_once(app).context("startup maintenance")?;

    let workers = if app.config.queue.enabled {
        app.config.worker_count()
    } else {
        0
    };
    let bound = crate::http::bind(app)?;
    // Before the pool: what workers count from their first task is kept.
    let metrics = bound.as_ref().and_then(|_| crate::metrics::install());
    crate::metrics::set_workers(workers);
    let mut pool = (workers > 0).then(|| Pool::start(app, processors, workers));
    if pool.is_none() {
        log::info!("queue.enabled is false: ingesting only, running no workers");
    }
    let wake = pool.as_ref().map(|p| p.waker());
    let (stop_tx, stop_rx) = bounded::<()>(0);
    let web = match bound {
        Some(b) => Some(crate::http::spawn(
            app,
            b,
            metrics,
            wake.clone(),
            stop_rx.clone(),
        )?),
        None => None,
    };

    let watcher: Option<JoinHandle<()>> = if watch {
        // A watch that cannot start at all (no inbox folder) stops serve here.
        let first = match inbox_lock(app)? {
            Some(lock) => Some(Watching::start(app, lock, wake.clone())?),
            None => None,
        };
        Some(inbox_role(
            app.clone(),
            wake.clone(),
            stop_rx.clone(),
            first,
        ))
    } else {
        None
    };
    let scheduler = scheduler::spawn(app.clone(), wake, stop_rx.clone());
    let vacuum = scheduler::spawn_vacuum(app.queue.clone(), stop_rx.clone());
    let view = live::spawn_view(app.clone(), stop_rx);
    systemd::ready(app);

    let first = signals.forever().next();
    log::info!(
        "received signal {}; stopping (send SIGINT again to stop at once)",
        first.unwrap_or(0)
    );
    systemd::stopping();
    drop(stop_tx);
    if let Some(p) = pool.as_mut() {
        p.stop_claiming();
        let releaser = p.releaser();
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                log::warn!("second signal: releasing running tasks and exiting now");
                releaser.release_running();
                std::process::exit(0);
            }
        });
    }
    if let Some(p) = pool {
        p.shutdown(app.config.queue.shutdown_timeout.0);
    }
    for t in [watcher, Some(scheduler), vacuum, view]
        .into_iter()
        .flatten()
    {
        let _ = t.join();
    }
    if let Some(web) = web {
        web.join();
    }
    log::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// How often a daemon whose inbox another one watches tries to take it over.
const TAKEOVER_EVERY: Duration = Duration::from_secs(2);

/// The inbox watched under its leader lock; [`Watching::stop`] ends both.
struct Watching {
    lock: LeaderLock,
    /// Dropped to stop this watcher alone (the daemon's stop channel stops
    /// every thread).
    own_stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Watching {
    /// Starts watching the inbox while holding `lock`.
    fn start(app: &App, lock: LeaderLock, wake: Option<Wake>) -> anyhow::Result<Watching> {
        let (own_stop, stop) = bounded::<()>(0);
        let thread = inbox::spawn(app.clone(), wake, stop)?;
        Ok(Watching {
            lock,
            own_stop,
            thread,
        })
    }

    /// Stops the watcher, then lets the lock go.
    fn stop(self) {
        drop(self.own_stop);
        let _ = self.thread.join();
        drop(self.lock);
    }
}

/// The inbox's role, checked every [`TAKEOVER_EVERY`] until `stop` closes:
/// - watching: while the lock is still held. A PostgreSQL session can end
///   under a live daemon (a server restart, a cut link), and with it the
///   advisory lock, which another daemon may then take: this one stops
///   watching and stands by.
/// - standing by: tries the lock, and once the daemon that held it is gone
///   (its process died, or its session did), watches the inbox in its place.
fn inbox_role(
    app: App,
    wake: Option<Wake>,
    stop: Receiver<()>,
    mut watching: Option<Watching>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        loop {
            if !stop
                .recv_timeout(TAKEOVER_EVERY)
                .is_err_and(|e| e.is_timeout())
            {
                if let Some(w) = watching.take() {
                    w.stop();
                }
                return;
            }
            watching = match watching.take() {
                Some(mut w) => {
                    if w.lock.still_held() {
                        Some(w)
                    } else {
                        log::warn!(
                            "this daemon lost the inbox's leader lock (its database session ended); \
                             it stops watching the inbox and stands by"
                        );
                        w.stop();
                        None
                    }
                }
                None => match app.db.try_leader_lock("inbox") {
                    Ok(Some(lock)) => match Watching::start(&app, lock, wake.clone()) {
                        Ok(w) => {
                            log::info!(
                                "the daemon that watched the inbox is gone; this one watches it now"
                            );
                            Some(w)
                        }
                        Err(e) => {
                            log::error!("cannot watch the inbox: {e:#}; trying again");
                            None
                        }
                    },
                    Ok(None) => None,
                    Err(e) => {
                        log::warn!("cannot tell who watches the inbox: {e}; trying again");
                        None
                    }
                },
            };
        }
    })
}

/// Takes the inbox's leader lock, so that only one process watches the inbox.
/// `None` when another process holds it.
fn inbox_lock(app: &App) -> anyhow::Result<Option<LeaderLock>> {
    let lock = app.db.try_leader_lock("inbox")?;
    if lock.is_none() {
        log::info!(
            "another quire serve is watching the inbox; this one runs workers only, and takes \
             over if that one stops"
        );
    }
    Ok(lock)
}
