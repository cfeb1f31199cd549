//! Search on PostgreSQL: a [`Query`] as a `tsquery` built from the
//! configuration's own parsers (so it always parses), matched against
//! `page_index.tsv` through its GIN index, ranked with `ts_rank_cd`, with
//! `ts_headline` snippets made for the returned rows only (it re-parses the
//! page). Results have SQLite's shapes, so `--json` is one shape on both.
//!
//! Each search is one statement (rank, count, snippets, other pages); the
//! store still runs it in a `REPEATABLE READ` transaction, as every read.

use postgres::GenericClient;
use postgres::error::SqlState;
use postgres::types::{ToSql, Type};

use crate::db::DbError;
use crate::db::postgres::PgError;
use crate::store::search::RANK_AT_MOST;
use crate::store::{DocumentHit, Found, Hit, Query, SearchFilter, Term};

/// The text search configuration of the index: accent-insensitive, with
/// English stemming or without (migrations/postgres/0001_schema.sql).
pub fn config(stemming: bool) -> &'static str {
    if stemming {
        "quire_english"
    } else {
        "quire_simple"
    }
}

/// A query's SQL: an expression of type `tsquery` over parameters, which
/// the statement binds after its own.
struct TsQuery {
    expr: String,
    params: Vec<String>,
}

impl TsQuery {
    /// `query` in configuration `$1`, its texts as parameters from `$2` on:
    /// each word or phrase through `phraseto_tsquery` (the parser splits it
    /// at punctuation into words that must follow each other, as FTS5's
    /// tokenizer does), a prefix through `to_tsquery` of a quoted lexeme
    /// with `:*`; alternatives joined with `||`, those with `&&`,
    /// exclusions with `&& !!`. `Raw` is `to_tsquery`'s own syntax.
    fn new(query: &Query) -> TsQuery {
        let mut params = vec![];
        let mut term = |t: &Term| {
            let (function, text) = match t {
                Term::Word { text, prefix: true } => (
                    "to_tsquery",
                    format!("'{}':*", text.replace('\\', "\\\\").replace('\'', "''")),
                ),
                Term::Word { text, .. } | Term::Phrase(text) => ("phraseto_tsquery", text.clone()),
            };
            params.push(text);
            format!("{function}($1::regconfig, ${})", params.len() + 1)
        };
        let expr = match query {
            Query::Raw(raw) => {
                params.push(raw.clone());
                "to_tsquery($1::regconfig, $2)".to_owned()
            }
            Query::Match { all, none } => {
                let mut parts: Vec<String> = all
                    .iter()
                    .map(|alternatives| {
                        let any: Vec<String> = alternatives.iter().map(&mut term).collect();
                        format!("({})", any.join(" || "))
                    })
                    .collect();
                parts.extend(none.iter().map(|t| format!("!!{}", term(t))));
                parts.join(" && ")
            }
        };
        TsQuery { expr, params }
    }
}

/// The parameters of a statement over a [`TsQuery`]: `$1` the
/// configuration, the query's texts, then `extra`.
fn params<'a>(
    config: &'a &'a str,
    q: &'a TsQuery,
    extra: &[(&'a (dyn ToSql + Sync), Type)],
) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    let mut all: Vec<(&(dyn ToSql + Sync), Type)> = vec![(config, Type::TEXT)];
    all.extend(
        q.params
            .iter()
            .map(|p| (p as &(dyn ToSql + Sync), Type::TEXT)),
    );
    all.extend_from_slice(extra);
    all
}

/// A raw query's error from the server in quire's words; others as they are.
fn query_error(query: &Query, e: postgres::Error) -> DbError {
    match (query, e.as_db_error()) {
        (Query::Raw(raw), Some(db)) if e.code() == Some(&SqlState::SYNTAX_ERROR) => {
            DbError::BadQuery(format!(
                "the raw query {raw:?} cannot be run ({}); see QUERY SYNTAX in `man quire-search`, \
                 or drop --raw to search the words as they are",
                db.message()
            ))
        }
        _ => DbError::Postgres(PgError::Statement(e)),
    }
}

