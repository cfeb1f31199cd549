//! The document store: the `documents`, `duplicates` and `pages` tables and the
//! files under `<data_dir>/originals/`. All SQL about documents lives here, as
//! the queue's lives in [`crate::queue`].

mod fts;
mod ingest;
mod pages;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Row, named_params};
use serde::Serialize;

use crate::db::{Db, DbError};

pub use fts::{Hit, SearchFilter};
pub use ingest::{IngestError, Ingested, Placement, ingest};
pub use pages::{Page, PageDetail, PageSource};

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
    pub status: String,
    pub error: Option<String>,
    pub ocr_details: serde_json::Value,
    pub indexing_details: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Documents and their files.
#[derive(Clone)]
pub struct Store {
    db: Db,
    data_dir: PathBuf,
}

const DOC_COLUMNS: &str = "id, original_name, stored_path, size, sha256, kind, page_count, status, \
    last_error, ocr_details, indexing_details, created_at, updated_at";

fn doc_from_row(r: &Row<'_>) -> rusqlite::Result<Document> {
    let json = |i: usize| -> rusqlite::Result<serde_json::Value> {
        let s: String = r.get(i)?;
        Ok(serde_json::from_str(&s).unwrap_or(serde_json::Value::Null))
    };
    Ok(Document {
        id: r.get(0)?,
        name: r.get(1)?,
        stored_path: r.get(2)?,
        size: r.get(3)?,
        sha256: r.get(4)?,
        kind: r.get(5)?,
        pages: r.get(6)?,
        status: r.get(7)?,
        error: r.get(8)?,
        ocr_details: json(9)?,
        indexing_details: json(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
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

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
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
        let c = self.db.conn()?;
        Ok(document_in(&c, id)?)
    }

    /// Documents, newest first, optionally only those with `status`.
    pub fn list(&self, status: Option<&str>) -> Result<Vec<Document>, DbError> {
        let c = self.db.conn()?;
        let mut st = c.prepare_cached(&format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC"
        ))?;
        let rows = st.query_map([status], doc_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The document with this content, if any.
    pub fn by_sha256(&self, sha: &str) -> Result<Option<Document>, DbError> {
        let c = self.db.conn()?;
        Ok(c.prepare_cached(&format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE sha256 = ?1"
        ))?
        .query_row([sha], doc_from_row)
        .optional()?)
    }

    /// How many dropped files turned out to be copies of document `id`.
    pub fn count_duplicates_of(&self, id: i64) -> Result<i64, DbError> {
        let c = self.db.conn()?;
        Ok(c.query_row(
            "SELECT count(*) FROM duplicates WHERE document_id = ?1",
            [id],
            |r| r.get(0),
        )?)
    }
}

/// Loads one document on a given connection.
pub(crate) fn document_in(c: &Connection, id: i64) -> rusqlite::Result<Option<Document>> {
    c.prepare_cached(&format!(
        "SELECT {DOC_COLUMNS} FROM documents WHERE id = ?1"
    ))?
    .query_row([id], doc_from_row)
    .optional()
}

/// A new document's row.
pub(crate) struct NewDocument<'a> {
    pub name: &'a str,
    pub stored_path: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub kind: &'a str,
}

/// Inserts a document; `Ok(None)` when its content is already a document.
pub(crate) fn insert_document(
    c: &Connection,
    d: &NewDocument<'_>,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    let n = c
        .prepare_cached(
            "INSERT INTO documents (original_name, stored_path, size, sha256, kind, created_at, updated_at) \
             VALUES (:name, :path, :size, :sha, :kind, :now, :now) ON CONFLICT (sha256) DO NOTHING",
        )?
        .execute(named_params! {
            ":name": d.name, ":path": d.stored_path, ":size": d.size, ":sha": d.sha256,
            ":kind": d.kind, ":now": now,
        })?;
    Ok((n == 1).then(|| c.last_insert_rowid()))
}

/// Records a file whose content was already document `document_id`.
pub(crate) fn insert_duplicate(
    c: &Connection,
    document_id: i64,
    name: &str,
    stored_path: &str,
    now: i64,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO duplicates (document_id, original_name, stored_path, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![document_id, name, stored_path, now])?;
    Ok(())
}
