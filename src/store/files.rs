//! The store's files under the data dir: hashing a dropped file, placing it
//! under `originals/` without ever clobbering a file there (a hard link, or a
//! synced copy across filesystems), moving duplicates aside, and syncing
//! directory entries so that a link or rename survives a power cut. No
//! database here: this is the part a second storage backend for files would
//! replace.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// How the file gets into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Move it (the inbox): a rename, or copy + fsync + remove across filesystems.
    Move,
    /// Copy it, leaving the source alone (`quire enqueue`).
    Copy,
}

/// SHA-256, size and first KiB of a file.
pub(crate) fn hash_file(path: &Path) -> io::Result<(String, u64, Vec<u8>)> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut head = Vec::new();
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 1024 {
            head.extend_from_slice(&buf[..n.min(1024 - head.len())]);
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let sha = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((sha, size, head))
}

/// Puts `src` at `target` (a hard link when moving within one filesystem, else
/// a synced copy), leaving `src` in place. False when `target` already exists:
/// stored by an earlier ingest that did not get to commit its document.
pub(crate) fn place(src: &Path, target: &Path, how: Placement) -> io::Result<bool> {
    if how == Placement::Move {
        match fs::hard_link(src, target) {
            Ok(()) => {
                sync_dir(target);
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
            // Another filesystem, or one without hard links: copy instead.
            Err(_) => {}
        }
    }
    copy_no_clobber(src, target)
}

/// True when `a` and `b` are the same file (two links to one inode).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Copies `src` to a temporary file beside `target`, fsyncs it, then links it
/// into place (failing over to a checked rename where links are unsupported).
pub(crate) fn copy_no_clobber(src: &Path, target: &Path) -> io::Result<bool> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".incoming-{}-{:x}",
        std::process::id(),
        crate::clock::now_ms()
    ));
    let result = (|| {
        fs::copy(src, &tmp)?;
        File::open(&tmp)?.sync_all()?;
        match fs::hard_link(&tmp, target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(_) if target.exists() => Ok(false),
            Err(_) => fs::rename(&tmp, target).map(|_| true),
        }
    })();
    let _ = fs::remove_file(&tmp);
    sync_dir(target);
    result
}

/// Moves a file: rename, or copy + fsync + remove across filesystems.
pub(crate) fn move_file(src: &Path, dst: &Path) -> io::Result<()> {
    if fs::rename(src, dst).is_ok() {
        return Ok(());
    }
    if copy_no_clobber(src, dst)? {
        // A source we cannot remove (a read-only inbox) must not leave a copy
        // behind each time it is tried again.
        fs::remove_file(src).inspect_err(|_| {
            let _ = fs::remove_file(dst);
        })
    } else {
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists", dst.display()),
        ))
    }
}

/// Undoes [`place`] after the database refused the document: `src` is still
/// where it was, so the stored copy (our link or copy) just goes.
pub(crate) fn unplace(src: &Path, target: &Path) {
    if let Err(e) = fs::remove_file(target) {
        log::error!(
            "{}: the database refused the document and the stored copy {} could not be removed ({e}); \
             the file is still in place and will be taken again",
            src.display(),
            target.display()
        );
    }
}

/// Flushes a directory entry, so a rename or link survives a power cut.
pub(crate) fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}
