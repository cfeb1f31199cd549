//! Page text, the OCR task's checkpoint: each finished page is written with its
//! entry in `documents.ocr_details` in one short transaction, so a restarted
//! task knows exactly which pages are done.

use rusqlite::{OptionalExtension, named_params};
use serde::{Deserialize, Serialize};

use super::Store;
use crate::db::{DbError, write_tx};

/// Where a page's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageSource {
    /// The PDF's own text layer.
    Text,
    /// Tesseract.
    Ocr,
}

impl PageSource {
    fn as_str(self) -> &'static str {
        match self {
            PageSource::Text => "text",
            PageSource::Ocr => "ocr",
        }
    }
}

/// A page's text as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub number: i64,
    pub text: String,
    pub source: String,
    pub confidence: Option<f64>,
}

/// One page's entry in `documents.ocr_details.pages`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PageDetail {
    /// "done" or "failed".
    pub status: String,
    pub source: Option<PageSource>,
    pub chars: usize,
    pub confidence: Option<f64>,
    /// Raster images the page holds (embedded in a PDF page; 1 for an image file).
    pub images: usize,
    /// True when the page was rendered for OCR instead of OCR'ing its images.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rendered: bool,
    pub attempts: u32,
    pub error: Option<String>,
}

impl Store {
    /// Starts (or resumes) OCR of a document by task `task_id`: checkpoints
    /// left by the same task are kept, so it resumes; those of any other task
    /// (an earlier run, before `enqueue --reprocess`) are cleared, so it starts over.
    pub fn begin_ocr(&self, document_id: i64, task_id: i64, pages: i64) -> Result<(), DbError> {
        let mut c = self.db.conn()?;
        let tx = write_tx(&mut c)?;
        let owner: Option<i64> = tx.query_row(
            "SELECT json_extract(ocr_details, '$.task') FROM documents WHERE id = ?1",
            [document_id],
            |r| r.get(0),
        )?;
        if owner != Some(task_id) {
            tx.execute("DELETE FROM pages WHERE document_id = ?1", [document_id])?;
            tx.execute(
                "UPDATE documents SET ocr_details = json_object('task', ?2) WHERE id = ?1",
                rusqlite::params![document_id, task_id],
            )?;
        }
        tx.execute(
            "UPDATE documents SET page_count = ?2, ocr_details = json_set(ocr_details, '$.page_count', ?2) \
             WHERE id = ?1",
            rusqlite::params![document_id, pages],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Checkpoints one page: its text (if it has any) and its details, in one transaction.
    pub fn save_page(
        &self,
        document_id: i64,
        number: i64,
        text: Option<(&str, PageSource, Option<f64>)>,
        detail: &PageDetail,
        now: i64,
    ) -> Result<(), DbError> {
        let mut c = self.db.conn()?;
        let tx = write_tx(&mut c)?;
        if let Some((text, source, confidence)) = text {
            tx.prepare_cached(
                "INSERT INTO pages (document_id, page_number, text, source, confidence) \
                 VALUES (:doc, :n, :text, :source, :conf) \
                 ON CONFLICT (document_id, page_number) DO UPDATE SET \
                     text = excluded.text, source = excluded.source, confidence = excluded.confidence",
            )?
            .execute(named_params! {
                ":doc": document_id, ":n": number, ":text": text, ":source": source.as_str(), ":conf": confidence,
            })?;
        }
        let detail = serde_json::to_string(detail).expect("page detail serializes");
        // Only a page read counts as progress (the queue compares updated_at
        // with the claim time when a worker dies): a page that failed again
        // must not keep a task that dies every time alive for ever.
        tx.prepare_cached(
            "UPDATE documents SET updated_at = CASE WHEN :done THEN :now ELSE updated_at END, \
                 ocr_details = json_set(ocr_details, '$.pages.' || :n, json(:detail)) WHERE id = :doc",
        )?
        .execute(named_params! {
            ":now": now, ":n": number, ":detail": detail, ":doc": document_id,
            ":done": text.is_some(),
        })?;
        tx.commit()?;
        Ok(())
    }

    /// A page's recorded details, if it has been tried.
    pub fn page_detail(
        &self,
        document_id: i64,
        number: i64,
    ) -> Result<Option<PageDetail>, DbError> {
        let c = self.db.conn()?;
        let raw: Option<Option<String>> = c
            .prepare_cached(
                "SELECT json_extract(ocr_details, '$.pages.' || ?2) FROM documents WHERE id = ?1",
            )?
            .query_row(rusqlite::params![document_id, number], |r| r.get(0))
            .optional()?;
        Ok(raw.flatten().and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// A document's pages in order.
    pub fn pages(&self, document_id: i64) -> Result<Vec<Page>, DbError> {
        let c = self.db.conn()?;
        let mut st = c.prepare_cached(
            "SELECT page_number, text, source, confidence FROM pages WHERE document_id = ?1 ORDER BY page_number",
        )?;
        let rows = st.query_map([document_id], |r| {
            Ok(Page {
                number: r.get(0)?,
                text: r.get(1)?,
                source: r.get(2)?,
                confidence: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::store::{NewDocument, insert_document};

    fn updated_at(store: &Store, id: i64) -> i64 {
        let c = store.db().conn().unwrap();
        c.query_row(
            "SELECT updated_at FROM documents WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn only_a_page_read_counts_as_progress() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(Db::open(&dir.path().join("q.db"), 2).unwrap(), dir.path()).unwrap();
        let doc = NewDocument {
            name: "a.pdf",
            stored_path: "originals/a.pdf",
            size: 1,
            sha256: "a",
            kind: "pdf",
        };
        let id = insert_document(&store.db().conn().unwrap(), &doc, 10)
            .unwrap()
            .unwrap();
        let failed = PageDetail {
            status: "failed".into(),
            error: Some("took too long".into()),
            ..Default::default()
        };
        store.save_page(id, 1, None, &failed, 20).unwrap();
        assert_eq!(updated_at(&store, id), 10, "a failed page is not progress");
        let done = PageDetail {
            status: "done".into(),
            ..Default::default()
        };
        store
            .save_page(
                id,
                2,
                Some(("text", PageSource::Ocr, Some(90.0))),
                &done,
                30,
            )
            .unwrap();
        assert_eq!(updated_at(&store, id), 30);
        assert_eq!(store.page_detail(id, 1).unwrap().unwrap().status, "failed");
    }
}
