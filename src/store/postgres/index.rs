//! The full-text index on PostgreSQL (`page_index`, a tsvector per page):
//! staging normalised pages, swapping a document's rows in one transaction,
//! recording indexing phases in `documents.indexing_details`, and the text
//! search configuration that `index.stemming` picks, as
//! `store/sqlite/index.rs` does on SQLite.

use postgres::GenericClient;
use postgres::types::Type;

use super::search;
use crate::config::Stemming;
use crate::db::DbError;
use crate::db::postgres::PgError;
use crate::store::{IndexPhase, IndexingState};

fn statement(e: postgres::Error) -> DbError {
    DbError::Postgres(PgError::Statement(e))
}

/// Reads the indexing phase and staging mark of a document.
fn state(tx: &mut impl GenericClient, document_id: i64) -> Result<IndexingState, DbError> {
    let row = tx
        .query_typed_one(
            "SELECT indexing_details ->> 'phase', (indexing_details ->> 'staged')::bigint \
             FROM documents WHERE id = $1",
            &[(&document_id, Type::INT8)],
        )
        .map_err(statement)?;
    let (phase, staged): (Option<String>, Option<i64>) = (row.get(0), row.get(1));
    Ok(IndexingState {
        phase: phase
            .and_then(|p| p.parse().ok())
            .unwrap_or(IndexPhase::Stage),
        staged: staged.unwrap_or(0),
    })
}

/// Starts indexing by task `task_id`: the details (and staged rows) of
/// another task are reset, those of this same task kept, so it resumes.
pub fn begin_indexing(
    tx: &mut impl GenericClient,
    document_id: i64,
    task_id: i64,
) -> Result<IndexingState, DbError> {
    let owner: Option<i64> = tx
        .query_typed_one(
            "SELECT (indexing_details ->> 'task')::bigint FROM documents WHERE id = $1",
            &[(&document_id, Type::INT8)],
        )
        .map_err(statement)?
        .get(0);
    if owner != Some(task_id) {
        tx.execute_typed(
            "DELETE FROM index_staging WHERE document_id = $1",
            &[(&document_id, Type::INT8)],
        )
        .map_err(statement)?;
        tx.execute_typed(
            "UPDATE documents SET indexing_details = \
                 jsonb_build_object('task', $2, 'phase', $3, 'staged', 0) WHERE id = $1",
            &[
                (&document_id, Type::INT8),
                (&task_id, Type::INT8),
                (&IndexPhase::Stage.as_str(), Type::TEXT),
            ],
        )
        .map_err(statement)?;
    }
    state(tx, document_id)
}

