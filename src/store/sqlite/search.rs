//! Search on SQLite: a [`Query`] as an FTS5 expression that always parses,
//! ranked by FTS5's BM25.

use rusqlite::Connection;

use super::index::ROWID_STRIDE;
use crate::db::DbError;
use crate::store::search::RANK_AT_MOST;
use crate::store::{DocumentHit, Found, Hit, Query, SearchFilter, Term};

/// The FTS5 expression for `query`: every term a quoted string (the
/// tokenizer splits it further at punctuation); alternatives in parentheses
/// joined with `OR`, those joined with `AND`, exclusions after `NOT`.
pub(crate) fn fts_expression(query: &Query) -> String {
    let term = |t: &Term| match t {
        Term::Word { text, prefix: true } => format!("{}*", quote(text)),
        Term::Word { text, .. } | Term::Phrase(text) => quote(text),
    };
    match query {
        Query::Raw(raw) => raw.clone(),
        Query::Match { all, none } => {
            let all: Vec<String> = all
                .iter()
                .map(|alternatives| match alternatives.as_slice() {
                    [one] => term(one),
                    many => format!(
                        "({})",
                        many.iter().map(term).collect::<Vec<_>>().join(" OR ")
                    ),
                })
                .collect();
            let mut expr = all.join(" AND ");
            if !none.is_empty() {
                expr = format!("({expr})");
                for t in none {
                    expr += &format!(" NOT {}", term(t));
                }
            }
            expr
        }
    }
}

/// A raw query's error from SQLite in quire's words; other errors as they are.
fn query_error(query: &Query, e: rusqlite::Error) -> DbError {
    let Query::Raw(raw) = query else {
        return e.into();
    };
    let msg = e.to_string();
    let why = if let Some(column) = msg.strip_prefix("no such column: ") {
        format!(
            "unknown column '{column}' in the raw query {raw:?}; put it in quotes to search for \
             the word (\"{column}:\"), or drop --raw"
        )
    } else if msg.contains("unterminated string") {
        format!("a quote is not closed in the raw query {raw:?}")
    } else if let Some(near) = msg.strip_prefix("fts5: syntax error near ") {
        format!(
            "the raw query {raw:?} has a syntax error near {near}; see QUERY SYNTAX in \
             `man quire-search`, or drop --raw to search the words as they are"
        )
    } else if msg.starts_with("fts5:") || msg.contains("malformed MATCH") {
        format!("the raw query {raw:?} cannot be run ({msg}); drop --raw to search it as words")
    } else {
        return e.into();
    };
    DbError::BadQuery(why)
}

/// An FTS5 string literal.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The pages matching `:q` that pass the filter, as `FROM ... WHERE ...`
/// over `page_index p` (joined with `documents d` only when a filter needs
/// it), above rowid `:floor` (see [`RANK_AT_MOST`]; -1 for all).
fn matching(filter: &SearchFilter) -> &'static str {
    let filtered =
        filter.since_ms.is_some() || filter.until_ms.is_some() || filter.status.is_some();
    if filtered {
        "FROM page_index p JOIN documents d ON d.id = p.document_id \
         WHERE page_index MATCH :q AND p.rowid > :floor \
           AND (:since IS NULL OR d.created_at >= :since) \
           AND (:until IS NULL OR d.created_at < :until) \
           AND (:status IS NULL OR d.status = :status)"
    } else {
        "FROM page_index p WHERE page_index MATCH :q AND p.rowid > :floor \
         AND :since IS NULL AND :until IS NULL AND :status IS NULL"
    }
}

/// The rowid below which pages are not ranked: that of the newest matching
/// page past [`RANK_AT_MOST`], or -1 when fewer match. FTS5 walks matches
/// in rowid order, so this stops after that many, unranked.
fn rank_floor(c: &Connection, query: &Query, filter: &SearchFilter) -> Result<i64, DbError> {
    let from = matching(filter);
    let floor = self::query(
        c,
        &format!("SELECT p.rowid {from} ORDER BY p.rowid DESC LIMIT 1 OFFSET {RANK_AT_MOST}"),
        query,
        filter,
        &[(":floor", &-1i64)],
        |r| r.get::<_, i64>(0),
    )?;
    Ok(floor.first().copied().unwrap_or(-1))
}

