//! The watcher thread: turns inotify events (or, in poll mode, periodic scans)
//! into ingests. Also scans the whole inbox at start and every
//! `rescan_interval`, and whenever notify reports that it lost events.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, select, unbounded};
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::filter::Filter;
use super::tracker::{Tracker, looks_complete};
use crate::app::App;
use crate::config::WatchMode;
use crate::ingest::{Ingested, ingest};
use crate::queue::Priority;
use crate::store::Placement;
use crate::worker::Wake;

/// The watcher's state.
struct Inbox {
    app: App,
    dir: PathBuf,
    filter: Filter,
    wake: Option<Wake>,
    tracker: Tracker,
    window: Duration,
    /// Files that failed to ingest, left alone until the next full rescan.
    failed: std::collections::HashSet<PathBuf>,
}

/// Starts watching the inbox (creating it if missing). Returns once the watch
/// is in place, so that a file dropped after this returns is seen.
pub fn spawn(app: App, wake: Option<Wake>, stop: Receiver<()>) -> anyhow::Result<JoinHandle<()>> {
    let dir = app.config.inbox_dir();
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the inbox {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve the inbox {}", dir.display()))?;
    let (tx, events) = unbounded();
    // In poll mode nothing sends events, but the sender must live as long as
    // the loop: a disconnected channel would end it after the first scan.
    let mut idle_sender = None;
    let watcher = match app.config.watch.mode {
        WatchMode::Notify => {
            let mut w = notify::recommended_watcher(move |e| {
                let _ = tx.send(e);
            })
            .context("cannot start the inbox watcher")?;
            w.watch(&dir, RecursiveMode::Recursive).with_context(|| {
                format!(
                    "cannot watch the inbox {}; if the limit of inotify watches is reached, raise \
                     fs.inotify.max_user_watches, or set watch.mode = \"poll\"",
                    dir.display()
                )
            })?;
            Some(w)
        }
        WatchMode::Poll => {
            idle_sender = Some(tx);
            None
        }
    };
    let mut inbox = Inbox {
        filter: Filter::new(&app.config.watch.ignore),
        window: app.config.watch.stability_window.0,
        app,
        dir,
        wake,
        tracker: Tracker::default(),
        failed: Default::default(),
    };
    log::info!(
        "watching the inbox {} ({:?} mode)",
        inbox.dir.display(),
        inbox.app.config.watch.mode
    );
    let handle = std::thread::Builder::new()
        .name("inbox".into())
        .spawn(move || {
            let _keep_alive = (watcher, idle_sender);
            inbox.run(&events, &stop);
        })
        .context("cannot start the inbox thread")?;
    Ok(handle)
}

impl Inbox {
    /// The event loop.
    fn run(&mut self, events: &Receiver<notify::Result<Event>>, stop: &Receiver<()>) {
        let cfg = self.app.config.watch.clone();
        let rescan_every = match cfg.mode {
            WatchMode::Notify => cfg.rescan_interval.0,
            WatchMode::Poll => cfg.poll_interval.0,
        };
        self.scan(&self.dir.clone(), false);
        let mut next_rescan = Instant::now() + rescan_every;
        loop {
            let tick = if self.tracker.is_empty() {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(100)
            };
            select! {
                recv(events) -> ev => match ev {
                    Ok(ev) => self.on_event(ev),
                    Err(_) => return,
                },
                recv(stop) -> _ => return,
                default(tick) => {}
            }
            for path in self.tracker.take_ready(self.window, Instant::now()) {
                self.take(&path);
            }
            if Instant::now() >= next_rescan {
                self.failed.clear();
                self.scan(&self.dir.clone(), false);
                next_rescan = Instant::now() + rescan_every;
            }
        }
    }

    /// Handles one notify event.
    fn on_event(&mut self, ev: notify::Result<Event>) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                log::warn!("inbox watcher: {e}; rescanning");
                return self.scan(&self.dir.clone(), false);
            }
        };
        if ev.need_rescan() {
            log::warn!("inbox watcher lost events; rescanning the inbox");
            return self.scan(&self.dir.clone(), false);
        }
        let target = ev.paths.last().cloned();
        let Some(path) = target else { return };
        match ev.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => self.offer(&path, true),
            EventKind::Create(CreateKind::Folder) => self.scan(&path, false),
            EventKind::Create(_) => {
                if path.is_dir() {
                    self.scan(&path, false)
                } else {
                    self.offer(&path, false)
                }
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => self.tracker.forget(&path),
            EventKind::Modify(ModifyKind::Name(_)) => {
                if let [from, _] = ev.paths.as_slice() {
                    self.tracker.forget(from);
                }
                if path.is_dir() {
                    self.scan(&path, true)
                } else {
                    self.offer(&path, true)
                }
            }
            EventKind::Modify(_) => self.tracker.touched(&path, Instant::now()),
            EventKind::Remove(_) => self.tracker.forget(&path),
            _ => {}
        }
    }

    /// Considers one path. `finished` means the writer closed it or it was
    /// renamed in whole: take it now if it passes the completeness check.
    fn offer(&mut self, path: &Path, finished: bool) {
        let Ok(rel) = path.strip_prefix(&self.dir) else {
            return;
        };
        if self.filter.ignores(rel) || self.failed.contains(path) {
            return;
        }
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if meta.file_type().is_symlink() {
            log::info!("{}: a symlink; not followed, left in place", path.display());
            return;
        }
        if !meta.is_file() {
            if !meta.is_dir() {
                log::info!("{}: not a regular file; skipped", path.display());
            }
            return;
        }
        if finished && looks_complete(path) {
            self.tracker.forget(path);
            self.take(path);
        } else {
            self.tracker.watch(path, self.window, Instant::now());
        }
    }

    /// Walks `dir` and offers every file in it. `moved_in` says the folder was
    /// renamed into the inbox whole, so its files are finished; otherwise they
    /// wait for a close event or the stability window.
    fn scan(&mut self, dir: &Path, moved_in: bool) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                let ignored = path
                    .strip_prefix(&self.dir)
                    .map_or(true, |rel| self.filter.ignores(rel));
                if is_dir && !ignored {
                    stack.push(path);
                } else if !is_dir && !self.tracker.contains(&path) {
                    self.offer(&path, moved_in);
                }
            }
        }
        for path in self.tracker.take_ready(self.window, Instant::now()) {
            self.take(&path);
        }
    }

    /// Ingests one file and wakes a worker for it.
    fn take(&mut self, path: &Path) {
        let rel = path
            .strip_prefix(&self.dir)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        match ingest(
            &self.app.store,
            &self.app.queue,
            path,
            &rel,
            Placement::Move,
            Priority::High,
        ) {
            Ok(Ingested::New {
                document_id, kind, ..
            }) => {
                log::info!("ingested {rel:?} as document {document_id} ({kind})");
                if let Some(w) = &self.wake {
                    w.notify();
                }
            }
            Ok(Ingested::Duplicate {
                document_id,
                kept_at,
            }) => log::info!(
                "{rel:?} has the same content as document {document_id}; not processed again, kept as {}",
                kept_at.map(|p| p.display().to_string()).unwrap_or_default()
            ),
            Err(e) if e.is_gone() => log::debug!("{rel:?} went away before it could be taken"),
            Err(e) => {
                log::error!(
                    "cannot ingest {e}; the file stays in the inbox and is tried again at the next rescan"
                );
                self.failed.insert(path.to_path_buf());
            }
        }
    }
}