/// Stages a batch of normalised pages and records how far staging got.
pub fn stage_pages(
    tx: &mut impl GenericClient,
    document_id: i64,
    pages: &[(i64, String)],
    staged_through: i64,
    now: i64,
) -> Result<(), DbError> {
    let (numbers, texts): (Vec<i64>, Vec<std::borrow::Cow<'_, str>>) = pages
        .iter()
        .map(|(n, t)| (*n, super::without_nul(t)))
        .unzip();
    let texts: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
    tx.execute_typed(
        "INSERT INTO index_staging (document_id, page_number, text) \
         SELECT $1, n, t FROM unnest($2::bigint[], $3::text[]) AS p (n, t) \
         ON CONFLICT (document_id, page_number) DO UPDATE SET text = excluded.text",
        &[
            (&document_id, Type::INT8),
            (&numbers, Type::INT8_ARRAY),
            (&texts, Type::TEXT_ARRAY),
        ],
    )
    .map_err(statement)?;
    tx.execute_typed(
        "UPDATE documents SET updated_at = $3, \
             indexing_details = indexing_details || jsonb_build_object('staged', $2) WHERE id = $1",
        &[
            (&document_id, Type::INT8),
            (&staged_through, Type::INT8),
            (&now, Type::INT8),
        ],
    )
    .map_err(statement)?;
    Ok(())
}

/// Replaces the document's rows in the index with its staged pages (their
/// vectors in the configuration `quire_settings` names), clears the staging
/// and records the phase; returns the pages indexed.
pub fn publish_index(
    tx: &mut impl GenericClient,
    document_id: i64,
    now: i64,
) -> Result<i64, DbError> {
    let doc = [(
        &document_id as &(dyn postgres::types::ToSql + Sync),
        Type::INT8,
    )];
    tx.execute_typed("DELETE FROM page_index WHERE document_id = $1", &doc)
        .map_err(statement)?;
    let n = tx
        .execute_typed(
            "INSERT INTO page_index (document_id, page_number, text, tsv) \
             SELECT document_id, page_number, text, \
                    to_tsvector((SELECT value FROM quire_settings WHERE key = 'search_config')::regconfig, text) \
             FROM index_staging WHERE document_id = $1",
            &doc,
        )
        .map_err(statement)? as i64;
    tx.execute_typed("DELETE FROM index_staging WHERE document_id = $1", &doc)
        .map_err(statement)?;
    tx.execute_typed(
        "UPDATE documents SET updated_at = $3, indexing_details = indexing_details \
             || jsonb_build_object('phase', $4, 'indexed_pages', $2) WHERE id = $1",
        &[
            (&document_id, Type::INT8),
            (&n, Type::INT8),
            (&now, Type::INT8),
            (&IndexPhase::Finalize.as_str(), Type::TEXT),
        ],
    )
    .map_err(statement)?;
    Ok(n)
}

/// Records the last phase as done.
pub fn finish_indexing(
    tx: &mut impl GenericClient,
    document_id: i64,
    now: i64,
) -> Result<(), DbError> {
    tx.execute_typed(
        "UPDATE documents SET updated_at = $2, \
             indexing_details = indexing_details || jsonb_build_object('phase', $3) WHERE id = $1",
        &[
            (&document_id, Type::INT8),
            (&now, Type::INT8),
            (&IndexPhase::Done.as_str(), Type::TEXT),
        ],
    )
    .map_err(statement)?;
    Ok(())
}

/// Index rows of a document.
pub fn indexed_pages(c: &mut impl GenericClient, document_id: i64) -> Result<i64, DbError> {
    Ok(c.query_typed_one(
        "SELECT count(*) FROM page_index WHERE document_id = $1",
        &[(&document_id, Type::INT8)],
    )
    .map_err(statement)?
    .get(0))
}

/// The indexed text of a document's pages, by page.
pub fn indexed_text(
    c: &mut impl GenericClient,
    document_id: i64,
) -> Result<Vec<(i64, String)>, DbError> {
    let rows = c
        .query_typed(
            "SELECT page_number, text FROM page_index WHERE document_id = $1 ORDER BY page_number",
            &[(&document_id, Type::INT8)],
        )
        .map_err(statement)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The text search configuration the index was made with.
pub fn search_config(c: &mut impl GenericClient) -> Result<String, DbError> {
    Ok(c.query_typed_one(
        "SELECT value FROM quire_settings WHERE key = 'search_config'",
        &[],
    )
    .map_err(statement)?
    .get(0))
}

/// True when the index was made with the configuration for `stemming`.
pub fn stemming_matches(c: &mut impl GenericClient, stemming: Stemming) -> Result<bool, DbError> {
    Ok(search_config(c)? == search::config(stemming == Stemming::Porter))
}

/// Recomputes every page's vector with the configuration for `stemming`
/// unless the index has it already (the row lock on the setting makes two
/// hosts starting with a new setting do it once). Returns the number of
/// pages re-indexed, 0 if none.
pub fn ensure_stemming(tx: &mut impl GenericClient, stemming: Stemming) -> Result<usize, DbError> {
    let want = search::config(stemming == Stemming::Porter);
    let have: String = tx
        .query_typed_one(
            "SELECT value FROM quire_settings WHERE key = 'search_config' FOR UPDATE",
            &[],
        )
        .map_err(statement)?
        .get(0);
    if have == want {
        return Ok(0);
    }
    let n = tx
        .execute_typed(
            "UPDATE page_index SET tsv = to_tsvector($1::regconfig, text)",
            &[(&want, Type::TEXT)],
        )
        .map_err(statement)?;
    tx.execute_typed(
        "UPDATE quire_settings SET value = $1 WHERE key = 'search_config'",
        &[(&want, Type::TEXT)],
    )
    .map_err(statement)?;
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::postgres::testing::fixture;
    use crate::store::{Query, SearchFilter};

    #[test]
    fn staged_pages_are_published_whole_and_stemming_reindexes_them() {
        let f = fixture();
        let doc = f.document("a");
        let mut c = f.conn();
        let state = begin_indexing(&mut *c, doc, 7).unwrap();
        assert_eq!((state.phase, state.staged), (IndexPhase::Stage, 0));
        // A NUL from a text layer is dropped: PostgreSQL's text refuses it.
        stage_pages(&mut *c, doc, &[(1, "the run\0ners".into())], 1, 10).unwrap();
        // Resumed by the same task: the staging stays.
        assert_eq!(begin_indexing(&mut *c, doc, 7).unwrap().staged, 1);
        stage_pages(&mut *c, doc, &[(2, "were running".into())], 2, 11).unwrap();
        assert_eq!(
            indexed_pages(&mut *c, doc).unwrap(),
            0,
            "nothing searchable yet"
        );
        assert_eq!(publish_index(&mut *c, doc, 12).unwrap(), 2);
        finish_indexing(&mut *c, doc, 13).unwrap();
        assert_eq!(
            begin_indexing(&mut *c, doc, 7).unwrap().phase,
            IndexPhase::Done
        );
        assert_eq!(
            indexed_text(&mut *c, doc).unwrap(),
            vec![
                (1, "the runners".to_owned()),
                (2, "were running".to_owned())
            ]
        );
        let found = |c: &mut crate::db::postgres::Conn| {
            let config = search_config(&mut **c).unwrap();
            let q = Query::parse("run").unwrap();
            search::search(&mut **c, &q, &SearchFilter::default(), 10, &config)
                .unwrap()
                .total
        };
        assert_eq!(found(&mut c), 0, "no stemming");
        assert!(!stemming_matches(&mut *c, Stemming::Porter).unwrap());
        assert_eq!(ensure_stemming(&mut *c, Stemming::Porter).unwrap(), 2);
        assert_eq!(ensure_stemming(&mut *c, Stemming::Porter).unwrap(), 0);
        assert_eq!(found(&mut c), 1, "running, not runners");
        // Another task starts over.
        let state = begin_indexing(&mut *c, doc, 8).unwrap();
        assert_eq!((state.phase, state.staged), (IndexPhase::Stage, 0));
    }
}

#[cfg(test)]
mod fenced {
    use crate::db::postgres::testing::TestDatabase;
    use crate::db::{Db, Location};
    use crate::queue::{Policy, Priority, Queue, TaskType};
    use crate::store::{NewDocument, Store};

    /// On both engines: a worker whose indexing claim was taken over writes
    /// nothing more, and the new owner's staging is left alone.
    #[test]
    fn indexing_writes_after_a_lost_claim_change_nothing_on_both_engines() {
        let dir = tempfile::tempdir().unwrap();
        let database = TestDatabase::new();
        let locations = [
            Location::Sqlite(dir.path().join("q.db")),
            Location::Postgres(database.target().clone()),
        ];
        for location in locations {
            let db = Db::open(location, 2).unwrap();
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
            queue
                .enqueue(id, TaskType::Indexing, Priority::High)
                .unwrap();
            let old = queue
                .claim_document("old", id, TaskType::Indexing)
                .unwrap()
                .unwrap();
            assert!(store.begin_indexing(&old).unwrap().is_some());
            assert!(store.stage_pages(&old, &[(1, "one".into())], 1, 1).unwrap());
            // Released (as a stale claim would be) and taken by another worker.
            queue.release(&old).unwrap();
            let new = queue
                .claim_document("new", id, TaskType::Indexing)
                .unwrap()
                .unwrap();
            assert!(store.begin_indexing(&new).unwrap().is_some());
            assert!(store.stage_pages(&new, &[(1, "uno".into())], 1, 2).unwrap());
            assert!(!store.stage_pages(&old, &[(2, "two".into())], 2, 3).unwrap());
            assert_eq!(store.publish_index(&old, 3).unwrap(), None);
            assert!(!store.finish_indexing(&old, 3).unwrap());
            assert!(store.begin_indexing(&old).unwrap().is_none());
            assert_eq!(store.indexed_pages(id).unwrap(), 0, "nothing published");
            assert_eq!(store.publish_index(&new, 4).unwrap(), Some(1));
            assert_eq!(store.indexed_text(id).unwrap(), vec![(1, "uno".to_owned())]);
        }
    }
}
