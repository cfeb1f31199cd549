//! The document store: documents, their pages and the search index in the
//! database, and their files under `<data_dir>/originals/`.
//!
//! [`Store`]'s methods state the contract every storage engine keeps; each
//! dispatches on the database's [`Engine`] to a per-engine file (`store/sqlite/`).
//! A document's status is not written here: the queue owns it
//! ([`crate::queue::Queue`]), since it follows the document's tasks.
//!
//! Every writing operation is one transaction, so a checkpoint is either
//! whole or absent after a crash.

pub mod copy;
pub(crate) mod files;
mod layout;
mod pages;
pub mod postgres;
mod search;
pub(crate) mod sqlite;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Stemming;
use crate::db::{Db, DbError, Engine};
use crate::queue::Claim;
use crate::text_enum::text_enum;

pub use files::Placement;
pub use layout::{Affine, Layout, Line, PixelBox, Word};
pub use pages::{
    POOR_CONFIDENCE, Page, PageDetail, PageReading, PageSource, PageStatus, is_poor_reading,
};
pub use search::{DocumentHit, Found, Hit, Query, SearchFilter, Term};

/// Where a document is in the pipeline. The queue writes it: it follows the
/// document's tasks (see [`crate::queue::Queue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    /// Waiting for its OCR task to be claimed.
    Queued,
    /// Being read (or its OCR task waits to resume).
    Ocr,
    /// Read; its indexing task is queued or running.
    Indexing,
    /// Searchable.
    Indexed,
    /// A task failed for good; the document's error says why.
    Failed,
    /// A task was cancelled.
    Cancelled,
}

text_enum!(DocumentStatus {
    Queued => "queued",
    Ocr => "ocr",
    Indexing => "indexing",
    Indexed => "indexed",
    Failed => "failed",
    Cancelled => "cancelled",
});

/// The phases of indexing a document, recorded so that a restarted indexing
/// task resumes where it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexPhase {
    /// Normalising pages and staging them in batches.
    Stage,
    /// The staged rows replaced the document's index rows.
    Finalize,
    /// Finished.
    Done,
}

text_enum!(IndexPhase { Stage => "stage", Finalize => "finalize", Done => "done" });

/// Where a document's indexing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexingState {
    pub phase: IndexPhase,
    /// Pages up to this number are staged.
    pub staged: i64,
}

/// Why `quire copy-db` copied nothing (it copies in one transaction: a
/// failure leaves the target as it was, and running it again works).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("copy-db copies a SQLite installation into PostgreSQL; {0}")]
    Engines(&'static str),
    #[error(
        "the database {target} is not empty ({rows} documents and tasks); copy-db copies into \
         an empty one: create it (createdb -O USER quire) or point --to at another"
    )]
    NotEmpty { target: String, rows: i64 },
    #[error("copying {table}: {read} rows read but {written} in the target; nothing was copied")]
    Mismatch {
        table: &'static str,
        read: usize,
        written: i64,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<crate::db::postgres::PgError> for CopyError {
    fn from(e: crate::db::postgres::PgError) -> Self {
        CopyError::Db(DbError::Postgres(e))
    }
}

/// A document as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    pub id: i64,
    pub name: String,
    pub stored_path: String,
    pub size: i64,
    pub sha256: String,
    pub kind: String,
    pub pages: Option<i64>,
    pub status: DocumentStatus,
    pub error: Option<String>,
    pub ocr_details: serde_json::Value,
    pub indexing_details: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
    /// The searchable PDF last written for it (`output.dir`), if any.
    pub searchable_pdf: Option<String>,
    /// Pages whose best reading was poor ([`POOR_CONFIDENCE`]).
    pub poor_pages: i64,
}

/// A new document's row (see [`crate::queue::Queue::create_document_with_task`]).
#[derive(Debug, Clone)]
pub struct NewDocument<'a> {
    pub name: &'a str,
    pub stored_path: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub kind: &'a str,
}

/// What [`Store::remove`] did.
#[derive(Debug)]
pub struct Removed {
    /// The document as it was.
    pub document: Document,
    /// Where its original went (`trash/`), unless it was purged.
    pub trashed: Option<PathBuf>,
}

