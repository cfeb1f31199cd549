//! The watcher thread: turns inotify events (or, in poll mode, periodic scans)
//! into ingests. Also scans the whole inbox at start and every
//! `rescan_interval`, and whenever events were lost (see [`super::backlog`]).

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, select};
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind};

use super::backlog::{self, Backlog};
use super::emptied::Emptied;
use super::filter::Filter;
use super::tracker::{Tracker, looks_complete};
use super::watch::InboxWatch;
use crate::app::App;
use crate::config::WatchMode;
use crate::ingest::{IngestError, Ingested, ingest};
use crate::queue::Priority;
use crate::store::Placement;
use crate::worker::Wake;

/// How often, at most, waiting files are looked at and the inbox folder
/// checked (and how often while files wait, when no event comes).
const CHORES_EVERY: Duration = Duration::from_millis(100);

/// How long a file whose ingest failed on the database (a restart, a cut
/// link, a full disk under SQLite) waits before it is tried again.
const DB_RETRY_AFTER: Duration = Duration::from_secs(5);

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
    /// Files whose ingest the database refused, and when to try them again:
    /// the file is fine and the database is likely back in seconds, so they
    /// do not wait for the rescan (by default five minutes).
    retry: std::collections::HashMap<PathBuf, Instant>,
    /// The inotify watch on the inbox folder.
    watch: InboxWatch,
    /// Notify's events, bounded.
    backlog: Backlog,
    /// The subfolders files were taken from.
    emptied: Emptied,
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
        let watch = InboxWatch::open(&dir, app.config.watch.mode, forward)?;
        let cfg = &app.config.watch;
        Ok(Inbox {
            filter: Filter::new(&cfg.ignore),
            window: cfg.stability_window.0,
            emptied: Emptied::new(&dir, cfg.stability_window.0, cfg.remove_emptied_folders),
            watch,
            backlog,
            tracker: Tracker::default(),
            failed: Default::default(),
            retry: Default::default(),
            app,
            dir,
            wake,
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
                self.retry_due(Instant::now());
                if self.watch.check_present() {
                    self.scan(&self.dir.clone(), false);
                }
                self.emptied.remove_due();
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
                self.watch.folder_gone()
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
                self.watch.renew(false);
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
        if self.filter.ignores(rel) || self.failed.contains(path) || self.retry.contains_key(path) {
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

    /// Tries again the files the database refused whose wait is over.
    fn retry_due(&mut self, now: Instant) {
        let due: Vec<PathBuf> = self
            .retry
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for path in due {
            self.retry.remove(&path);
            if path.is_file() {
                self.take(&path);
            }
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
                crate::metrics::ingested("new");
                if let Some(w) = &self.wake {
                    w.notify();
                }
                self.emptied.note(path);
            }
            Ok(Ingested::Duplicate {
                document_id,
                kept_at,
            }) => {
                crate::metrics::ingested("duplicate");
                log::info!(
                    "{rel:?} has the same content as document {document_id}; not processed again, kept as {}",
                    kept_at.map(|p| p.display().to_string()).unwrap_or_default()
                );
                self.emptied.note(path);
            }
            Err(e) if e.is_gone() => log::debug!("{rel:?} went away before it could be taken"),
            Err(e @ IngestError::Db { .. }) => {
                crate::metrics::ingested("failed");
                log::error!(
                    "cannot ingest {e}; the file stays in the inbox and is tried again in {}s",
                    DB_RETRY_AFTER.as_secs()
                );
                self.retry
                    .insert(path.to_path_buf(), Instant::now() + DB_RETRY_AFTER);
            }
            Err(e) => {
                crate::metrics::ingested("failed");
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
        inbox.watch.unwatch();
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

    #[test]
    fn a_file_the_database_refused_is_tried_again_in_seconds_not_at_the_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), WatchMode::Poll);
        let mut inbox = Inbox::open(app.clone(), None, backlog::CAPACITY).unwrap();
        // The database refuses new documents, as a server going down would.
        let admin = rusqlite::Connection::open(app.config.db_path()).unwrap();
        admin
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON documents \
                 BEGIN SELECT RAISE(ABORT, 'the test refuses it'); END",
            )
            .unwrap();
        drop_files(&inbox.dir, 1, Duration::from_secs(60));
        inbox.scan(&inbox.dir.clone(), false);
        assert_eq!(documents(&app), 0);
        assert_eq!(inbox.retry.len(), 1, "waiting to be tried again");
        inbox.retry_due(Instant::now());
        assert_eq!(documents(&app), 0, "not before its wait is over");
        admin.execute_batch("DROP TRIGGER refuse").unwrap();
        inbox.retry_due(Instant::now() + DB_RETRY_AFTER);
        assert_eq!(documents(&app), 1);
        assert!(inbox.retry.is_empty() && inbox.failed.is_empty());
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
