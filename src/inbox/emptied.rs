//! The subfolders files were taken from (what a folder drop leaves behind),
//! removed once empty and quiet (`watch.remove_emptied_folders`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Subfolders of the inbox a file was taken from, and when.
pub struct Emptied {
    inbox: PathBuf,
    window: Duration,
    enabled: bool,
    folders: HashMap<PathBuf, Instant>,
}

impl Emptied {
    /// Folders of `inbox` to remove once unchanged for `window`; with
    /// `enabled` false, none.
    pub fn new(inbox: &Path, window: Duration, enabled: bool) -> Emptied {
        Emptied {
            inbox: inbox.to_owned(),
            window,
            enabled,
            folders: HashMap::new(),
        }
    }

    /// Remembers the subfolder `file` was taken from (never the inbox itself).
    pub fn note(&mut self, file: &Path) {
        if !self.enabled {
            return;
        }
        if let Some(dir) = file.parent().filter(|d| *d != self.inbox) {
            self.folders.insert(dir.to_path_buf(), Instant::now());
        }
    }

    /// Removes the folders noted that are empty and have not changed for the
    /// stability window (a folder still being copied in has files, or
    /// changed just now); a parent left empty is looked at in turn.
    pub fn remove_due(&mut self) {
        let now = Instant::now();
        let due: Vec<PathBuf> = self
            .folders
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= self.window)
            .map(|(d, _)| d.clone())
            .collect();
        for dir in due {
            let empty = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_none());
            if !empty {
                // Files in it will be taken (and note it again), or it is
                // not ours to remove.
                self.folders.remove(&dir);
                continue;
            }
            let quiet = std::fs::metadata(&dir)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|e| e >= self.window));
            if !quiet {
                continue; // looked at again next time
            }
            self.folders.remove(&dir);
            if std::fs::remove_dir(&dir).is_ok() {
                log::debug!("removed the emptied folder {}", dir.display());
                if let Some(parent) = dir.parent().filter(|p| *p != self.inbox) {
                    self.folders.insert(parent.to_path_buf(), now);
                }
            }
        }
    }
}