/// The filter's conditions on `documents d`, with parameters `$n..$n+2`.
fn filtered(n: usize) -> String {
    format!(
        "(${n}::bigint IS NULL OR d.created_at >= ${n}) \
         AND (${}::bigint IS NULL OR d.created_at < ${}) \
         AND (${}::text IS NULL OR d.status = ${})",
        n + 1,
        n + 1,
        n + 2,
        n + 2
    )
}

/// The CTEs `cand`, the newest matching pages that pass the filter, one
/// more than [`RANK_AT_MOST`] (so that a query past the bound can say so),
/// each row with `matches` (with `count`), the number of all matching pages (counted in
/// the same scan: a second query's count read every matching page's vector
/// again), and `ranked`, the newest [`RANK_AT_MOST`] of them: `ts_rank_cd`
/// reads each page's vector, which for a word on most pages cost far more
/// than finding them. Needs the CTE `q` and the filter's parameters from `$n`.
fn candidates(n: usize, count: bool) -> String {
    // Without the count, the scan may stop at the bound.
    let matches = if count {
        "count(*) OVER ()"
    } else {
        "0::bigint"
    };
    format!(
        "cand AS (SELECT p.document_id, p.page_number, p.tsv, {matches} AS matches \
                  FROM page_index p JOIN documents d ON d.id = p.document_id, q \
                  WHERE p.tsv @@ q.q AND {filtered} \
                  ORDER BY p.document_id DESC, p.page_number DESC LIMIT {over}), \
         ranked AS (SELECT * FROM cand \
                    ORDER BY document_id DESC, page_number DESC LIMIT {RANK_AT_MOST})",
        filtered = filtered(n),
        over = RANK_AT_MOST + 1,
    )
}

/// `ts_headline`'s options: the matched words between `\x02` and `\x03`,
/// as SQLite's `snippet()` marks them, about 16 words.
fn headline_options() -> String {
    "StartSel=\u{2}, StopSel=\u{3}, MaxWords=16, MinWords=8".to_owned()
}

/// Pages, best `ts_rank_cd` first, newest document (highest id) first on
/// ties. `total` counts every matching page.
pub fn search(
    c: &mut impl GenericClient,
    query: &Query,
    filter: &SearchFilter,
    limit: usize,
    config: &str,
) -> Result<Found<Hit>, DbError> {
    let q = TsQuery::new(query);
    let n = q.params.len() + 2;
    let status = filter.status.map(|s| s.as_str());
    let (limit, options) = (limit as i64, headline_options());
    let filter_params: [(&(dyn ToSql + Sync), Type); 3] = [
        (&filter.since_ms, Type::INT8),
        (&filter.until_ms, Type::INT8),
        (&status, Type::TEXT),
    ];
    let sql = format!(
        "WITH q AS (SELECT {expr} AS q), {candidates}, \
         top AS (SELECT r.document_id, r.page_number, ts_rank_cd(r.tsv, q.q)::float8 AS score \
                 FROM ranked r, q \
                 ORDER BY score DESC, r.document_id DESC, r.page_number LIMIT ${l}) \
         SELECT d.id, d.original_name, t.page_number, \
                ts_headline($1::regconfig, p.text, q.q, ${o}), t.score, d.created_at, \
                d.stored_path, (SELECT matches FROM cand LIMIT 1) \
         FROM top t JOIN page_index p USING (document_id, page_number) \
              JOIN documents d ON d.id = t.document_id, q \
         ORDER BY t.score DESC, t.document_id DESC, t.page_number",
        expr = q.expr,
        candidates = candidates(n, true),
        l = n + 3,
        o = n + 4,
    );
    let mut extra = filter_params.to_vec();
    extra.push((&limit, Type::INT8));
    extra.push((&options, Type::TEXT));
    let rows = c
        .query_typed(&sql, &params(&config, &q, &extra))
        .map_err(|e| query_error(query, e))?;
    let hits: Vec<Hit> = rows.iter().map(hit_from_row).collect();
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(7)) as usize;
    let at_least = total as i64 > RANK_AT_MOST;
    Ok(Found {
        hits,
        total,
        // The count is exact, but past the bound only the newest are ranked:
        // a bigger --limit would not show the others.
        at_least,
    })
}