/// Why [`Store::remove`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "the document is removed, but its file {path} could not be moved or deleted: {error}; \
         remove it by hand"
    )]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Documents and their files.
#[derive(Clone)]
pub struct Store {
    db: Db,
    data_dir: PathBuf,
}

impl Store {
    /// The store of `data_dir`, over `db`; creates `originals/` and `duplicates/`.
    pub fn open(db: Db, data_dir: &Path) -> std::io::Result<Store> {
        for sub in ["originals", "duplicates"] {
            std::fs::create_dir_all(data_dir.join(sub))?;
        }
        Ok(Store {
            db,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The absolute path of a document's stored file.
    pub fn file_of(&self, doc: &Document) -> PathBuf {
        self.data_dir.join(&doc.stored_path)
    }

    /// One document, or `None`.
    pub fn document(&self, id: i64) -> Result<Option<Document>, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::documents::document(c, id)),
            Engine::Postgres(db) => db.snapshot(|tx| postgres::documents::document(tx, id)),
        }
    }

    /// Documents, newest first, optionally only those with `status`.
    pub fn list(&self, status: Option<DocumentStatus>) -> Result<Vec<Document>, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::documents::list(c, status)),
            Engine::Postgres(db) => db.snapshot(|tx| postgres::documents::newest(tx, status, None)),
        }
    }

    /// The newest `limit` documents, newest first, optionally only those
    /// with `status` (the web page's lists).
    pub fn newest(
        &self,
        status: Option<DocumentStatus>,
        limit: usize,
    ) -> Result<Vec<Document>, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::documents::newest(c, status, limit)),
            Engine::Postgres(db) => {
                db.snapshot(|tx| postgres::documents::newest(tx, status, Some(limit)))
            }
        }
    }

    /// The document with this content, if any.
    pub fn by_sha256(&self, sha: &str) -> Result<Option<Document>, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::documents::by_sha256(c, sha)),
            Engine::Postgres(db) => db.snapshot(|tx| postgres::documents::by_sha256(tx, sha)),
        }
    }

    /// How many dropped files turned out to be copies of document `id`.
    pub fn count_duplicates_of(&self, id: i64) -> Result<i64, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::documents::count_duplicates_of(c, id)),
            Engine::Postgres(db) => {
                db.snapshot(|tx| postgres::documents::count_duplicates_of(tx, id))
            }
        }
    }

    /// Records that a dropped file, kept at `stored_path`, was a copy of
    /// document `document_id`.
    pub fn record_duplicate(
        &self,
        document_id: i64,
        name: &str,
        stored_path: &str,
        now: i64,
    ) -> Result<(), DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                sqlite::documents::insert_duplicate(tx, document_id, name, stored_path, now)
            }),
            Engine::Postgres(db) => db.write(|tx| {
                postgres::documents::insert_duplicate(tx, document_id, name, stored_path, now)
            }),
        }
    }

    /// Starts (or resumes) OCR of `claim`'s document, of `pages` pages:
    /// checkpoints left by the same task are kept, so it resumes; those of
    /// any other task (an earlier run, before `enqueue --reprocess`) are
    /// cleared, so it starts over. Fenced by the claim: false, and nothing
    /// written, when it no longer holds its task.
    pub fn begin_ocr(&self, claim: &Claim, pages: i64) -> Result<bool, DbError> {
        let (doc, task) = (claim.document_id, claim.task_id);
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                if !sqlite::pages::claim_held(tx, claim)? {
                    return Ok(false);
                }
                sqlite::pages::begin_ocr(tx, doc, task, pages).map(|()| true)
            }),
            Engine::Postgres(db) => db.write(|tx| {
                if !postgres::pages::claim_held(tx, claim)? {
                    return Ok(false);
                }
                postgres::pages::begin_ocr(tx, doc, task, pages).map(|()| true)
            }),
        }
    }

    /// Checkpoints one page of `claim`'s document: what was read of it (if
    /// anything) and its details, in one transaction. Saving a page again
    /// replaces it. Fenced by the claim: when `claim` no longer holds its
    /// OCR task (cancelled, released and taken by another worker), nothing
    /// is written and the answer is false.
    pub fn save_page(
        &self,
        claim: &Claim,
        number: i64,
        reading: Option<&PageReading<'_>>,
        detail: &PageDetail,
        now: i64,
    ) -> Result<bool, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::pages::save_page(tx, claim, number, reading, detail, now))
            }
            Engine::Postgres(db) => {
                db.write(|tx| postgres::pages::save_page(tx, claim, number, reading, detail, now))
            }
        }
    }

    /// Where the web page keeps the page images it rendered, named
    /// `SHA256-PAGE-DPI.png` (by content: document ids are reused).
    pub fn page_cache_dir(&self) -> PathBuf {
        self.data_dir.join(".cache").join("pages")
    }

    /// Deletes the rendered page images of the content `sha256` (a removed
    /// document's pages must not stay readable there).
    fn forget_page_images(&self, sha256: &str) {
        let prefix = format!("{sha256}-");
        let Ok(entries) = std::fs::read_dir(self.page_cache_dir()) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Removes a document for good: its row, tasks, pages and index rows in
    /// one transaction (a daemon running one of its tasks loses the claim
    /// and stops), then its stored original, moved into `trash/` (named
    /// `ID-NAME`) or, with `purge`, deleted. The database goes first: a
    /// crash in between leaves a file in `originals/`, never a document
    /// without its file. `None` when there was no such document.
    pub fn remove(&self, document_id: i64, purge: bool) -> Result<Option<Removed>, RemoveError> {
        let Some(doc) = self.document(document_id)? else {
            return Ok(None);
        };
        let removed = match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| sqlite::documents::remove(tx, document_id)),
            Engine::Postgres(db) => db.write(|tx| postgres::documents::remove(tx, document_id)),
        }?;
        if !removed {
            return Ok(None); // removed by another process meanwhile
        }
        self.forget_page_images(&doc.sha256);
        let file = self.file_of(&doc);
        let trashed = if purge {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(RemoveError::File {
                        path: file,
                        error: e,
                    });
                }
                _ => None,
            }
        } else {
            let name = Path::new(&doc.name)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "document".into());
            let trash = self.data_dir.join("trash");
            let to = trash.join(format!("{document_id}-{name}"));
            std::fs::create_dir_all(&trash)
                .and_then(|()| files::move_file(&file, &to))
                .map_err(|e| RemoveError::File {
                    path: file.clone(),
                    error: e,
                })?;
            Some(to)
        };
        Ok(Some(Removed {
            document: doc,
            trashed,
        }))
    }

    /// True when a document other than `document_id` records `path` as its
    /// searchable PDF.
    pub fn pdf_taken_by_other(&self, document_id: i64, path: &Path) -> Result<bool, DbError> {
        let path = path.to_string_lossy();
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.read(|c| sqlite::documents::pdf_taken_by_other(c, document_id, &path))
            }
            Engine::Postgres(db) => {
                db.snapshot(|tx| postgres::documents::pdf_taken_by_other(tx, document_id, &path))
            }
        }
    }

    /// Records that the document's searchable PDF is at `path` (absolute).
    pub fn set_searchable_pdf(&self, document_id: i64, path: &Path) -> Result<(), DbError> {
        let path = path.to_string_lossy();
        match self.db.engine() {
            Engine::Sqlite(db) => {
                db.write(|tx| sqlite::documents::set_searchable_pdf(tx, document_id, &path))
            }
            Engine::Postgres(db) => {
                db.write(|tx| postgres::documents::set_searchable_pdf(tx, document_id, &path))
            }
        }
    }

    /// Each read page's source and word boxes, in page order: no boxes for
    /// pages read from a text layer (and pages OCR'd before quire kept them).
    pub fn layouts(
        &self,
        document_id: i64,
    ) -> Result<Vec<(i64, PageSource, Option<Layout>)>, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::pages::layouts(c, document_id)),
            Engine::Postgres(db) => db.snapshot(|tx| postgres::pages::layouts(tx, document_id)),
        }
    }

    /// A page's recorded details, if it has been tried.
    pub fn page_detail(
        &self,
        document_id: i64,
        number: i64,
    ) -> Result<Option<PageDetail>, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::pages::page_detail(c, document_id, number)),
            Engine::Postgres(db) => {
                db.snapshot(|tx| postgres::pages::page_detail(tx, document_id, number))
            }
        }
    }

    /// A document's pages that have text, in order.
    pub fn pages(&self, document_id: i64) -> Result<Vec<Page>, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::pages::pages(c, document_id)),
            Engine::Postgres(db) => db.snapshot(|tx| postgres::pages::pages(tx, document_id)),
        }
    }

    /// Starts indexing by `claim`'s task and says where to resume: the state
    /// (and staged rows) of another task are reset, those of this same task
    /// kept. `None`, and nothing written, when the claim no longer holds its
    /// task (as for every indexing write below: a worker that lost its claim
    /// must not publish the new owner's half-staged pages).
    pub fn begin_indexing(&self, claim: &Claim) -> Result<Option<IndexingState>, DbError> {
        let (doc, task) = (claim.document_id, claim.task_id);
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                if !sqlite::pages::claim_held(tx, claim)? {
                    return Ok(None);
                }
                sqlite::index::begin_indexing(tx, doc, task).map(Some)
            }),
            Engine::Postgres(db) => db.write(|tx| {
                if !postgres::pages::claim_held(tx, claim)? {
                    return Ok(None);
                }
                postgres::index::begin_indexing(tx, doc, task).map(Some)
            }),
        }
    }

    /// Stages a batch of normalised pages and records how far staging got, in
    /// one transaction. Staged pages are not searchable yet. Fenced: false
    /// when the claim is gone.
    pub fn stage_pages(
        &self,
        claim: &Claim,
        pages: &[(i64, String)],
        staged_through: i64,
        now: i64,
    ) -> Result<bool, DbError> {
        let doc = claim.document_id;
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                if !sqlite::pages::claim_held(tx, claim)? {
                    return Ok(false);
                }
                sqlite::index::stage_pages(tx, doc, pages, staged_through, now).map(|()| true)
            }),
            Engine::Postgres(db) => db.write(|tx| {
                if !postgres::pages::claim_held(tx, claim)? {
                    return Ok(false);
                }
                postgres::index::stage_pages(tx, doc, pages, staged_through, now).map(|()| true)
            }),
        }
    }

    /// Replaces the document's rows in the index with its staged pages, clears
    /// the staging and records the phase, all in one transaction: searches see
    /// the old rows or the new ones, never a mix. Returns the pages indexed;
    /// `None` when the claim is gone.
    pub fn publish_index(&self, claim: &Claim, now: i64) -> Result<Option<i64>, DbError> {
        let doc = claim.document_id;
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                if !sqlite::pages::claim_held(tx, claim)? {
                    return Ok(None);
                }
                sqlite::index::publish_index(tx, doc, now).map(Some)
            }),
            Engine::Postgres(db) => db.write(|tx| {
                if !postgres::pages::claim_held(tx, claim)? {
                    return Ok(None);
                }
                postgres::index::publish_index(tx, doc, now).map(Some)
            }),
        }
    }

    /// Records the last indexing phase as done; false when the claim is gone.
    pub fn finish_indexing(&self, claim: &Claim, now: i64) -> Result<bool, DbError> {
        let doc = claim.document_id;
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| {
                if !sqlite::pages::claim_held(tx, claim)? {
                    return Ok(false);
                }
                sqlite::index::finish_indexing(tx, doc, now).map(|()| true)
            }),
            Engine::Postgres(db) => db.write(|tx| {
                if !postgres::pages::claim_held(tx, claim)? {
                    return Ok(false);
                }
                postgres::index::finish_indexing(tx, doc, now).map(|()| true)
            }),
        }
    }

    /// Index rows of a document (for checks and tests).
    pub fn indexed_pages(&self, document_id: i64) -> Result<i64, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::index::indexed_pages(c, document_id)),
            Engine::Postgres(db) => {
                db.snapshot(|tx| postgres::index::indexed_pages(tx, document_id))
            }
        }
    }

    /// The text the index holds for a document's pages (normalised as
    /// indexed), by page number: what a search of the document can match.
    pub fn indexed_text(&self, document_id: i64) -> Result<Vec<(i64, String)>, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::index::indexed_text(c, document_id)),
            Engine::Postgres(db) => {
                db.snapshot(|tx| postgres::index::indexed_text(tx, document_id))
            }
        }
    }

    /// Makes the index use `stemming`, rebuilding it in one transaction when
    /// it was built with the other setting. Holds the write lock for as long
    /// as the rebuild takes. Returns the number of pages re-indexed, 0 if none.
    pub fn ensure_stemming(&self, stemming: Stemming) -> Result<usize, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.write(|tx| sqlite::index::ensure_stemming(tx, stemming)),
            Engine::Postgres(db) => db.write(|tx| postgres::index::ensure_stemming(tx, stemming)),
        }
    }

    /// True when the index was built with `stemming`.
    pub fn stemming_matches(&self, stemming: Stemming) -> Result<bool, DbError> {
        match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::index::tokenizer_matches(c, stemming)),
            Engine::Postgres(db) => {
                db.snapshot(|tx| postgres::index::stemming_matches(tx, stemming))
            }
        }
    }

    /// Copies this SQLite installation's documents, duplicates, tasks, pages
    /// (with their checkpoints) and index into the empty PostgreSQL database
    /// `target`, in one transaction there, read as of one moment here; checks
    /// each table's count. Returns the rows copied per table.
    pub fn copy_to(&self, target: &Db) -> Result<Vec<(&'static str, usize)>, CopyError> {
        let (Engine::Sqlite(from), Engine::Postgres(to)) = (self.db.engine(), target.engine())
        else {
            return Err(CopyError::Engines(
                "run it on a SQLite data dir (no database.url), with --to a postgres:// URL",
            ));
        };
        let config = postgres::search::config(self.stemming_matches(Stemming::Porter)?);
        to.write(|tx| {
            let rows = postgres::copy::rows_present(tx)?;
            if rows > 0 {
                return Err(CopyError::NotEmpty {
                    target: to.target().to_string(),
                    rows,
                });
            }
            postgres::copy::set_search_config(tx, config)?;
            let read = sqlite::copy::read_tables(from, |table, batch| {
                Ok(postgres::copy::insert(tx, table, &batch)?)
            })?;
            postgres::copy::advance_ids(tx)?;
            copy::TABLES
                .iter()
                .zip(read)
                .map(|(table, read)| {
                    let written = postgres::copy::count(tx, table)?;
                    if written != read as i64 {
                        return Err(CopyError::Mismatch {
                            table: table.name,
                            read,
                            written,
                        });
                    }
                    Ok((table.name, read))
                })
                .collect()
        })
    }

    /// Searches every indexed page: at most `limit` pages, most relevant
    /// first, newest document first on ties, and how many match in all.
    /// Fails only for a [`Query::Raw`] the engine cannot run
    /// ([`DbError::BadQuery`], saying why).
    pub fn search(
        &self,
        query: &Query,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Found<Hit>, DbError> {
        let mut found = match self.db.engine() {
            Engine::Sqlite(db) => db.read(|c| sqlite::search::search(c, query, filter, limit)),
            Engine::Postgres(db) => db.snapshot(|tx| {
                let config = postgres::index::search_config(tx)?;
                postgres::search::search(tx, query, filter, limit, &config)
            }),
        }?;
        for h in &mut found.hits {
            h.path = self.data_dir.join(&h.path);
        }
        Ok(found)
    }

    /// [`Store::search`] by document: at most `limit` documents, ranked by
    /// their best page, each with its number of matching pages and its other
    /// matching pages; and how many documents match in all (a lower bound,
    /// [`Found::at_least`], for a query matching a great many pages, of
    /// which an engine may rank only the newest: SQLite ranks 10,000).
    pub fn search_documents(
        &self,
        query: &Query,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Found<DocumentHit>, DbError> {
        let mut found = match self.db.engine() {
            Engine::Sqlite(db) => {
                db.read(|c| sqlite::search::search_documents(c, query, filter, limit))
            }
            Engine::Postgres(db) => db.snapshot(|tx| {
                let config = postgres::index::search_config(tx)?;
                postgres::search::search_documents(tx, query, filter, limit, &config)
            }),
        }?;
        for h in &mut found.hits {
            h.best.path = self.data_dir.join(&h.best.path);
        }
        Ok(found)
    }
}
