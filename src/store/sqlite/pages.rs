//! Page text and OCR checkpoints on SQLite: the `pages` table, and each
//! page's entry in `documents.ocr_details` (a JSON object).

use rusqlite::{Connection, OptionalExtension, named_params, params};

use crate::db::DbError;
use crate::db::sqlite::parse_col;
use crate::queue::Claim;
use crate::store::{Layout, Page, PageDetail, PageReading, PageSource};

/// Starts (or resumes) OCR of a document by task `task_id`: checkpoints
/// left by the same task are kept; those of any other task are cleared.
pub(crate) fn begin_ocr(
    tx: &Connection,
    document_id: i64,
    task_id: i64,
    pages: i64,
) -> Result<(), DbError> {
    let owner: Option<i64> = tx.query_row(
        "SELECT json_extract(ocr_details, '$.task') FROM documents WHERE id = ?1",
        [document_id],
        |r| r.get(0),
    )?;
    if owner != Some(task_id) {
        tx.execute("DELETE FROM pages WHERE document_id = ?1", [document_id])?;
        tx.execute(
            "UPDATE documents SET ocr_details = json_object('task', ?2), poor_pages = 0 \
             WHERE id = ?1",
            params![document_id, task_id],
        )?;
    }
    tx.execute(
        "UPDATE documents SET page_count = ?2, ocr_details = json_set(ocr_details, '$.page_count', ?2) \
         WHERE id = ?1",
        params![document_id, pages],
    )?;
    Ok(())
}

/// Writes what was read of one page (if anything) and its details, if
/// `claim` still holds its task; false (nothing written) when it does not.
/// True while `claim` still holds its task. Inside the caller's write
/// transaction (SQLite's one writer), nothing can take the claim between
/// this check and the writes after it.
pub(crate) fn claim_held(tx: &Connection, claim: &Claim) -> Result<bool, DbError> {
    Ok(tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM task_queue \
             WHERE id = ?1 AND status = 'claimed' AND claimed_by = ?2)",
        )?
        .query_row(params![claim.task_id, claim.worker], |r| r.get(0))?)
}

pub(crate) fn save_page(
    tx: &Connection,
    claim: &Claim,
    number: i64,
    reading: Option<&PageReading<'_>>,
    detail: &PageDetail,
    now: i64,
) -> Result<bool, DbError> {
    if !claim_held(tx, claim)? {
        return Ok(false);
    }
    let document_id = claim.document_id;
    if let Some(r) = reading {
        let layout = r
            .layout
            .map(|l| serde_json::to_string(l).expect("a layout serializes"));
        tx.prepare_cached(
            "INSERT INTO pages (document_id, page_number, text, source, confidence, layout) \
             VALUES (:doc, :n, :text, :source, :conf, :layout) \
             ON CONFLICT (document_id, page_number) DO UPDATE SET \
                 text = excluded.text, source = excluded.source, confidence = excluded.confidence, \
                 layout = excluded.layout",
        )?
        .execute(named_params! {
            ":doc": document_id, ":n": number, ":text": r.text, ":source": r.source.as_str(),
            ":conf": r.confidence, ":layout": layout,
        })?;
    }
    let poor = detail.poor;
    let detail = serde_json::to_string(detail).expect("page detail serializes");
    // poor_pages follows the page's poor flag: minus the old, plus the new
    // (both read before the SET applies).
    tx.prepare_cached(
        "UPDATE documents SET updated_at = :now, \
             poor_pages = poor_pages + :poor \
                 - coalesce(json_extract(ocr_details, '$.pages.' || :n || '.poor'), 0), \
             ocr_details = json_set(ocr_details, '$.pages.' || :n, json(:detail)) WHERE id = :doc",
    )?
    .execute(named_params! {
        ":now": now, ":n": number, ":detail": detail, ":doc": document_id, ":poor": poor,
    })?;
    Ok(true)
}

