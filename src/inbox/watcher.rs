//! The watcher thread: turns inotify events (or, in poll mode, periodic scans)
//! into ingests. Also scans the whole inbox at start and every
//! `rescan_interval`, and whenever events were lost (see [`super::backlog`]).

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, select};
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::backlog::{self, Backlog, Forward};
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
    /// is removed and made again, and after the kernel's queue overflowed.
    watcher: Option<notify::RecommendedWatcher>,
    /// Notify's events, bounded.
    backlog: Backlog,
    /// In poll mode nothing sends events, but a sender must live as long as
    /// the loop: a disconnected channel would end it after the first scan.
    _idle_sender: Option<Forward>,
    /// True while the inbox folder is missing (said once).
    missing: bool,
    /// True once an event said the inbox folder itself was removed or moved
    /// away: its watch went with it, even if a folder of the same name is
    /// there again at the next look.
    watch_gone: bool,
    /// Subfolders a file was taken from, and when: removed once empty and
    /// unchanged for the stability window (what a folder drop leaves).
    emptied: std::collections::HashMap<PathBuf, Instant>,
}

/// Starts watching the inbox (creating it if missing). Returns once the watch
/// is in place, so that a file dropped after this returns is seen.
pub fn spawn(app: App, wake: Option<Wake>, stop: Receiver<()>) -> anyhow::Result<JoinHandle<()>> {
    let mut inbox = Inbox::open(app, wake, backlog::CAPACITY)?;
    let handle = std::thread::Builder::new()
        .name("inbox".into())
        .spawn(move || inbox.run(&stop))
        .context("cannot start the inbox thread")?;
    Ok(handle)
}

