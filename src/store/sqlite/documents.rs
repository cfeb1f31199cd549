//! Documents and duplicates on SQLite: the `documents` and `duplicates` tables.

use rusqlite::{Connection, OptionalExtension, Row, named_params, params};

use crate::db::DbError;
use crate::db::sqlite::parse_col;
use crate::store::{Document, DocumentStatus, NewDocument};

/// The columns [`doc_from_row`] reads, in order.
const DOC_COLUMNS: &str = "id, original_name, stored_path, size, sha256, kind, page_count, status, \
    last_error, ocr_details, indexing_details, created_at, updated_at, searchable_pdf, poor_pages";

/// Reads a [`Document`] from a row selected with [`DOC_COLUMNS`].
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
        status: parse_col(r, 7)?,
        error: r.get(8)?,
        ocr_details: json(9)?,
        indexing_details: json(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        searchable_pdf: r.get(13)?,
        poor_pages: r.get(14)?,
    })
}

/// Deletes a document's row; its tasks, pages, duplicates and staged index
/// rows go with it (ON DELETE CASCADE), its index rows by trigger. False
/// when there was no such document.
pub(crate) fn remove(tx: &Connection, id: i64) -> Result<bool, DbError> {
    Ok(tx.execute("DELETE FROM documents WHERE id = ?1", [id])? == 1)
}

/// True when a document other than `id` records `path` as its searchable PDF.
pub(crate) fn pdf_taken_by_other(c: &Connection, id: i64, path: &str) -> Result<bool, DbError> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM documents WHERE searchable_pdf = ?1 AND id != ?2)",
        params![path, id],
        |r| r.get(0),
    )?)
}

/// Records where the document's searchable PDF was written.
pub(crate) fn set_searchable_pdf(tx: &Connection, id: i64, path: &str) -> Result<(), DbError> {
    tx.execute(
        "UPDATE documents SET searchable_pdf = ?2 WHERE id = ?1",
        params![id, path],
    )?;
    Ok(())
}

/// One document, or `None`.
pub(crate) fn document(c: &Connection, id: i64) -> Result<Option<Document>, DbError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {DOC_COLUMNS} FROM documents WHERE id = ?1"
    ))?
    .query_row([id], doc_from_row)
    .optional()?)
}

/// Documents, newest first, optionally only those with `status`.
pub(crate) fn list(
    c: &Connection,
    status: Option<DocumentStatus>,
) -> Result<Vec<Document>, DbError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {DOC_COLUMNS} FROM documents WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC"
    ))?;
    let rows = st.query_map([status.map(|s| s.as_str())], doc_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The newest `limit` documents (the limit written in, not bound: SQLite
/// re-prepares a statement whose LIMIT is bound).
pub(crate) fn newest(
    c: &Connection,
    status: Option<DocumentStatus>,
    limit: usize,
) -> Result<Vec<Document>, DbError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {DOC_COLUMNS} FROM documents WHERE (?1 IS NULL OR status = ?1) \
         ORDER BY id DESC LIMIT {limit}"
    ))?;
    let rows = st.query_map([status.map(|s| s.as_str())], doc_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The document with this content, if any.
pub(crate) fn by_sha256(c: &Connection, sha: &str) -> Result<Option<Document>, DbError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {DOC_COLUMNS} FROM documents WHERE sha256 = ?1"
    ))?
    .query_row([sha], doc_from_row)
    .optional()?)
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

/// How many dropped files turned out to be copies of document `id`.
pub(crate) fn count_duplicates_of(c: &Connection, id: i64) -> Result<i64, DbError> {
    Ok(c.query_row(
        "SELECT count(*) FROM duplicates WHERE document_id = ?1",
        [id],
        |r| r.get(0),
    )?)
}

/// Records a file whose content was already document `document_id`.
pub(crate) fn insert_duplicate(
    c: &Connection,
    document_id: i64,
    name: &str,
    stored_path: &str,
    now: i64,
) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO duplicates (document_id, original_name, stored_path, created_at) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![document_id, name, stored_path, now])?;
    Ok(())
}
