//! Taking a file into the store: hash it, place it under `originals/` without
//! ever clobbering a file there, and create its document and OCR task in one
//! transaction. The invariant: whatever fails, the file is still where it was
//! or safely in the store; nothing is deleted that was not first stored.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{NewDocument, Store, insert_document, insert_duplicate};
use crate::db::{DbError, write_tx};
use crate::detect::{self, Kind};
use crate::queue::{Enqueued, Priority, Queue, QueueError, TaskType};

/// How the file gets into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Move it (the inbox): a rename, or copy + fsync + remove across filesystems.
    Move,
    /// Copy it, leaving the source alone (`quire enqueue`).
    Copy,
}

/// What became of an ingested file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// A new document, with its OCR task.
    New {
        document_id: i64,
        task: Enqueued,
        kind: Kind,
    },
    /// The content was already document `document_id`. A moved file was put
    /// aside at `kept_at`; a copied one was left where it was.
    Duplicate {
        document_id: i64,
        kept_at: Option<PathBuf>,
    },
}

/// Why a file could not be ingested. The file is where it was.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("{path}: {source}")]
    Db { path: PathBuf, source: QueueError },
}

impl IngestError {
    /// True when the source file vanished before it could be taken (renamed or
    /// deleted by someone else): nothing to report but a log line.
    pub fn is_gone(&self) -> bool {
        matches!(self, IngestError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Ingests `src` under the name `name` (its path relative to the inbox, or as given).
pub fn ingest(
    store: &Store,
    queue: &Queue,
    src: &Path,
    name: &str,
    how: Placement,
    priority: Priority,
) -> Result<Ingested, IngestError> {
    let io_err = |what| {
        move |source| IngestError::Io {
            path: src.to_path_buf(),
            what,
            source,
        }
    };
    let db_err = |source: QueueError| IngestError::Db {
        path: src.to_path_buf(),
        source,
    };
    let (sha, size, head) = hash_file(src).map_err(io_err("cannot read the file"))?;
    let kind = detect::detect(&head);

    if let Some(existing) = store.by_sha256(&sha).map_err(|e| db_err(e.into()))? {
        return duplicate(store, queue, src, name, existing.id, how)
            .map_err(io_err("cannot move the duplicate aside"));
    }

    let rel = format!("originals/{sha}.{}", kind.extension());
    let target = store.data_dir().join(&rel);
    // false: a copy was stored by an earlier ingest that crashed before its
    // transaction; the document below adopts it and this file is its duplicate.
    let placed = place(src, &target, how).map_err(io_err("cannot store the file"))?;
    let doc = NewDocument {
        name,
        stored_path: &rel,
        size: size as i64,
        sha256: &sha,
        kind: kind.as_str(),
    };
    let (document_id, new) = match create_document(queue, &doc, priority) {
        Ok(Some((id, task))) => (id, Some(task)),
        // Another process made the same document between our check and insert.
        Ok(None) => match store.by_sha256(&sha).map_err(|e| db_err(e.into()))? {
            Some(d) => (d.id, None),
            None => {
                return Err(db_err(QueueError::Db(DbError::Sqlite(
                    rusqlite::Error::QueryReturnedNoRows,
                ))));
            }
        },
        Err(e) => {
            if placed {
                unplace(src, &target, how);
            }
            return Err(db_err(e));
        }
    };
    let kept = if placed {
        None
    } else {
        match duplicate(store, queue, src, name, document_id, how) {
            Ok(Ingested::Duplicate { kept_at, .. }) => kept_at,
            Ok(_) => None,
            Err(e) => return Err(io_err("cannot move the duplicate aside")(e)),
        }
    };
    match new {
        Some(task) => Ok(Ingested::New {
            document_id,
            task,
            kind,
        }),
        None => Ok(Ingested::Duplicate {
            document_id,
            kept_at: kept,
        }),
    }
}

/// Creates the document and its OCR task in one transaction.
fn create_document(
    queue: &Queue,
    doc: &NewDocument<'_>,
    priority: Priority,
) -> Result<Option<(i64, Enqueued)>, QueueError> {
    let mut conn = queue.db().conn()?;
    let tx = write_tx(&mut conn)?;
    let now = queue.now_ms();
    let Some(id) = insert_document(&tx, doc, now)? else {
        return Ok(None);
    };
    let task = queue.enqueue_in(&tx, id, TaskType::Ocr, priority)?;
    tx.commit()?;
    Ok(Some((id, task)))
}

/// Handles a file whose content is already a document: a moved file is put
/// aside under `duplicates/` and recorded; a copied one is left alone.
fn duplicate(
    store: &Store,
    queue: &Queue,
    src: &Path,
    name: &str,
    document_id: i64,
    how: Placement,
) -> io::Result<Ingested> {
    if how == Placement::Copy {
        return Ok(Ingested::Duplicate {
            document_id,
            kept_at: None,
        });
    }
    let base = Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base: String = base.chars().take(120).collect();
    let rel = format!("duplicates/{document_id}-{}-{base}", queue.now_ms());
    let kept = store.data_dir().join(&rel);
    move_file(src, &kept)?;
    let record = || -> Result<(), QueueError> {
        let mut conn = queue.db().conn()?;
        let tx = write_tx(&mut conn).map_err(DbError::from)?;
        insert_duplicate(&tx, document_id, name, &rel, queue.now_ms()).map_err(DbError::from)?;
        tx.commit().map_err(DbError::from)?;
        Ok(())
    };
    if let Err(e) = record() {
        // The file is safe under duplicates/; only the record is missing.
        log::warn!(
            "{}: kept as {rel}, but could not record it: {e}",
            src.display()
        );
    }
    Ok(Ingested::Duplicate {
        document_id,
        kept_at: Some(kept),
    })
}

/// SHA-256, size and first KiB of a file.
fn hash_file(path: &Path) -> io::Result<(String, u64, Vec<u8>)> {
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

/// Puts `src` at `target` without ever replacing an existing file there.
/// Returns false (leaving `src` alone) when `target` already exists.
fn place(src: &Path, target: &Path, how: Placement) -> io::Result<bool> {
    if how == Placement::Move {
        match fs::hard_link(src, target) {
            Ok(()) => {
                fs::remove_file(src)?;
                sync_dir(target);
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            // Another filesystem, or one without hard links: copy instead.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
    }
    let placed = copy_no_clobber(src, target)?;
    if placed && how == Placement::Move {
        fs::remove_file(src)?;
    }
    Ok(placed)
}

/// Copies `src` to a temporary file beside `target`, fsyncs it, then links it
/// into place (failing over to a checked rename where links are unsupported).
fn copy_no_clobber(src: &Path, target: &Path) -> io::Result<bool> {
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
fn move_file(src: &Path, dst: &Path) -> io::Result<()> {
    if fs::rename(src, dst).is_ok() {
        return Ok(());
    }
    if copy_no_clobber(src, dst)? {
        fs::remove_file(src)
    } else {
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists", dst.display()),
        ))
    }
}

/// Undoes [`place`] after the database refused the document: the file goes
/// back where it came from (or the copy is dropped, the source being intact).
fn unplace(src: &Path, target: &Path, how: Placement) {
    let result = match how {
        Placement::Move => fs::rename(target, src),
        Placement::Copy => fs::remove_file(target),
    };
    if let Err(e) = result {
        log::error!(
            "{}: the database refused the document and the stored copy {} could not be put back ({e}); \
             it is safe there and will be adopted when it is dropped again",
            src.display(),
            target.display()
        );
    }
}

/// Flushes a directory entry, so a rename or link survives a power cut.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}
