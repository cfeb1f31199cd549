//! Page text and OCR checkpoints on PostgreSQL: the `pages` table and
//! `documents.ocr_details` (jsonb), as `store/sqlite/pages.rs` keeps them.

use postgres::GenericClient;
use postgres::types::Type;

use crate::db::DbError;
use crate::db::postgres::PgError;
use crate::queue::Claim;
use crate::store::{Layout, Page, PageDetail, PageReading, PageSource};

fn parse<T: std::str::FromStr<Err = String>>(value: &str) -> Result<T, DbError> {
    value
        .parse()
        .map_err(|e| DbError::Postgres(PgError::Unexpected(e)))
}

/// Starts OCR by task `task_id`: another task's checkpoints (and pages) are
/// dropped, this same task's kept, so it resumes; records the page count.
pub fn begin_ocr(
    tx: &mut impl GenericClient,
    document_id: i64,
    task_id: i64,
    pages: i64,
) -> Result<(), DbError> {
    let owner: Option<i64> = tx
        .query_typed_one(
            "SELECT (ocr_details ->> 'task')::bigint FROM documents WHERE id = $1",
            &[(&document_id, Type::INT8)],
        )
        .map_err(PgError::Statement)?
        .get(0);
    if owner != Some(task_id) {
        tx.execute_typed(
            "DELETE FROM pages WHERE document_id = $1",
            &[(&document_id, Type::INT8)],
        )
        .map_err(PgError::Statement)?;
        tx.execute_typed(
            "UPDATE documents SET ocr_details = jsonb_build_object('task', $2), poor_pages = 0 \
             WHERE id = $1",
            &[(&document_id, Type::INT8), (&task_id, Type::INT8)],
        )
        .map_err(PgError::Statement)?;
    }
    tx.execute_typed(
        "UPDATE documents SET page_count = $2, \
             ocr_details = ocr_details || jsonb_build_object('page_count', $2) WHERE id = $1",
        &[(&document_id, Type::INT8), (&pages, Type::INT8)],
    )
    .map_err(PgError::Statement)?;
    Ok(())
}

/// True while `claim` still holds its task, and then until the caller's
/// transaction ends: the task row is locked (`FOR SHARE`), so a release or
/// cancel by another host waits for this transaction, or this one sees it
/// and the caller writes nothing. A host cut off past `stale_timeout`
/// cannot overwrite the work of the one that took its task over.
pub fn claim_held(tx: &mut impl GenericClient, claim: &Claim) -> Result<bool, DbError> {
    let held = tx
        .query_typed_opt(
            "SELECT 1 FROM task_queue WHERE id = $1 AND status = 'claimed' AND claimed_by = $2 \
             FOR SHARE",
            &[(&claim.task_id, Type::INT8), (&claim.worker, Type::TEXT)],
        )
        .map_err(PgError::Statement)?;
    Ok(held.is_some())
}

/// Saves one page's reading (if any) and its checkpoint, fenced by the
/// claim: `Ok(false)`, and nothing written, when the claim is no longer
/// held (a host that lost it cannot overwrite the new owner's pages).
pub fn save_page(
    tx: &mut impl GenericClient,
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
        tx.execute_typed(
            "INSERT INTO pages (document_id, page_number, text, source, confidence, layout) \
             VALUES ($1, $2, $3, $4, $5, $6::text::jsonb) \
             ON CONFLICT (document_id, page_number) DO UPDATE SET \
                 text = excluded.text, source = excluded.source, \
                 confidence = excluded.confidence, layout = excluded.layout",
            &[
                (&document_id, Type::INT8),
                (&number, Type::INT8),
                (&super::without_nul(r.text).as_ref(), Type::TEXT),
                (&r.source.as_str(), Type::TEXT),
                (&r.confidence, Type::FLOAT8),
                (&layout, Type::TEXT),
            ],
        )
        .map_err(PgError::Statement)?;
    }
    let poor = i64::from(detail.poor);
    let detail = serde_json::to_string(detail).expect("page detail serializes");
    tx.execute_typed(
        "UPDATE documents SET updated_at = $1, \
             poor_pages = poor_pages + $2 - CASE WHEN coalesce( \
                 (ocr_details -> 'pages' -> ($3::bigint)::text ->> 'poor')::boolean, false) \
                 THEN 1 ELSE 0 END, \
             ocr_details = ocr_details || jsonb_build_object('pages', \
                 coalesce(ocr_details -> 'pages', '{}'::jsonb) \
                 || jsonb_build_object(($3::bigint)::text, $4::text::jsonb)) \
         WHERE id = $5",
        &[
            (&now, Type::INT8),
            (&poor, Type::INT8),
            (&number, Type::INT8),
            (&detail, Type::TEXT),
            (&document_id, Type::INT8),
        ],
    )
    .map_err(PgError::Statement)?;
    Ok(true)
}

