//! Files seen in the inbox but not yet taken: when each becomes complete.
//!
//! A file is taken when its writer closed it (inotify's close-write) or it was
//! renamed into the inbox, and it passes the format's completeness check; or,
//! lacking such an event (a scan, poll mode, a network share), when its size
//! and mtime have held still for the stability window and it passes the check.
//! A file that holds still but never passes the check (a truncated PDF) is
//! taken after [`GIVE_UP_FACTOR`] windows, so that it fails with a clear error
//! instead of sitting in the inbox unexplained.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::detect;

/// A file still incomplete after this many stability windows is taken anyway.
pub const GIVE_UP_FACTOR: u32 = 15;

/// What we know about a waiting file.
#[derive(Debug, Clone)]
struct Waiting {
    size: u64,
    mtime: Option<SystemTime>,
    /// When size and mtime were last seen to change.
    changed: Instant,
}

/// The waiting files.
#[derive(Debug, Default)]
pub struct Tracker {
    waiting: HashMap<PathBuf, Waiting>,
}

/// A file's size and mtime, if it is still a regular file.
fn stat(path: &Path) -> Option<(u64, Option<SystemTime>)> {
    let m = std::fs::symlink_metadata(path).ok()?;
    m.file_type()
        .is_file()
        .then(|| (m.len(), m.modified().ok()))
}

/// True when the file passes its format's completeness check.
pub fn looks_complete(path: &Path) -> bool {
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let mut head = [0u8; 1024];
    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
    let kind = detect::detect(&head[..n]);
    detect::looks_complete(kind, &mut f).unwrap_or(false)
}

impl Tracker {
    /// Starts (or keeps) watching `path` for stability. A file whose mtime is
    /// already older than `window` counts as stable from the start. `now` is
    /// the caller's clock (injected so tests need not sleep).
    pub fn watch(&mut self, path: &Path, window: Duration, now: Instant) {
        let Some((size, mtime)) = stat(path) else {
            return;
        };
        let age = mtime
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or_default();
        let changed = if age >= window {
            now.checked_sub(window).unwrap_or(now)
        } else {
            now
        };
        self.waiting.entry(path.to_path_buf()).or_insert(Waiting {
            size,
            mtime,
            changed,
        });
    }

    /// Notes that `path` changed (more data written) at `now`.
    pub fn touched(&mut self, path: &Path, now: Instant) {
        if let Some(w) = self.waiting.get_mut(path) {
            w.changed = now;
        }
    }

    /// Stops tracking `path` (taken, removed, or renamed away).
    pub fn forget(&mut self, path: &Path) {
        self.waiting.remove(path);
    }

    /// True when `path` is being tracked.
    pub fn contains(&self, path: &Path) -> bool {
        self.waiting.contains_key(path)
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The waiting files that are ready at `now`, removed from the tracker;
    /// files that vanished are dropped.
    pub fn take_ready(&mut self, window: Duration, now: Instant) -> Vec<PathBuf> {
        let mut ready = vec![];
        self.waiting.retain(|path, w| {
            let Some((size, mtime)) = stat(path) else { return false };
            if (size, mtime) != (w.size, w.mtime) {
                (w.size, w.mtime, w.changed) = (size, mtime, now);
                return true;
            }
            let still = now.duration_since(w.changed);
            if still < window {
                return true;
            }
            if looks_complete(path) {
                ready.push(path.clone());
                return false;
            }
            if still >= window * GIVE_UP_FACTOR {
                log::warn!(
                    "{}: unchanged for {:.0}s but looks incomplete; taking it so that it fails with a clear error",
                    path.display(),
                    still.as_secs_f64()
                );
                ready.push(path.clone());
                return false;
            }
            true
        });
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_file_waits_and_a_complete_still_one_is_ready() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.pdf");
        std::fs::write(&p, b"%PDF-1.4\n").unwrap();
        let mut t = Tracker::default();
        let window = Duration::from_secs(2);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        t.watch(&p, window, at(0));
        assert!(t.take_ready(window, at(100)).is_empty(), "too new");
        assert!(
            t.take_ready(window, at(2_500)).is_empty(),
            "still but incomplete"
        );
        std::fs::write(&p, b"%PDF-1.4\ntrailer\n%%EOF\n").unwrap();
        assert!(t.take_ready(window, at(2_600)).is_empty(), "just changed");
        t.touched(&p, at(3_000));
        assert!(
            t.take_ready(window, at(4_000)).is_empty(),
            "written to since"
        );
        assert_eq!(t.take_ready(window, at(5_100)), vec![p.clone()]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_still_file_that_never_looks_complete_is_taken_in_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.pdf");
        std::fs::write(&p, b"%PDF-1.4\n1 0 obj").unwrap();
        let mut t = Tracker::default();
        let window = Duration::from_secs(1);
        let t0 = Instant::now();
        t.watch(&p, window, t0);
        let before = t0 + window * (GIVE_UP_FACTOR - 1);
        assert!(t.take_ready(window, before).is_empty());
        assert_eq!(t.take_ready(window, t0 + window * GIVE_UP_FACTOR), vec![p]);
    }
}
