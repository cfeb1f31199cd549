//! The full-text index on SQLite (an FTS5 table, `page_index`): staging
//! normalised pages, swapping a document's rows in one transaction, recording
//! indexing phases in `documents.indexing_details`, and the tokenizer that
//! `index.stemming` picks.

use rusqlite::{Connection, params};

use crate::config::Stemming;
use crate::db::DbError;
use crate::store::{IndexPhase, IndexingState};

/// Rows of a document in `page_index` are `id * ROWID_STRIDE + page`.
pub(crate) const ROWID_STRIDE: i64 = 1_000_000;

/// Reads the indexing phase and staging mark of a document.
fn state(tx: &Connection, document_id: i64) -> Result<IndexingState, DbError> {
    let (phase, staged): (Option<String>, Option<i64>) = tx.query_row(
        "SELECT json_extract(indexing_details, '$.phase'), json_extract(indexing_details, '$.staged') \
         FROM documents WHERE id = ?1",
        [document_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(IndexingState {
        phase: phase
            .and_then(|p| p.parse().ok())
            .unwrap_or(IndexPhase::Stage),
        staged: staged.unwrap_or(0),
    })
}

/// Starts indexing by task `task_id`: the details (and staged rows) of another
/// task are reset, those of this same task kept, so it resumes.
pub(crate) fn begin_indexing(
    tx: &Connection,
    document_id: i64,
    task_id: i64,
) -> Result<IndexingState, DbError> {
    let owner: Option<i64> = tx.query_row(
        "SELECT json_extract(indexing_details, '$.task') FROM documents WHERE id = ?1",
        [document_id],
        |r| r.get(0),
    )?;
    if owner != Some(task_id) {
        tx.execute(
            "DELETE FROM index_staging WHERE document_id = ?1",
            [document_id],
        )?;
        tx.execute(
            "UPDATE documents SET indexing_details = json_object('task', ?2, 'phase', ?3, 'staged', 0) \
             WHERE id = ?1",
            params![document_id, task_id, IndexPhase::Stage.as_str()],
        )?;
    }
    state(tx, document_id)
}

/// Stages a batch of normalised pages and records how far staging got.
pub(crate) fn stage_pages(
    tx: &Connection,
    document_id: i64,
    pages: &[(i64, String)],
    staged_through: i64,
    now: i64,
) -> Result<(), DbError> {
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO index_staging (document_id, page_number, text) VALUES (?1, ?2, ?3)",
    )?;
    for (n, text) in pages {
        st.execute(params![document_id, n, text])?;
    }
    tx.execute(
        "UPDATE documents SET updated_at = ?3, \
             indexing_details = json_set(indexing_details, '$.staged', ?2) WHERE id = ?1",
        params![document_id, staged_through, now],
    )?;
    Ok(())
}

/// Replaces the document's rows in the index with its staged pages, clears
/// the staging and records the phase; returns the pages indexed.
pub(crate) fn publish_index(tx: &Connection, document_id: i64, now: i64) -> Result<i64, DbError> {
    let lo = document_id * ROWID_STRIDE;
    tx.prepare_cached("DELETE FROM page_index WHERE rowid BETWEEN ?1 AND ?2")?
        .execute([lo, lo + ROWID_STRIDE - 1])?;
    let n = tx
        .prepare_cached(
            "INSERT INTO page_index (rowid, text, document_id, page_number) \
             SELECT ?1 + page_number, text, document_id, page_number FROM index_staging \
             WHERE document_id = ?2 ORDER BY page_number",
        )?
        .execute([lo, document_id])?;
    tx.execute(
        "DELETE FROM index_staging WHERE document_id = ?1",
        [document_id],
    )?;
    tx.execute(
        "UPDATE documents SET updated_at = ?3, indexing_details = \
             json_set(indexing_details, '$.phase', ?4, '$.indexed_pages', ?2) WHERE id = ?1",
        params![document_id, n as i64, now, IndexPhase::Finalize.as_str()],
    )?;
    Ok(n as i64)
}

/// Records the last phase as done.
pub(crate) fn finish_indexing(tx: &Connection, document_id: i64, now: i64) -> Result<(), DbError> {
    tx.execute(
        "UPDATE documents SET updated_at = ?2, \
             indexing_details = json_set(indexing_details, '$.phase', ?3) WHERE id = ?1",
        params![document_id, now, IndexPhase::Done.as_str()],
    )?;
    Ok(())
}

/// Index rows of a document.
pub(crate) fn indexed_pages(c: &Connection, document_id: i64) -> Result<i64, DbError> {
    let lo = document_id * ROWID_STRIDE;
    Ok(c.query_row(
        "SELECT count(*) FROM page_index WHERE rowid BETWEEN ?1 AND ?2",
        [lo, lo + ROWID_STRIDE - 1],
        |r| r.get(0),
    )?)
}

/// The indexed text of a document's pages, by page.
pub(crate) fn indexed_text(
    c: &Connection,
    document_id: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let lo = document_id * ROWID_STRIDE;
    let mut st = c.prepare_cached(
        "SELECT page_number, text FROM page_index WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid",
    )?;
    let rows = st.query_map([lo, lo + ROWID_STRIDE - 1], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Rebuilds the index with the tokenizer for `stemming` unless it has it
/// already (FTS5 fixes the tokenizer when the table is made). Returns the
/// number of pages re-indexed, 0 if none.
pub(crate) fn ensure_stemming(tx: &Connection, stemming: Stemming) -> Result<usize, DbError> {
    if tokenizer_matches(tx, stemming)? {
        return Ok(0);
    }
    let want = tokenizer(stemming);
    // The delete trigger names page_index; it is set aside while the
    // table is swapped (a rename checks every trigger still resolves).
    let trigger: String = tx.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'documents_delete_index'",
        [],
        |r| r.get(0),
    )?;
    tx.execute_batch(&format!(
        "DROP TRIGGER documents_delete_index;
         CREATE VIRTUAL TABLE page_index_new USING fts5 (
             text, document_id UNINDEXED, page_number UNINDEXED, tokenize = '{want}');
         INSERT INTO page_index_new (rowid, text, document_id, page_number)
             SELECT rowid, text, document_id, page_number FROM page_index;
         DROP TABLE page_index;
         ALTER TABLE page_index_new RENAME TO page_index;
         {trigger};"
    ))?;
    let n: i64 = tx.query_row("SELECT count(*) FROM page_index", [], |r| r.get(0))?;
    Ok(n as usize)
}

/// The FTS5 tokenizer for `stemming`.
fn tokenizer(stemming: Stemming) -> &'static str {
    match stemming {
        Stemming::None => "unicode61 remove_diacritics 2",
        Stemming::Porter => "porter unicode61 remove_diacritics 2",
    }
}

/// True when `page_index` was created with the tokenizer for `stemming`.
pub(crate) fn tokenizer_matches(c: &Connection, stemming: Stemming) -> Result<bool, DbError> {
    let sql: String = c.query_row(
        "SELECT sql FROM sqlite_master WHERE name = 'page_index'",
        [],
        |r| r.get(0),
    )?;
    Ok(sql.contains(&format!("'{}'", tokenizer(stemming))))
}
