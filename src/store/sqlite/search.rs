//! Search on SQLite: a [`Query`] as an FTS5 expression that always parses,
//! ranked by FTS5's BM25.

use rusqlite::Connection;

use super::index::ROWID_STRIDE;
use crate::db::DbError;
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
/// over `page_index p` (joined with `documents d` only when a filter needs it).
fn matching(filter: &SearchFilter) -> &'static str {
    let filtered =
        filter.since_ms.is_some() || filter.until_ms.is_some() || filter.status.is_some();
    if filtered {
        "FROM page_index p JOIN documents d ON d.id = p.document_id \
         WHERE page_index MATCH :q \
           AND (:since IS NULL OR d.created_at >= :since) \
           AND (:until IS NULL OR d.created_at < :until) \
           AND (:status IS NULL OR d.status = :status)"
    } else {
        "FROM page_index p WHERE page_index MATCH :q \
         AND :since IS NULL AND :until IS NULL AND :status IS NULL"
    }
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
fn hit(c: &Connection, query: &Query, rowid: i64, rank: f64) -> Result<Hit, DbError> {
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
    hits.into_iter()
        .next()
        .ok_or_else(|| DbError::BadQuery(format!("index row {rowid} vanished during the search")))
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
    let from = matching(filter);
    let top = self::query(
        c,
        &format!(
            "SELECT p.rowid, p.rank {from} \
             ORDER BY p.rank, p.rowid / {ROWID_STRIDE} DESC, p.rowid LIMIT :limit"
        ),
        query,
        filter,
        &[(":limit", &(limit as i64))],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)),
    )?;
    let total = if top.len() < limit {
        top.len()
    } else {
        let count = self::query(
            c,
            &format!("SELECT count(*) {from}"),
            query,
            filter,
            &[],
            |r| r.get::<_, i64>(0),
        )?;
        count.first().copied().unwrap_or(0) as usize
    };
    let hits = top
        .into_iter()
        .map(|(rowid, rank)| hit(c, query, rowid, rank))
        .collect::<Result<_, _>>()?;
    Ok(Found { hits, total })
}

/// How many of a document's other matching pages a hit lists.
const OTHER_PAGES: i64 = 10;

/// Documents, by their best page's BM25, newest first on ties: each with its
/// best page's hit, its number of matching pages and its next best pages.
pub(crate) fn search_documents(
    c: &Connection,
    query: &Query,
    filter: &SearchFilter,
    limit: usize,
) -> Result<Found<DocumentHit>, DbError> {
    let from = matching(filter);
    // SQLite's min() gives the other bare columns of the row it picked: the
    // best page's rowid.
    let mut docs = self::query(
        c,
        &format!(
            "SELECT p.rowid / {ROWID_STRIDE} AS doc, min(p.rank), p.rowid, count(*) {from} \
             GROUP BY doc"
        ),
        query,
        filter,
        &[],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        },
    )?;
    docs.sort_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
    let total = docs.len();
    let hits = docs
        .into_iter()
        .take(limit)
        .map(|(doc, rank, best, pages)| {
            let lo = doc * ROWID_STRIDE;
            let others = self::query(
                c,
                "SELECT rowid % 1000000 FROM page_index \
                 WHERE page_index MATCH :q AND rowid BETWEEN :lo AND :hi AND rowid != :best \
                 ORDER BY rank, rowid LIMIT :n",
                query,
                &SearchFilter::default(),
                &[
                    (":lo", &lo),
                    (":hi", &(lo + ROWID_STRIDE - 1)),
                    (":best", &best),
                    (":n", &OTHER_PAGES),
                ],
                |r| r.get::<_, i64>(0),
            )?;
            Ok(DocumentHit {
                best: hit(c, query, best, rank)?,
                matching_pages: pages,
                other_pages: others,
            })
        })
        .collect::<Result<_, DbError>>()?;
    Ok(Found { hits, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fts(text: &str) -> Option<String> {
        Query::parse(text).map(|q| fts_expression(&q))
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