/// Runs `sql` (which uses `:q`, the filter's parameters and `extra`),
/// mapping each row with `row`; a raw query's error in quire's words.
fn query<T>(
    c: &Connection,
    sql: &str,
    query: &Query,
    filter: &SearchFilter,
    extra: &[(&str, &dyn rusqlite::ToSql)],
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, DbError> {
    let expr = fts_expression(query);
    let status = filter.status.map(|s| s.as_str());
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![
        (":q", &expr),
        (":since", &filter.since_ms),
        (":until", &filter.until_ms),
        (":status", &status),
    ];
    params.extend_from_slice(extra);
    let mut st = c.prepare_cached(sql)?;
    let used: Vec<(&str, &dyn rusqlite::ToSql)> = params
        .into_iter()
        .filter(|(name, _)| st.parameter_index(name).ok().flatten().is_some())
        .collect();
    let rows = st
        .query_map(used.as_slice(), row)
        .and_then(|rows| rows.collect::<Result<Vec<T>, _>>());
    rows.map_err(|e| query_error(query, e))
}

/// A hit for the page at index row `rowid`: its document, snippet and score.
/// `None` if the row is gone (it cannot be within one snapshot, see
/// [`snapshot`]; skipped rather than failing the search, should it be).
fn hit(c: &Connection, query: &Query, rowid: i64, rank: f64) -> Result<Option<Hit>, DbError> {
    let sql = "SELECT d.id, d.original_name, p.page_number, \
             snippet(page_index, 0, char(2), char(3), '…', 16), d.created_at, d.stored_path \
         FROM page_index p JOIN documents d ON d.id = p.document_id \
         WHERE page_index MATCH :q AND p.rowid = :row";
    let hits = self::query(
        c,
        sql,
        query,
        &SearchFilter::default(),
        &[(":row", &rowid)],
        |r| {
            Ok(Hit {
                id: r.get(0)?,
                name: r.get(1)?,
                page: r.get(2)?,
                snippet: r.get(3)?,
                score: -rank,
                created_at: r.get(4)?,
                path: r.get::<_, String>(5)?.into(),
            })
        },
    )?;
    Ok(hits.into_iter().next())
}

/// Runs `f` in one read transaction. A search is several statements
/// (rank, count, snippets, other pages); under WAL each would otherwise see
/// the database as it is at that moment, and a document removed or
/// re-indexed by the daemon in between would make them disagree.
fn snapshot<T>(
    c: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    c.execute_batch("BEGIN DEFERRED")?;
    let out = f(c);
    let end = c.execute_batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let out = out?;
    end?;
    Ok(out)
}

/// Pages, best BM25 first, newest document (highest id) first on ties.
///
/// `snippet()` is costly: the best `limit` rows are picked by rank alone,
/// then snippets are made for those rows only.
pub(crate) fn search(
    c: &Connection,
    query: &Query,
    filter: &SearchFilter,
    limit: usize,
) -> Result<Found<Hit>, DbError> {
    snapshot(c, |c| search_pages(c, query, filter, limit))
}

fn search_pages(
    c: &Connection,
    query: &Query,
    filter: &SearchFilter,
    limit: usize,
) -> Result<Found<Hit>, DbError> {
    let from = matching(filter);
    let floor = rank_floor(c, query, filter)?;
    // The limit is written into the statement: a bound LIMIT makes SQLite
    // prepare the statement again on every run (see queue::sqlite::claim).
    let top = self::query(
        c,
        &format!(
            "SELECT p.rowid, p.rank {from} \
             ORDER BY p.rank, p.rowid / {ROWID_STRIDE} DESC, p.rowid LIMIT {limit}"
        ),
        query,
        filter,
        &[(":floor", &floor)],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)),
    )?;
    let total = if top.len() < limit && floor < 0 {
        top.len()
    } else {
        // Counting is a walk of the matches without ranking them.
        let sql = format!("SELECT count(*) {from}");
        let count = self::query(c, &sql, query, filter, &[(":floor", &-1i64)], |r| {
            r.get::<_, i64>(0)
        })?;
        count.first().copied().unwrap_or(0) as usize
    };
    let hits = top
        .into_iter()
        .filter_map(|(rowid, rank)| hit(c, query, rowid, rank).transpose())
        .collect::<Result<_, _>>()?;
    Ok(Found {
        hits,
        total,
        // The count is exact, but past the bound only the newest are ranked:
        // a bigger --limit would not show the others.
        at_least: floor >= 0,
    })
}

/// How many of a document's other matching pages a hit lists.
const OTHER_PAGES: i64 = 10;

/// Documents, by their best page's BM25, newest first on ties: each with its
/// best page's hit, its number of matching pages and its other matching
/// pages in page order. Only the one ranking query computes BM25: FTS5's
/// BM25 walks every match of each term for its statistics, so ranking
/// again per document would cost that walk per document.
pub(crate) fn search_documents(
    c: &Connection,
    query: &Query,
    filter: &SearchFilter,
    limit: usize,
) -> Result<Found<DocumentHit>, DbError> {
    snapshot(c, |c| search_by_document(c, query, filter, limit))
}

