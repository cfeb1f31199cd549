//! Taking a file into the store: hash it, place it under `originals/` (see
//! `store/files.rs`), create its document and OCR task in one
//! transaction ([`Queue::create_document_with_task`]), and only then remove
//! it from the inbox. The invariant: whatever fails, and wherever the process
//! is killed, the file is still where it was until a committed document
//! points at its stored copy. A kill between the commit
//! and the removal leaves a second link to the stored file in the inbox; the
//! next ingest recognises it by its inode and removes it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::detect::{self, Kind};
use crate::queue::{Enqueued, Priority, Queue, QueueError};
use crate::store::files::{Placement, hash_file, move_file, place, same_file, sync_dir, unplace};
use crate::store::{NewDocument, Store};

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
    #[error("{path}: {what}: {error}")]
    Io {
        path: PathBuf,
        what: &'static str,
        error: io::Error,
    },
    #[error("{path}: {error}")]
    Db { path: PathBuf, error: QueueError },
    #[error(
        "{path}: a document with the same content was made and removed again while this \
         file was being taken; it stays where it is and is taken at the next rescan"
    )]
    Vanished { path: PathBuf },
}

impl IngestError {
    /// True when the source file vanished before it could be taken (renamed or
    /// deleted by someone else): nothing to report but a log line.
    pub fn is_gone(&self) -> bool {
        matches!(self, IngestError::Io { error, .. } if error.kind() == io::ErrorKind::NotFound)
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
        move |error| IngestError::Io {
            path: src.to_path_buf(),
            what,
            error,
        }
    };
    let db_err = |error: QueueError| IngestError::Db {
        path: src.to_path_buf(),
        error,
    };
    let (sha, size, head) = hash_file(src).map_err(io_err("cannot read the file"))?;
    let kind = detect::detect(&head);

    if let Some(existing) = store.by_sha256(&sha).map_err(|e| db_err(e.into()))? {
        if how == Placement::Move && same_file(src, &store.file_of(&existing)) {
            // Left by an ingest killed after its commit: already stored.
            log::info!(
                "{}: already stored as document {}; removing the leftover link",
                src.display(),
                existing.id
            );
            fs::remove_file(src).map_err(io_err("cannot remove the leftover link"))?;
            return Ok(Ingested::Duplicate {
                document_id: existing.id,
                kept_at: None,
            });
        }
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
    let (document_id, new) = match queue.create_document_with_task(&doc, priority) {
        Ok(Some((id, task))) => {
            // Said here, before the inbox file is removed: from the commit
            // on a worker may claim it, and its "claimed" line must not come
            // first. (Commands that copy files in say it themselves.)
            if how == Placement::Move {
                log::info!("ingested {name:?} as document {id} ({kind})");
            }
            (id, Some(task))
        }
        // Another process made the same document between our check and insert.
        Ok(None) => match store.by_sha256(&sha).map_err(|e| db_err(e.into()))? {
            Some(d) => (d.id, None),
            // ... and it was removed again since (`quire rm`): try again later.
            None => {
                return Err(IngestError::Vanished {
                    path: src.to_path_buf(),
                });
            }
        },
        Err(e) => {
            // Unless another ingest of the same content committed a document
            // meanwhile, adopting the copy we placed: then it stays.
            let adopted = store.by_sha256(&sha).ok().flatten().is_some();
            if placed && !adopted {
                unplace(src, &target);
            }
            return Err(db_err(e));
        }
    };
    // The document is committed: the inbox copy may go now (it is the same
    // inode as the stored file, or a synced copy of it; or we just made the
    // document from a copy an interrupted ingest of this file had stored).
    let ours = placed || new.is_some() || same_file(src, &target);
    if ours && how == Placement::Move {
        if let Err(e) = fs::remove_file(src) {
            log::warn!(
                "{}: stored as document {document_id}, but it could not be removed from the inbox: {e}",
                src.display()
            );
        }
        sync_dir(src);
    }
    let kept = if ours {
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
    if let Err(e) = store.record_duplicate(document_id, name, &rel, queue.now_ms()) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::queue::Policy;

    fn setup() -> (tempfile::TempDir, Store, Queue) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("quire.db"), 4).unwrap();
        let store = Store::open(db.clone(), dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
        (dir, store, Queue::new(db, Policy::default()))
    }

    fn drop_file(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let p = dir.join("inbox").join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    /// Ingests `src` from the inbox, as the watcher does.
    fn take(store: &Store, queue: &Queue, src: &Path, name: &str) -> Ingested {
        ingest(store, queue, src, name, Placement::Move, Priority::Normal).unwrap()
    }

    /// How many documents there are, and how many duplicates of them.
    fn counts(store: &Store) -> (usize, i64) {
        let docs = store.list(None).unwrap();
        let dups = docs
            .iter()
            .map(|d| store.count_duplicates_of(d.id).unwrap())
            .sum();
        (docs.len(), dups)
    }

    #[test]
    fn a_moved_file_leaves_the_inbox_only_once_its_document_is_committed() {
        let (dir, store, queue) = setup();
        let src = drop_file(dir.path(), "a.pdf", b"%PDF-1.4 a\n%%EOF\n");
        let r = take(&store, &queue, &src, "a.pdf");
        assert!(matches!(r, Ingested::New { .. }));
        assert!(!src.exists());
        assert_eq!(counts(&store).0, 1);
    }

    #[test]
    fn killed_after_linking_before_committing_the_next_ingest_adopts_the_stored_copy() {
        let (dir, store, queue) = setup();
        let body = b"%PDF-1.4 b\n%%EOF\n";
        let src = drop_file(dir.path(), "b.pdf", body);
        // The state a kill leaves between place() and the transaction.
        let (sha, _, head) = hash_file(&src).unwrap();
        let target = dir.path().join(format!(
            "originals/{sha}.{}",
            detect::detect(&head).extension()
        ));
        assert!(place(&src, &target, Placement::Move).unwrap());
        let r = take(&store, &queue, &src, "b.pdf");
        assert!(matches!(r, Ingested::New { .. }), "{r:?}");
        assert!(!src.exists(), "the inbox link stays behind");
        assert_eq!(counts(&store).1, 0, "recorded as its own duplicate");
        assert_eq!(std::fs::read(&target).unwrap(), body);
    }

    #[test]
    fn killed_after_committing_before_unlinking_the_leftover_link_is_removed() {
        let (dir, store, queue) = setup();
        let src = drop_file(dir.path(), "c.pdf", b"%PDF-1.4 c\n%%EOF\n");
        take(&store, &queue, &src, "c.pdf");
        // The state a kill leaves between the commit and the unlink.
        let doc = store.list(None).unwrap().remove(0);
        std::fs::hard_link(store.file_of(&doc), &src).unwrap();
        let r = take(&store, &queue, &src, "c.pdf");
        assert_eq!(
            r,
            Ingested::Duplicate {
                document_id: doc.id,
                kept_at: None
            }
        );
        assert!(!src.exists());
        assert_eq!(counts(&store), (1, 0));
        assert!(store.file_of(&doc).exists());
    }
}
