//! The inbox folder's inotify watch and its life: set up at start, renewed
//! when the folder is removed and made again or the kernel lost events, and
//! the folder's own presence (a warning, once, while it is gone).

use std::path::{Path, PathBuf};

use anyhow::Context;
use notify::{RecursiveMode, Watcher};

use super::backlog::Forward;
use crate::config::WatchMode;

/// The watch on the inbox (none in poll mode) and what is known of the folder.
pub struct InboxWatch {
    dir: PathBuf,
    watcher: Option<notify::RecommendedWatcher>,
    /// In poll mode nothing sends events, but a sender must live as long as
    /// the inbox loop: a disconnected channel would end it after the first
    /// scan.
    _idle_sender: Option<Forward>,
    /// True while the inbox folder is missing (said once).
    missing: bool,
    /// True once an event said the inbox folder itself was removed or moved
    /// away: its watch went with it, even if a folder of the same name is
    /// there again at the next look.
    gone: bool,
}

impl InboxWatch {
    /// Watches `dir` and every folder in it (in `mode`), handing events to
    /// `forward`. Returns once the watch is in place.
    pub fn open(dir: &Path, mode: WatchMode, forward: Forward) -> anyhow::Result<InboxWatch> {
        let (watcher, idle_sender) = match mode {
            WatchMode::Notify => {
                let mut w = notify::recommended_watcher(forward)
                    .context("cannot start the inbox watcher")?;
                w.watch(dir, RecursiveMode::Recursive).with_context(|| {
                    format!(
                        "cannot watch the inbox {}; if the limit of inotify watches is reached, \
                         raise fs.inotify.max_user_watches, or set watch.mode = \"poll\"",
                        dir.display()
                    )
                })?;
                (Some(w), None)
            }
            WatchMode::Poll => (None, Some(forward)),
        };
        log::info!("watching the inbox {} ({mode:?} mode)", dir.display());
        Ok(InboxWatch {
            dir: dir.to_owned(),
            watcher,
            _idle_sender: idle_sender,
            missing: false,
            gone: false,
        })
    }

    /// Notes that an event said the inbox folder itself went away.
    pub fn folder_gone(&mut self) {
        self.gone = true;
    }

    /// Notices the inbox folder removed (a warning, once) and made again:
    /// the watch on it is renewed, and the answer is true, so that the
    /// caller scans it at once instead of at the next rescan. A folder made
    /// again between two looks (the same name, often the same inode) is
    /// told by the event of the old one's removal ([`InboxWatch::folder_gone`]).
    pub fn check_present(&mut self) -> bool {
        let present = self.dir.is_dir();
        if present && std::mem::take(&mut self.gone) {
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
            self.renew(true);
            log::info!(
                "the inbox {} is back; watching it again",
                self.dir.display()
            );
            return true;
        }
        false
    }

    /// Watches the inbox and every folder in it anew: once it is made again
    /// (`remade`: the old watch is dropped first), or after the kernel's
    /// queue overflowed (added to the watches there are, so that nothing is
    /// unwatched meanwhile). Notify watches a new subfolder when an event
    /// says it appeared; if that event was lost, so is every later event in
    /// the folder, until it is watched.
    pub fn renew(&mut self, remade: bool) {
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

    /// Stops watching the inbox, as if the kernel had dropped every event
    /// since: for tests of the recovery.
    #[cfg(test)]
    pub fn unwatch(&mut self) {
        if let Some(w) = &mut self.watcher {
            w.unwatch(&self.dir).unwrap();
        }
    }
}
