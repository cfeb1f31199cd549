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

/// How often, at most, waiting files are looked at and the inbox folder
/// checked (and how often while files wait, when no event comes).
const CHORES_EVERY: Duration = Duration::from_millis(100);

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
    /// The inotify watch (none in poll mode), renewed when the inbox folder
    /// is removed and made again.
    watcher: Option<notify::RecommendedWatcher>,
    /// True while the inbox folder is missing (said once).
    missing: bool,
    /// Subfolders a file was taken from, and when: removed once empty and
    /// unchanged for the stability window (what a folder drop leaves).
    emptied: std::collections::HashMap<PathBuf, Instant>,
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
        watcher,
        missing: false,
        emptied: Default::default(),
    };
    log::info!(
        "watching the inbox {} ({:?} mode)",
        inbox.dir.display(),
        inbox.app.config.watch.mode
    );
    let handle = std::thread::Builder::new()
        .name("inbox".into())
        .spawn(move || {
            let _keep_alive = idle_sender;
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
        let mut next_chores = Instant::now();
        loop {
            let tick = if self.tracker.is_empty() {
                Duration::from_secs(1)
            } else {
                CHORES_EVERY
            };
            select! {
                recv(events) -> ev => match ev {
                    Ok(ev) => self.on_event(ev),
                    Err(_) => return,
                },
                recv(stop) -> _ => return,
                default(tick) => {}
            }
            // At most once a tick, not after every event: in a storm of
            // thousands of events, re-reading every waiting file after each
            // one would cost events x waiting files.
            if Instant::now() >= next_chores {
                for path in self.tracker.take_ready(self.window, Instant::now()) {
                    self.take(&path);
                }
                self.check_present();
                self.remove_emptied();
                next_chores = Instant::now() + CHORES_EVERY;
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

    /// Notices the inbox folder removed (a warning, once) and made again: the
    /// watch on it is renewed and it is scanned at once, instead of waiting
    /// for the next rescan.
    fn check_present(&mut self) {
        let present = self.dir.is_dir();
        if !present && !self.missing {
            self.missing = true;
            log::warn!(
                "the inbox {} is gone: nothing is picked up until it is made again \
                 (mkdir -p {0}); quire watches it again as soon as it is",
                self.dir.display()
            );
        } else if present && self.missing {
            self.missing = false;
            if let Some(w) = &mut self.watcher {
                let _ = w.unwatch(&self.dir);
                if let Err(e) = w.watch(&self.dir, RecursiveMode::Recursive) {
                    log::error!(
                        "cannot watch the inbox {} again: {e}; it is scanned every \
                         watch.rescan_interval until quire serve restarts",
                        self.dir.display()
                    );
                }
            }
            log::info!(
                "the inbox {} is back; watching it again",
                self.dir.display()
            );
            self.scan(&self.dir.clone(), false);
        }
    }

    /// Removes the subfolders files were taken from once they are empty and
    /// have not changed for the stability window (a folder still being
    /// copied in has files, or changed just now); a parent left empty is
    /// looked at in turn. Never the inbox itself.
    fn remove_emptied(&mut self) {
        let now = Instant::now();
        let due: Vec<PathBuf> = self
            .emptied
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= self.window)
            .map(|(d, _)| d.clone())
            .collect();
        for dir in due {
            let empty = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none());
            if !empty {
                // Files in it will be taken (and note it again), or it is
                // not ours to remove.
                self.emptied.remove(&dir);
                continue;
            }
            let quiet = std::fs::metadata(&dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|e| e >= self.window));
            if !quiet {
                continue; // looked at again next time
            }
            self.emptied.remove(&dir);
            if std::fs::remove_dir(&dir).is_ok() {
                log::debug!("removed the emptied folder {}", dir.display());
                if let Some(parent) = dir.parent().filter(|p| *p != self.dir) {
                    self.emptied.insert(parent.to_path_buf(), now);
                }
            }
        }
    }

    /// Remembers the subfolder `file` was taken from, for
    /// [`Inbox::remove_emptied`] (with `watch.remove_emptied_folders`).
    fn note_emptied(&mut self, file: &Path) {
        if !self.app.config.watch.remove_emptied_folders {
            return;
        }
        if let Some(dir) = file.parent().filter(|d| *d != self.dir) {
            self.emptied.insert(dir.to_path_buf(), Instant::now());
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
            // Logged by ingest itself, as soon as it is committed.
            Ok(Ingested::New { .. }) => {
                if let Some(w) = &self.wake {
                    w.notify();
                }
                self.note_emptied(path);
            }
            Ok(Ingested::Duplicate {
                document_id,
                kept_at,
            }) => {
                log::info!(
                    "{rel:?} has the same content as document {document_id}; not processed again, kept as {}",
                    kept_at.map(|p| p.display().to_string()).unwrap_or_default()
                );
                self.note_emptied(path);
            }
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