/// A page's recorded details, if it has been tried.
pub(crate) fn page_detail(
    c: &Connection,
    document_id: i64,
    number: i64,
) -> Result<Option<PageDetail>, DbError> {
    let raw: Option<Option<String>> = c
        .prepare_cached(
            "SELECT json_extract(ocr_details, '$.pages.' || ?2) FROM documents WHERE id = ?1",
        )?
        .query_row(params![document_id, number], |r| r.get(0))
        .optional()?;
    Ok(raw.flatten().and_then(|s| serde_json::from_str(&s).ok()))
}

/// A document's pages in order.
pub(crate) fn pages(c: &Connection, document_id: i64) -> Result<Vec<Page>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT page_number, text, source, confidence FROM pages WHERE document_id = ?1 \
         ORDER BY page_number",
    )?;
    let rows = st.query_map([document_id], |r| {
        Ok(Page {
            number: r.get(0)?,
            text: r.get(1)?,
            source: parse_col(r, 2)?,
            confidence: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Each page's source and word boxes, in page order: no boxes for pages
/// read from a text layer (and pages OCR'd before boxes were kept). A
/// layout that does not parse counts as none.
pub(crate) fn layouts(
    c: &Connection,
    document_id: i64,
) -> Result<Vec<(i64, PageSource, Option<Layout>)>, DbError> {
    let mut st = c.prepare_cached(
        "SELECT page_number, source, layout FROM pages WHERE document_id = ?1 \
         ORDER BY page_number",
    )?;
    let rows = st.query_map([document_id], |r| {
        let raw: Option<String> = r.get(2)?;
        Ok((
            r.get(0)?,
            parse_col(r, 1)?,
            raw.and_then(|s| serde_json::from_str(&s).ok()),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use crate::db::Db;
    use crate::queue::{Policy, Priority, Queue};
    use crate::store::{
        Layout, NewDocument, PageDetail, PageReading, PageSource, PageStatus, Store,
    };

    #[test]
    fn a_page_is_saved_with_its_details_and_a_failed_page_without_text() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("q.db"), 2).unwrap();
        let store = Store::open(db.clone(), dir.path()).unwrap();
        let queue = Queue::new(db, Policy::default());
        let doc = NewDocument {
            name: "a.pdf",
            stored_path: "originals/a.pdf",
            size: 1,
            sha256: "a",
            kind: "pdf",
        };
        let (id, _) = queue
            .create_document_with_task(&doc, Priority::Normal)
            .unwrap()
            .unwrap();
        let claim = queue.claim("w", 1).unwrap().remove(0);
        assert!(store.begin_ocr(&claim, 2).unwrap());
        let failed = PageDetail {
            status: PageStatus::Failed,
            error: Some("took too long".into()),
            ..Default::default()
        };
        assert!(store.save_page(&claim, 1, None, &failed, 20).unwrap());
        let done = PageDetail::default();
        let layout = Layout::from_tsv(
            "4\t1\t1\t1\t1\t0\t1\t2\t3\t4\t-1\t\n5\t1\t1\t1\t1\t1\t1\t2\t3\t4\t90\ttext\n",
        );
        let reading = PageReading {
            text: "text",
            source: PageSource::Ocr,
            confidence: Some(90.0),
            layout: Some(&layout),
        };
        assert!(
            store
                .save_page(&claim, 2, Some(&reading), &done, 30)
                .unwrap()
        );
        assert_eq!(store.page_detail(id, 1).unwrap().unwrap(), failed);
        assert_eq!(store.page_detail(id, 2).unwrap().unwrap(), done);
        let pages = store.pages(id).unwrap();
        assert_eq!(pages.len(), 1);
        assert_eq!((pages[0].number, pages[0].source), (2, PageSource::Ocr));
        assert_eq!(
            store.layouts(id).unwrap(),
            vec![(2, PageSource::Ocr, Some(layout.clone()))]
        );

        // A claim that no longer holds the task writes nothing.
        queue.cancel(claim.task_id).unwrap();
        let late = PageReading {
            text: "late",
            ..reading
        };
        assert!(!store.save_page(&claim, 2, Some(&late), &done, 40).unwrap());
        assert!(!store.save_page(&claim, 1, Some(&late), &done, 40).unwrap());
        assert_eq!(store.pages(id).unwrap()[0].text, "text");
        assert_eq!(store.page_detail(id, 1).unwrap().unwrap(), failed);
    }
}
