//! Documents and duplicates on PostgreSQL: the `documents` and `duplicates`
//! tables, as `store/sqlite/documents.rs` keeps them on SQLite.

use postgres::GenericClient;
use postgres::types::Type;

use crate::db::DbError;
use crate::db::postgres::PgError;
use crate::store::{Document, DocumentStatus, NewDocument};

/// The columns [`doc_from_row`] reads, in order (the details as text, parsed here).
const DOC_COLUMNS: &str = "id, original_name, stored_path, size, sha256, kind, page_count, status, \
    last_error, ocr_details::text, indexing_details::text, created_at, updated_at, searchable_pdf, \
    poor_pages";

fn doc_from_row(r: &postgres::Row) -> Result<Document, DbError> {
    let json =
        |i: usize| serde_json::from_str(r.get::<_, &str>(i)).unwrap_or(serde_json::Value::Null);
    let status: &str = r.get(7);
    Ok(Document {
        id: r.get(0),
        name: r.get(1),
        stored_path: r.get(2),
        size: r.get(3),
        sha256: r.get(4),
        kind: r.get(5),
        pages: r.get(6),
        status: status
            .parse()
            .map_err(|e| DbError::Postgres(PgError::Unexpected(e)))?,
        error: r.get(8),
        ocr_details: json(9),
        indexing_details: json(10),
        created_at: r.get(11),
        updated_at: r.get(12),
        searchable_pdf: r.get(13),
        poor_pages: r.get(14),
    })
}

fn docs(rows: Vec<postgres::Row>) -> Result<Vec<Document>, DbError> {
    rows.iter().map(doc_from_row).collect()
}

/// Deletes a document's row; its tasks, pages, duplicates, index and staged
/// rows go with it (ON DELETE CASCADE). False when there was no such document.
pub fn remove(tx: &mut impl GenericClient, id: i64) -> Result<bool, DbError> {
    let n = tx.execute_typed("DELETE FROM documents WHERE id = $1", &[(&id, Type::INT8)]);
    Ok(n.map_err(PgError::Statement)? == 1)
}

/// True when a document other than `id` records `path` as its searchable PDF.
pub fn pdf_taken_by_other(
    c: &mut impl GenericClient,
    id: i64,
    path: &str,
) -> Result<bool, DbError> {
    let row = c.query_typed_one(
        "SELECT EXISTS (SELECT 1 FROM documents WHERE searchable_pdf = $1 AND id <> $2)",
        &[(&path, Type::TEXT), (&id, Type::INT8)],
    );
    Ok(row.map_err(PgError::Statement)?.get(0))
}

/// Records where the document's searchable PDF was written.
pub fn set_searchable_pdf(tx: &mut impl GenericClient, id: i64, path: &str) -> Result<(), DbError> {
    tx.execute_typed(
        "UPDATE documents SET searchable_pdf = $2 WHERE id = $1",
        &[(&id, Type::INT8), (&path, Type::TEXT)],
    )
    .map_err(PgError::Statement)?;
    Ok(())
}

/// One document, or `None`.
pub fn document(c: &mut impl GenericClient, id: i64) -> Result<Option<Document>, DbError> {
    let row = c
        .query_typed_opt(
            &format!("SELECT {DOC_COLUMNS} FROM documents WHERE id = $1"),
            &[(&id, Type::INT8)],
        )
        .map_err(PgError::Statement)?;
    row.as_ref().map(doc_from_row).transpose()
}

/// The newest `limit` documents (all with `None`), optionally only those with `status`.
pub fn newest(
    c: &mut impl GenericClient,
    status: Option<DocumentStatus>,
    limit: Option<usize>,
) -> Result<Vec<Document>, DbError> {
    let status = status.map(|s| s.as_str());
    let limit = limit.map(|l| l as i64);
    let rows = c
        .query_typed(
            &format!(
                "SELECT {DOC_COLUMNS} FROM documents WHERE ($1::text IS NULL OR status = $1) \
                 ORDER BY id DESC LIMIT $2"
            ),
            &[(&status, Type::TEXT), (&limit, Type::INT8)],
        )
        .map_err(PgError::Statement)?;
    docs(rows)
}

