//! The full-text index's SQL: staging normalised pages, swapping a document's
//! rows in one transaction, recording indexing phases, and searching.

use rusqlite::named_params;
use serde::Serialize;

use super::Store;
use crate::config::Stemming;
use crate::db::{DbError, write_tx};

/// Rows of a document in `page_index` are `id * ROWID_STRIDE + page`.
const ROWID_STRIDE: i64 = 1_000_000;

/// One search hit.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: i64,
    pub name: String,
    pub page: i64,
    /// The matched passage, matched words between `\x02` and `\x03`.
    pub snippet: String,
    /// BM25 relevance; higher is better.
    pub score: f64,
    pub created_at: i64,
}

/// Filters for [`Store::search`].
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub status: Option<String>,
}

impl Store {
    /// The recorded indexing details of a document.
    pub fn indexing_details(&self, document_id: i64) -> Result<serde_json::Value, DbError> {
        let c = self.db.conn()?;
        let s: String = c.query_row(
            "SELECT indexing_details FROM documents WHERE id = ?1",
            [document_id],
            |r| r.get(0),
        )?;
        Ok(serde_json::from_str(&s).unwrap_or_default())
    }

    /// Starts indexing by task `task_id`: details of another task are reset
    /// (with its staged rows), details of this same task kept, so it resumes.
    pub fn begin_indexing(
        &self,
        document_id: i64,
        task_id: i64,
    ) -> Result<serde_json::Value, DbError> {
        let mut c = self.db.conn()?;
        let tx = write_tx(&mut c)?;
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
                "UPDATE documents SET indexing_details = json_object('task', ?2, 'phase', 'stage', 'staged', 0) \
                 WHERE id = ?1",
                rusqlite::params![document_id, task_id],
            )?;
        }
        let s: String = tx.query_row(
            "SELECT indexing_details FROM documents WHERE id = ?1",
            [document_id],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(serde_json::from_str(&s).unwrap_or_default())
    }

    /// Stages a batch of normalised pages and records how far staging got, in
    /// one transaction.
    pub fn stage_pages(
        &self,
        document_id: i64,
        pages: &[(i64, String)],
        staged_through: i64,
        now: i64,
    ) -> Result<(), DbError> {
        let mut c = self.db.conn()?;
        let tx = write_tx(&mut c)?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO index_staging (document_id, page_number, text) VALUES (?1, ?2, ?3)",
            )?;
            for (n, text) in pages {
                st.execute(rusqlite::params![document_id, n, text])?;
            }
        }
        tx.execute(
            "UPDATE documents SET updated_at = ?3, \
                 indexing_details = json_set(indexing_details, '$.staged', ?2) WHERE id = ?1",
            rusqlite::params![document_id, staged_through, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Replaces the document's rows in the index with its staged pages, clears
    /// the staging, and records the phase, all in one transaction.
    pub fn publish_index(&self, document_id: i64, now: i64) -> Result<i64, DbError> {
        let mut c = self.db.conn()?;
        let tx = write_tx(&mut c)?;
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
                 json_set(indexing_details, '$.phase', 'finalize', '$.indexed_pages', ?2) WHERE id = ?1",
            rusqlite::params![document_id, n as i64, now],
        )?;
        tx.commit()?;
        Ok(n as i64)
    }

    /// Records the last phase done and the document as indexed.
    pub fn finish_indexing(&self, document_id: i64, now: i64) -> Result<(), DbError> {
        let mut c = self.db.conn()?;
        let tx = write_tx(&mut c)?;
        tx.execute(
            "UPDATE documents SET status = 'indexed', updated_at = ?2, \
                 indexing_details = json_set(indexing_details, '$.phase', 'done') WHERE id = ?1",
            rusqlite::params![document_id, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Index rows of a document (for checks and tests).
    pub fn indexed_pages(&self, document_id: i64) -> Result<i64, DbError> {
        let c = self.db.conn()?;
        let lo = document_id * ROWID_STRIDE;
        Ok(c.query_row(
            "SELECT count(*) FROM page_index WHERE rowid BETWEEN ?1 AND ?2",
            [lo, lo + ROWID_STRIDE - 1],
            |r| r.get(0),
        )?)
    }

    /// Makes the index use `stemming`, rebuilding it in one transaction when
    /// it was built with the other setting (FTS5 fixes the tokenizer when the
    /// table is made). Returns the number of pages re-indexed, 0 if none.
    pub fn ensure_stemming(&self, stemming: Stemming) -> Result<usize, DbError> {
        let mut c = self.db.conn()?;
        let tx = write_tx(&mut c)?;
        if tokenizer_matches(&tx, stemming)? {
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
        tx.commit()?;
        Ok(n as usize)
    }

    /// True when the index was built with `stemming`.
    pub fn stemming_matches(&self, stemming: Stemming) -> Result<bool, DbError> {
        let c = self.db.conn()?;
        tokenizer_matches(&c, stemming)
    }

    /// Runs an FTS5 `MATCH` expression: best BM25 first, newest document
    /// (highest id) first on ties.
    ///
    /// Two steps, because `snippet()` is costly: the best `limit` rows are
    /// picked by rank alone (joining documents only when a filter needs it),
    /// then snippets are made for those rows only.
    pub fn search(
        &self,
        fts_query: &str,
        filter: &SearchFilter,
        limit: usize,
    ) -> Result<Vec<Hit>, DbError> {
        let c = self.db.conn()?;
        let filtered =
            filter.since_ms.is_some() || filter.until_ms.is_some() || filter.status.is_some();
        let top = if filtered {
            "SELECT p.rowid AS r, p.rank AS rank FROM page_index p \
             JOIN documents d ON d.id = p.document_id \
             WHERE page_index MATCH :q \
               AND (:since IS NULL OR d.created_at >= :since) \
               AND (:until IS NULL OR d.created_at < :until) \
               AND (:status IS NULL OR d.status = :status) \
             ORDER BY p.rank, p.rowid / 1000000 DESC, p.rowid LIMIT :limit"
        } else {
            "SELECT rowid AS r, rank FROM page_index WHERE page_index MATCH :q \
             AND :since IS NULL AND :until IS NULL AND :status IS NULL \
             ORDER BY rank, rowid / 1000000 DESC, rowid LIMIT :limit"
        };
        let mut st = c.prepare_cached(&format!(
            "WITH top AS ({top}) \
             SELECT d.id, d.original_name, p.page_number, \
                 snippet(page_index, 0, char(2), char(3), '…', 16), top.rank, d.created_at \
             FROM top JOIN page_index p ON p.rowid = top.r JOIN documents d ON d.id = p.document_id \
             WHERE page_index MATCH :q \
             ORDER BY top.rank, d.id DESC, p.page_number"
        ))?;
        let rows = st.query_map(
            named_params! {
                ":q": fts_query, ":since": filter.since_ms, ":until": filter.until_ms,
                ":status": filter.status, ":limit": limit as i64,
            },
            |r| {
                Ok(Hit {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    page: r.get(2)?,
                    snippet: r.get(3)?,
                    score: -r.get::<_, f64>(4)?,
                    created_at: r.get(5)?,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The FTS5 tokenizer for `stemming`.
fn tokenizer(stemming: Stemming) -> &'static str {
    match stemming {
        Stemming::None => "unicode61 remove_diacritics 2",
        Stemming::Porter => "porter unicode61 remove_diacritics 2",
    }
}

/// True when `page_index` was created with the tokenizer for `stemming`.
fn tokenizer_matches(c: &rusqlite::Connection, stemming: Stemming) -> Result<bool, DbError> {
    let sql: String = c.query_row(
        "SELECT sql FROM sqlite_master WHERE name = 'page_index'",
        [],
        |r| r.get(0),
    )?;
    Ok(sql.contains(&format!("'{}'", tokenizer(stemming))))
}