fn search_by_document(
    c: &Connection,
    query: &Query,
    filter: &SearchFilter,
    limit: usize,
) -> Result<Found<DocumentHit>, DbError> {
    let from = matching(filter);
    let floor = rank_floor(c, query, filter)?;
    // SQLite's min() gives the other bare columns of the row it picked: the
    // best page's rowid.
    let mut docs = self::query(
        c,
        &format!(
            "SELECT p.rowid / {ROWID_STRIDE} AS doc, min(p.rank), p.rowid {from} GROUP BY doc"
        ),
        query,
        filter,
        &[(":floor", &floor)],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        },
    )?;
    docs.sort_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    // Counting every matching document exactly would cost what the bound
    // saves (a distinct count over all matches): past the bound the count is
    // of the ranked documents, a lower bound.
    let total = docs.len();
    let at_least = floor >= 0;
    let hits = docs
        .into_iter()
        .take(limit)
        .map(|(doc, rank, best)| {
            let lo = doc * ROWID_STRIDE;
            // Counted over the whole document, ranked part or not.
            let pages = self::query(
                c,
                "SELECT count(*) FROM page_index WHERE page_index MATCH :q \
                 AND rowid BETWEEN :lo AND :hi",
                query,
                &SearchFilter::default(),
                &[(":lo", &lo), (":hi", &(lo + ROWID_STRIDE - 1))],
                |r| r.get::<_, i64>(0),
            )?
            .first()
            .copied()
            .unwrap_or(1);
            let others = self::query(
                c,
                &format!(
                    "SELECT rowid % 1000000 FROM page_index \
                     WHERE page_index MATCH :q AND rowid BETWEEN :lo AND :hi AND rowid != :best \
                     ORDER BY rowid LIMIT {OTHER_PAGES}"
                ),
                query,
                &SearchFilter::default(),
                &[
                    (":lo", &lo),
                    (":hi", &(lo + ROWID_STRIDE - 1)),
                    (":best", &best),
                ],
                |r| r.get::<_, i64>(0),
            )?;
            Ok(hit(c, query, best, rank)?.map(|best| DocumentHit {
                best,
                matching_pages: pages,
                other_pages: others,
            }))
        })
        .filter_map(Result::transpose)
        .collect::<Result<_, DbError>>()?;
    Ok(Found {
        hits,
        total,
        at_least,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fts(text: &str) -> Option<String> {
        Query::parse(text).map(|q| fts_expression(&q))
    }

    /// A word on more pages than [`RANK_AT_MOST`] ranks the newest of them;
    /// a rare word on an old page is still found; counts say what they are.
    #[test]
    fn very_frequent_words_rank_a_bounded_set_and_needles_are_still_found() {
        let (_dir, db) = crate::db::sqlite::test_db();
        let pages_per_doc = 50;
        let docs = RANK_AT_MOST / pages_per_doc + 5;
        db.write(|tx| {
            for d in 1..=docs {
                tx.execute(
                    "INSERT INTO documents (id, original_name, stored_path, size, sha256, kind, \
                     status, created_at, updated_at) VALUES (?1, ?1, ?1, 1, ?1, 'pdf', 'indexed', 0, 0)",
                    [d],
                )?;
                for p in 1..=pages_per_doc {
                    let text = if d == 1 && p == 7 { "alpha needle" } else { "alpha beta" };
                    tx.execute(
                        "INSERT INTO page_index (rowid, text, document_id, page_number) \
                         VALUES (?1, ?2, ?3, ?4)",
                        rusqlite::params![d * ROWID_STRIDE + p, text, d, p],
                    )?;
                }
            }
            Ok::<_, DbError>(())
        })
        .unwrap();
        let all = SearchFilter::default();
        let alpha = Query::parse("alpha").unwrap();
        let found = db.read(|c| search_documents(c, &alpha, &all, 10)).unwrap();
        assert_eq!(found.hits.len(), 10);
        assert!(found.at_least && found.total >= RANK_AT_MOST as usize / 50);
        // The newest documents are the ones ranked; their counts are exact.
        assert!(found.hits.iter().all(|h| h.best.id > 5), "{:?}", found.hits);
        assert!(found.hits.iter().all(|h| h.matching_pages == pages_per_doc));
        // By page: the count is exact, the ranking still bounded.
        let pages = db.read(|c| search(c, &alpha, &all, 10)).unwrap();
        assert_eq!(
            (pages.total, pages.at_least),
            ((docs * pages_per_doc) as usize, true)
        );
        // A needle on the oldest document, ranked in full.
        let needle = Query::parse("needle alpha").unwrap();
        let found = db.read(|c| search_documents(c, &needle, &all, 10)).unwrap();
        assert_eq!(
            (found.hits.len(), found.total, found.at_least),
            (1, 1, false)
        );
        assert_eq!((found.hits[0].best.id, found.hits[0].best.page), (1, 7));
    }

    #[test]
    fn builds_safe_expressions() {
        assert_eq!(fts("hello world").unwrap(), "\"hello\" AND \"world\"");
        assert_eq!(
            fts("\"exact phrase\" more").unwrap(),
            "\"exact phrase\" AND \"more\""
        );
        assert_eq!(fts("pref*").unwrap(), "\"pref\"*");
        assert_eq!(fts("AND NOT OR").unwrap(), "\"AND\" AND \"NOT\" AND \"OR\"");
        assert_eq!(
            fts("unbalanced \"quote").unwrap(),
            "\"unbalanced\" AND \"quote\""
        );
        assert_eq!(fts("e-mail: don't").unwrap(), "\"e-mail:\" AND \"don't\"");
        assert_eq!(fts("*** \"\" - :"), None);
        assert_eq!(fts_expression(&Query::Raw("a OR b".into())), "a OR b");
    }
}