/// One page's checkpoint, if recorded.
pub fn page_detail(
    c: &mut impl GenericClient,
    document_id: i64,
    number: i64,
) -> Result<Option<PageDetail>, DbError> {
    let row = c
        .query_typed_opt(
            "SELECT (ocr_details -> 'pages' -> ($2::bigint)::text)::text FROM documents WHERE id = $1",
            &[(&document_id, Type::INT8), (&number, Type::INT8)],
        )
        .map_err(PgError::Statement)?;
    let raw: Option<String> = row.and_then(|r| r.get(0));
    Ok(raw.and_then(|s| serde_json::from_str(&s).ok()))
}

/// A document's pages with text, in order.
pub fn pages(c: &mut impl GenericClient, document_id: i64) -> Result<Vec<Page>, DbError> {
    let rows = c
        .query_typed(
            "SELECT page_number, text, source, confidence FROM pages WHERE document_id = $1 \
             ORDER BY page_number",
            &[(&document_id, Type::INT8)],
        )
        .map_err(PgError::Statement)?;
    rows.iter()
        .map(|r| {
            Ok(Page {
                number: r.get(0),
                text: r.get(1),
                source: parse(r.get(2))?,
                confidence: r.get(3),
            })
        })
        .collect()
}

/// Each page's source and word boxes, in page order.
pub fn layouts(
    c: &mut impl GenericClient,
    document_id: i64,
) -> Result<Vec<(i64, PageSource, Option<Layout>)>, DbError> {
    let rows = c
        .query_typed(
            "SELECT page_number, source, layout::text FROM pages WHERE document_id = $1 \
             ORDER BY page_number",
            &[(&document_id, Type::INT8)],
        )
        .map_err(PgError::Statement)?;
    rows.iter()
        .map(|r| {
            let raw: Option<String> = r.get(2);
            Ok((
                r.get(0),
                parse(r.get(1))?,
                raw.and_then(|s| serde_json::from_str(&s).ok()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::postgres::testing::fixture;
    use crate::queue::postgres::{admin, claim, enqueue};
    use crate::queue::{Priority, TaskType};
    use crate::store::PageStatus;

    #[test]
    fn pages_and_checkpoints_are_saved_while_the_claim_is_held_and_only_then() {
        let f = fixture();
        let doc = f.document("a");
        let mut c = f.conn();
        enqueue::do_enqueue(&mut *c, doc, TaskType::Ocr, Priority::High, 3, 0).unwrap();
        let claim = claim::do_claim(&mut *c, "w", 1, Some(0)).unwrap().remove(0);
        begin_ocr(&mut *c, doc, claim.task_id, 2).unwrap();
        let failed = PageDetail {
            status: PageStatus::Failed,
            error: Some("took too long".into()),
            ..Default::default()
        };
        assert!(save_page(&mut *c, &claim, 1, None, &failed, 20).unwrap());
        let done = PageDetail {
            poor: true,
            ..Default::default()
        };
        let layout = Layout::from_tsv(
            "4\t1\t1\t1\t1\t0\t1\t2\t3\t4\t-1\t\n5\t1\t1\t1\t1\t1\t1\t2\t3\t4\t90\ttext\n",
        );
        let reading = PageReading {
            text: "text",
            source: PageSource::Ocr,
            confidence: Some(40.0),
            layout: Some(&layout),
        };
        assert!(save_page(&mut *c, &claim, 2, Some(&reading), &done, 30).unwrap());
        // Saved again (a retry of the page): counted once.
        assert!(save_page(&mut *c, &claim, 2, Some(&reading), &done, 31).unwrap());
        assert_eq!(page_detail(&mut *c, doc, 1).unwrap().unwrap(), failed);
        assert_eq!(page_detail(&mut *c, doc, 2).unwrap().unwrap(), done);
        let poor: i64 = c
            .query_one("SELECT poor_pages FROM documents WHERE id = $1", &[&doc])
            .unwrap()
            .get(0);
        assert_eq!(poor, 1);
        let read = pages(&mut *c, doc).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!((read[0].number, read[0].source), (2, PageSource::Ocr));
        assert_eq!(
            layouts(&mut *c, doc).unwrap(),
            vec![(2, PageSource::Ocr, Some(layout.clone()))]
        );
        // The same task resumes with its checkpoints; after a cancel, the
        // old claim writes nothing.
        begin_ocr(&mut *c, doc, claim.task_id, 2).unwrap();
        assert!(page_detail(&mut *c, doc, 1).unwrap().is_some());
        admin::do_cancel(&mut *c, claim.task_id, 40).unwrap();
        let late = PageReading {
            text: "late",
            ..reading
        };
        assert!(!save_page(&mut *c, &claim, 2, Some(&late), &done, 40).unwrap());
        assert_eq!(pages(&mut *c, doc).unwrap()[0].text, "text");
    }
}