/// The document with this content, if any.
pub fn by_sha256(c: &mut impl GenericClient, sha: &str) -> Result<Option<Document>, DbError> {
    let row = c
        .query_typed_opt(
            &format!("SELECT {DOC_COLUMNS} FROM documents WHERE sha256 = $1"),
            &[(&sha, Type::TEXT)],
        )
        .map_err(PgError::Statement)?;
    row.as_ref().map(doc_from_row).transpose()
}

/// Inserts a document; `Ok(None)` when its content is already a document
/// (however many hosts ingest it at once: the unique `sha256` decides).
pub fn insert_document(
    c: &mut impl GenericClient,
    d: &NewDocument<'_>,
    now: i64,
) -> Result<Option<i64>, postgres::Error> {
    let row = c.query_typed_opt(
        "INSERT INTO documents (original_name, stored_path, size, sha256, kind, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (sha256) DO NOTHING RETURNING id",
        &[
            (&d.name, Type::TEXT),
            (&d.stored_path, Type::TEXT),
            (&d.size, Type::INT8),
            (&d.sha256, Type::TEXT),
            (&d.kind, Type::TEXT),
            (&now, Type::INT8),
        ],
    )?;
    Ok(row.map(|r| r.get(0)))
}

/// How many dropped files turned out to be copies of document `id`.
pub fn count_duplicates_of(c: &mut impl GenericClient, id: i64) -> Result<i64, DbError> {
    let row = c.query_typed_one(
        "SELECT count(*) FROM duplicates WHERE document_id = $1",
        &[(&id, Type::INT8)],
    );
    Ok(row.map_err(PgError::Statement)?.get(0))
}

/// Records a file whose content was already document `document_id`.
pub fn insert_duplicate(
    c: &mut impl GenericClient,
    document_id: i64,
    name: &str,
    stored_path: &str,
    now: i64,
) -> Result<(), DbError> {
    c.execute_typed(
        "INSERT INTO duplicates (document_id, original_name, stored_path, created_at) \
         VALUES ($1, $2, $3, $4)",
        &[
            (&document_id, Type::INT8),
            (&name, Type::TEXT),
            (&stored_path, Type::TEXT),
            (&now, Type::INT8),
        ],
    )
    .map_err(PgError::Statement)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::postgres::PostgresDb;
    use crate::db::postgres::testing::TestDatabase;

    #[test]
    fn documents_are_inserted_once_per_content_read_back_and_removed() {
        let database = TestDatabase::new();
        let db = PostgresDb::open(database.target(), 2).unwrap();
        let mut c = db.conn().unwrap();
        let new = |name| NewDocument {
            name,
            stored_path: "originals/x.pdf",
            size: 7,
            sha256: "abc",
            kind: "pdf",
        };
        let id = insert_document(&mut *c, &new("x.pdf"), 5).unwrap().unwrap();
        assert_eq!(insert_document(&mut *c, &new("copy.pdf"), 6).unwrap(), None);
        insert_duplicate(&mut *c, id, "copy.pdf", "originals/copy.pdf", 6).unwrap();
        assert_eq!(count_duplicates_of(&mut *c, id).unwrap(), 1);
        let doc = document(&mut *c, id).unwrap().unwrap();
        assert_eq!(
            (doc.name.as_str(), doc.size, doc.status),
            ("x.pdf", 7, DocumentStatus::Queued)
        );
        assert_eq!(doc.ocr_details, serde_json::json!({}));
        assert_eq!(by_sha256(&mut *c, "abc").unwrap().unwrap().id, id);
        assert_eq!(newest(&mut *c, None, Some(5)).unwrap().len(), 1);
        assert!(
            newest(&mut *c, Some(DocumentStatus::Indexed), None)
                .unwrap()
                .is_empty()
        );
        set_searchable_pdf(&mut *c, id, "/out/x.pdf").unwrap();
        assert!(pdf_taken_by_other(&mut *c, id + 1, "/out/x.pdf").unwrap());
        assert!(!pdf_taken_by_other(&mut *c, id, "/out/x.pdf").unwrap());
        assert!(remove(&mut *c, id).unwrap());
        assert!(!remove(&mut *c, id).unwrap());
        assert_eq!(count_duplicates_of(&mut *c, id).unwrap(), 0, "cascaded");
    }
}