impl Inbox {
    /// Creates the inbox if missing and watches it, with at most `backlog`
    /// events waiting for [`Inbox::run`].
    fn open(app: App, wake: Option<Wake>, backlog: usize) -> anyhow::Result<Inbox> {
        let dir = app.config.inbox_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the inbox {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve the inbox {}", dir.display()))?;
        let (forward, backlog) = backlog::backlog(backlog);
        let mut idle_sender = None;
        let watcher = match app.config.watch.mode {
            WatchMode::Notify => {
                let mut w = notify::recommended_watcher(forward)
                    .context("cannot start the inbox watcher")?;
                w.watch(&dir, RecursiveMode::Recursive).with_context(|| {
                    format!(
                        "cannot watch the inbox {}; if the limit of inotify watches is reached, \
                         raise fs.inotify.max_user_watches, or set watch.mode = \"poll\"",
                        dir.display()
                    )
                })?;
                Some(w)
            }
            WatchMode::Poll => {
                idle_sender = Some(forward);
                None
            }
        };
        log::info!(
            "watching the inbox {} ({:?} mode)",
            dir.display(),
            app.config.watch.mode
        );
        Ok(Inbox {
            watch_gone: false,
            filter: Filter::new(&app.config.watch.ignore),
            window: app.config.watch.stability_window.0,
            app,
            dir,
            wake,
            tracker: Tracker::default(),
            failed: Default::default(),
            watcher,
            backlog,
            _idle_sender: idle_sender,
            missing: false,
            emptied: Default::default(),
        })
    }

    /// Scans the inbox, then follows it until `stop`.
    fn run(&mut self, stop: &Receiver<()>) {
        self.scan(&self.dir.clone(), false);
        self.follow(stop);
    }

    /// The event loop, with the periodic rescans.
    fn follow(&mut self, stop: &Receiver<()>) {
        let events = self.backlog.events().clone();
        let cfg = self.app.config.watch.clone();
        let rescan_every = match cfg.mode {
            WatchMode::Notify => cfg.rescan_interval.0,
            WatchMode::Poll => cfg.poll_interval.0,
        };
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
            self.catch_up();
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
                log::warn!("inbox watcher: {e}");
                return self.backlog.mark_lost();
            }
        };
        if ev.need_rescan() {
            // Also noted by the backlog itself, had there been no room for it.
            self.backlog.mark_overflowed();
            return self.backlog.mark_lost();
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
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
                if path == self.dir =>
            {
                self.watch_gone = true
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

    /// Rescans the inbox when events were lost, once those kept are handled
    /// (first watching it anew if the kernel lost them).
    fn catch_up(&mut self) {
        if self.backlog.caught_up_after_loss() {
            log::warn!("inbox watcher lost events; rescanning the inbox");
            if self.backlog.take_overflowed() {
                self.renew_watch(false);
            }
            self.scan(&self.dir.clone(), false);
        }
    }

    /// Considers one path. `finished` means the writer closed it or it was
    /// renamed in whole: take it now if it passes the completeness check.
    /// So is a file last modified a stability window ago or more, as the
    /// tracker would count it: a scan of a full inbox then takes files as it
    /// finds them, rather than holding every path in the tracker first.
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
        let settled = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= self.window);
        if (finished || settled) && looks_complete(path) {
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
    }

    /// Notices the inbox folder removed (a warning, once) and made again: the
    /// watch on it is renewed and it is scanned at once, instead of waiting
    /// for the next rescan. A folder made again between two looks (the
    /// same name, often the same inode) is told
    /// by the event of the old one's removal.
    fn check_present(&mut self) {
        let present = self.dir.is_dir();
        if present && std::mem::take(&mut self.watch_gone) {
            self.missing = true;
        }
        if !present && !self.missing {
            self.missing = true;
            log::warn!(
                "the inbox {} is gone: nothing is picked up until it is made again \
                 (mkdir -p {0}); quire watches it again as soon as it is",
                self.dir.display()
            );
        } else if present && self.missing {
            self.missing = false;
            self.renew_watch(true);
            log::info!(
                "the inbox {} is back; watching it again",
                self.dir.display()
            );
            self.scan(&self.dir.clone(), false);
        }
    }

    /// Watches the inbox and every folder in it anew: once it is made again
    /// (`remade`: the old watch is dropped first), or after the kernel's
    /// queue overflowed (added to the watches there are, so that nothing is
    /// unwatched meanwhile). Notify watches a new subfolder when an event
    /// says it appeared; if that event was lost, so is every later event in
    /// the folder, until it is watched.
    fn renew_watch(&mut self, remade: bool) {
        if let Some(w) = &mut self.watcher {
            if remade {
                let _ = w.unwatch(&self.dir);
            }
            if let Err(e) = w.watch(&self.dir, RecursiveMode::Recursive) {
                log::error!(
                    "cannot watch all of the inbox {} again: {e}; folders not watched are \
                     scanned every watch.rescan_interval, and watched again after the next \
                     lost events or a restart",
                    self.dir.display()
                );
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Dur};
    use notify::event::Flag;
    use std::time::SystemTime;

    /// An app on a fresh data dir in `dir`, watching in `mode`.
    fn app(dir: &Path, mode: WatchMode) -> App {
        let mut config = Config {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        };
        config.watch.mode = mode;
        config.watch.stability_window = Dur(Duration::from_millis(100));
        App::open(&config, 4).unwrap()
    }

    /// Writes `n` small text files of distinct content into `inbox`, last
    /// modified `age` ago.
    fn drop_files(inbox: &Path, n: usize, age: Duration) {
        for i in 0..n {
            let path = inbox.join(format!("f{i:03}.txt"));
            std::fs::write(&path, format!("file number {i}\n")).unwrap();
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(SystemTime::now() - age).unwrap();
        }
    }

    fn documents(app: &App) -> usize {
        app.store.list(None).unwrap().len()
    }

    #[test]
    fn notifys_rescan_flag_takes_the_files_no_event_announced() {
        let dir = tempfile::tempdir().unwrap();
        // No watch in poll mode: no event announces the files.
        let app = app(dir.path(), WatchMode::Poll);
        let mut inbox = Inbox::open(app.clone(), None, backlog::CAPACITY).unwrap();
        drop_files(&inbox.dir, 3, Duration::from_secs(60));
        inbox.on_event(Ok(Event::new(EventKind::Other)));
        inbox.catch_up();
        assert_eq!(documents(&app), 0, "an event without the flag");
        // What notify's inotify backend sends when the kernel's queue overflowed.
        inbox.on_event(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        inbox.catch_up();
        assert_eq!(documents(&app), 3);
        assert_eq!(std::fs::read_dir(&inbox.dir).unwrap().count(), 0);
    }

    #[test]
    fn files_whose_events_a_full_backlog_dropped_are_taken_by_a_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), WatchMode::Notify);
        // Room for a few events, and none handled while the files come in
        // after the scan at start: most of their events are dropped.
        let mut inbox = Inbox::open(app.clone(), None, 4).unwrap();
        let files = 200;
        drop_files(&inbox.dir, files, Duration::ZERO);
        let (stop_tx, stop) = crossbeam_channel::bounded(1);
        let events = inbox.backlog.events().clone();
        wait_for("the backlog to fill", || events.is_full());
        let thread = std::thread::spawn(move || inbox.follow(&stop));
        // Far sooner than the periodic rescan (watch.rescan_interval, 5 min).
        wait_for("every file to be taken", || documents(&app) == files);
        stop_tx.send(()).unwrap();
        thread.join().unwrap();
        let left = std::fs::read_dir(app.config.inbox_dir()).unwrap().count();
        assert_eq!(left, 0);
    }

    #[test]
    fn after_notifys_rescan_flag_folders_whose_creation_was_lost_are_watched() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), WatchMode::Notify);
        let mut inbox = Inbox::open(app.clone(), None, backlog::CAPACITY).unwrap();
        // As if the kernel had dropped every event since: no watch says
        // the subfolder appeared.
        let inbox_dir = inbox.dir.clone();
        inbox.watcher.as_mut().unwrap().unwatch(&inbox_dir).unwrap();
        std::fs::create_dir(inbox_dir.join("sub")).unwrap();
        inbox.on_event(Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)));
        inbox.catch_up();
        let (stop_tx, stop) = crossbeam_channel::bounded(1);
        let thread = std::thread::spawn(move || inbox.follow(&stop));
        drop_files(&inbox_dir.join("sub"), 2, Duration::ZERO);
        // Far sooner than the periodic rescan (watch.rescan_interval, 5 min).
        wait_for("the files in the subfolder", || documents(&app) == 2);
        stop_tx.send(()).unwrap();
        thread.join().unwrap();
    }

    #[test]
    fn an_inbox_removed_and_made_again_between_two_looks_is_watched_again() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), WatchMode::Notify);
        let mut inbox = Inbox::open(app.clone(), None, backlog::CAPACITY).unwrap();
        let inbox_dir = inbox.dir.clone();
        std::fs::remove_dir(&inbox_dir).unwrap();
        std::fs::create_dir(&inbox_dir).unwrap();
        let (stop_tx, stop) = crossbeam_channel::bounded(1);
        let thread = std::thread::spawn(move || inbox.follow(&stop));
        drop_files(&inbox_dir, 2, Duration::ZERO);
        // Far sooner than the periodic rescan (watch.rescan_interval, 5 min).
        wait_for("the files in the new folder", || documents(&app) == 2);
        stop_tx.send(()).unwrap();
        thread.join().unwrap();
    }

    /// Polls `cond` until it holds; panics after 60 s.
    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(60), "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