fn hit_from_row(r: &postgres::Row) -> Hit {
    Hit {
        id: r.get(0),
        name: r.get(1),
        page: r.get(2),
        snippet: r.get(3),
        score: r.get(4),
        created_at: r.get(5),
        path: r.get::<_, String>(6).into(),
    }
}

/// How many of a document's other matching pages a hit lists.
const OTHER_PAGES: i64 = 10;

/// Documents, by their best page's `ts_rank_cd`, newest first on ties: each
/// with its best page's hit, its number of matching pages and its other
/// matching pages (the first ten) in page order.
pub fn search_documents(
    c: &mut impl GenericClient,
    query: &Query,
    filter: &SearchFilter,
    limit: usize,
    config: &str,
) -> Result<Found<DocumentHit>, DbError> {
    let q = TsQuery::new(query);
    let n = q.params.len() + 2;
    let status = filter.status.map(|s| s.as_str());
    let (limit, options, other_pages) = (limit as i64, headline_options(), OTHER_PAGES);
    let sql = format!(
        "WITH q AS (SELECT {expr} AS q), {candidates}, \
         m AS (SELECT r.document_id, r.page_number, ts_rank_cd(r.tsv, q.q)::float8 AS score \
               FROM ranked r, q), \
         best AS (SELECT DISTINCT ON (document_id) document_id, page_number, score \
                  FROM m ORDER BY document_id, score DESC, page_number), \
         docs AS (SELECT b.*, \
                         (SELECT count(*) FROM m WHERE m.document_id = b.document_id) AS pages, \
                         ARRAY(SELECT m.page_number FROM m WHERE m.document_id = b.document_id \
                               AND m.page_number <> b.page_number \
                               ORDER BY m.page_number LIMIT ${other}) AS others, \
                         count(*) OVER () AS total \
                  FROM best b ORDER BY b.score DESC, b.document_id DESC LIMIT ${l}) \
         SELECT d.id, d.original_name, t.page_number, \
                ts_headline($1::regconfig, p.text, q.q, ${o}), t.score, d.created_at, \
                d.stored_path, t.pages, t.others, t.total, \
                (SELECT count(*) FROM cand) > {RANK_AT_MOST} \
         FROM docs t JOIN page_index p USING (document_id, page_number) \
              JOIN documents d ON d.id = t.document_id, q \
         ORDER BY t.score DESC, t.document_id DESC",
        expr = q.expr,
        candidates = candidates(n, false),
        l = n + 3,
        o = n + 4,
        other = n + 5,
    );
    let extra: [(&(dyn ToSql + Sync), Type); 6] = [
        (&filter.since_ms, Type::INT8),
        (&filter.until_ms, Type::INT8),
        (&status, Type::TEXT),
        (&limit, Type::INT8),
        (&options, Type::TEXT),
        (&other_pages, Type::INT8),
    ];
    let rows = c
        .query_typed(&sql, &params(&config, &q, &extra))
        .map_err(|e| query_error(query, e))?;
    let total = rows.first().map_or(0, |r| r.get::<_, i64>(9)) as usize;
    // Past the bound, the count is of the ranked documents: a lower bound.
    let at_least = rows.first().is_some_and(|r| r.get::<_, bool>(10));
    let hits = rows
        .iter()
        .map(|r| DocumentHit {
            best: hit_from_row(r),
            matching_pages: r.get(7),
            other_pages: r.get(8),
        })
        .collect();
    Ok(Found {
        hits,
        total,
        at_least,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::postgres::PostgresDb;
    use crate::db::postgres::testing::TestDatabase;
    use crate::store::DocumentStatus;

    struct Index {
        db: PostgresDb,
        _database: TestDatabase,
    }

    /// Documents named by their pages' texts, indexed as the indexing task
    /// will index them, in `config`.
    fn index(docs: &[(&str, &[&str])], config: &str) -> Index {
        let database = TestDatabase::new();
        let db = PostgresDb::open(database.target(), 2).unwrap();
        db.write(|tx| {
            for (i, (name, pages)) in docs.iter().enumerate() {
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO documents (original_name, stored_path, size, sha256, kind, \
                                                status, created_at, updated_at) \
                         VALUES ($1, $1, 1, $1, 'pdf', 'indexed', $2, $2) RETURNING id",
                        &[name, &(i as i64 * 1000)],
                    )?
                    .get(0);
                for (p, text) in pages.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO page_index (document_id, page_number, text, tsv) \
                         VALUES ($1, $2, $3, to_tsvector($4::text::regconfig, $3))",
                        &[&id, &(p as i64 + 1), text, &config],
                    )?;
                }
            }
            Ok::<_, PgError>(())
        })
        .unwrap();
        Index {
            db,
            _database: database,
        }
    }

    fn words(s: &str) -> Query {
        Query::parse(s).unwrap()
    }

    fn pages(ix: &Index, q: &Query, filter: &SearchFilter) -> Vec<(String, i64)> {
        let mut c = ix.db.conn().unwrap();
        search(&mut *c, q, filter, 10, config(false))
            .unwrap()
            .hits
            .into_iter()
            .map(|h| (h.name, h.page))
            .collect()
    }

    /// As on SQLite: a word on more pages than [`RANK_AT_MOST`] ranks the
    /// newest of them and says so; a rare word on an old page is still found
    /// and ranked in full; counts of pages stay exact.
    #[test]
    fn very_frequent_words_rank_a_bounded_set_and_needles_are_still_found() {
        let ix = index(&[], config(false));
        let pages_per_doc = 50i64;
        let docs = RANK_AT_MOST / pages_per_doc + 5;
        ix.db
            .write(|tx| {
                tx.execute(
                    "INSERT INTO documents (id, original_name, stored_path, size, sha256, kind, \
                                            status, created_at, updated_at) \
                     SELECT d, d::text, d::text, 1, d::text, 'pdf', 'indexed', 0, 0 \
                     FROM generate_series(1, $1::bigint) d",
                    &[&docs],
                )?;
                tx.execute(
                    "INSERT INTO page_index (document_id, page_number, text, tsv) \
                     SELECT d, p, t, to_tsvector('quire_simple', t) \
                     FROM generate_series(1, $1::bigint) d, generate_series(1, $2::bigint) p, \
                          LATERAL (SELECT CASE WHEN d = 1 AND p = 7 THEN 'alpha needle' \
                                          ELSE 'alpha beta' END AS t) x",
                    &[&docs, &pages_per_doc],
                )?;
                Ok::<_, PgError>(())
            })
            .unwrap();
        let all = SearchFilter::default();
        let mut c = ix.db.conn().unwrap();
        let found = search_documents(&mut *c, &words("alpha"), &all, 10, config(false)).unwrap();
        assert_eq!(found.hits.len(), 10);
        assert!(found.at_least && found.total as i64 >= RANK_AT_MOST / pages_per_doc);
        // The newest documents are the ones ranked; their counts are exact.
        assert!(found.hits.iter().all(|h| h.best.id > 5), "{:?}", found.hits);
        assert!(found.hits.iter().all(|h| h.matching_pages == pages_per_doc));
        // By page: the count is exact, the ranking still bounded.
        let pages = search(&mut *c, &words("alpha"), &all, 10, config(false)).unwrap();
        assert_eq!(
            (pages.total as i64, pages.at_least),
            (docs * pages_per_doc, true)
        );
        // A needle on the oldest document, ranked in full.
        let needle = words("needle alpha");
        let found = search_documents(&mut *c, &needle, &all, 10, config(false)).unwrap();
        assert_eq!(
            (found.hits.len(), found.total, found.at_least),
            (1, 1, false)
        );
        assert_eq!((found.hits[0].best.id, found.hits[0].best.page), (1, 7));
    }

    #[test]
    fn a_rare_word_ranks_its_page_first_and_is_marked_in_the_snippet() {
        let filler = "the invoice total is due at the end of the month";
        let ix = index(
            &[
                ("a.pdf", &[filler, filler]),
                ("b.pdf", &[filler, "reference number Quokka-4711 is due"]),
                ("c.pdf", &[filler]),
            ],
            config(false),
        );
        let mut c = ix.db.conn().unwrap();
        let found = search(
            &mut *c,
            &words("quokka"),
            &SearchFilter::default(),
            10,
            config(false),
        )
        .unwrap();
        assert_eq!(found.total, 1);
        assert_eq!(
            (found.hits[0].name.as_str(), found.hits[0].page),
            ("b.pdf", 2)
        );
        assert!(
            found.hits[0].snippet.contains("\u{2}Quokka"),
            "{:?}",
            found.hits[0].snippet
        );
        let all = search(
            &mut *c,
            &words("invoice"),
            &SearchFilter::default(),
            2,
            config(false),
        )
        .unwrap();
        assert_eq!(
            (all.hits.len(), all.total),
            (2, 4),
            "the count is of every match"
        );
    }

    #[test]
    fn accents_prefixes_phrases_or_and_not_behave_as_on_sqlite() {
        let ix = index(
            &[
                ("cafe.pdf", &["Ein Café in Zürich"]),
                ("order.pdf", &["purchase order forty two"]),
                ("reorder.pdf", &["order purchase again"]),
            ],
            config(false),
        );
        let none = SearchFilter::default();
        assert_eq!(
            pages(&ix, &words("cafe zurich"), &none),
            vec![("cafe.pdf".into(), 1)]
        );
        assert_eq!(
            pages(&ix, &words("Zür*"), &none),
            vec![("cafe.pdf".into(), 1)]
        );
        assert_eq!(
            pages(&ix, &words("\"purchase order\""), &none),
            vec![("order.pdf".into(), 1)]
        );
        let either = pages(&ix, &words("café OR forty"), &none);
        assert_eq!(either.len(), 2, "{either:?}");
        assert_eq!(
            pages(&ix, &words("order -forty"), &none),
            vec![("reorder.pdf".into(), 1)]
        );
        let indexed_only = SearchFilter {
            status: Some(DocumentStatus::Failed),
            ..Default::default()
        };
        assert!(pages(&ix, &words("order"), &indexed_only).is_empty());
    }

    #[test]
    fn documents_come_with_their_best_page_and_their_other_pages() {
        let ix = index(
            &[
                (
                    "long.pdf",
                    &["walrus", "nothing", "walrus walrus", "walrus"],
                ),
                ("short.pdf", &["one walrus"]),
            ],
            config(false),
        );
        let mut c = ix.db.conn().unwrap();
        let found = search_documents(
            &mut *c,
            &words("walrus"),
            &SearchFilter::default(),
            10,
            config(false),
        )
        .unwrap();
        assert_eq!(found.total, 2);
        let long = found
            .hits
            .iter()
            .find(|h| h.best.name == "long.pdf")
            .unwrap();
        assert_eq!(long.best.page, 3, "the page with the word twice");
        assert_eq!(long.matching_pages, 3);
        assert_eq!(long.other_pages, vec![1, 4]);
    }

    #[test]
    fn stemming_is_the_configurations_and_a_bad_raw_query_says_why() {
        let ix = index(&[("run.pdf", &["the runners were running"])], config(true));
        let mut c = ix.db.conn().unwrap();
        let none = SearchFilter::default();
        let run = search(&mut *c, &words("run"), &none, 10, config(true)).unwrap();
        assert_eq!(run.total, 1);
        let raw = search(
            &mut *c,
            &Query::Raw("runn:* & !walk".into()),
            &none,
            10,
            config(true),
        )
        .unwrap();
        assert_eq!(raw.total, 1);
        let bad = search(
            &mut *c,
            &Query::Raw("run &".into()),
            &none,
            10,
            config(true),
        );
        let err = bad.unwrap_err().to_string();
        assert!(err.contains("drop --raw"), "{err}");
    }
}
