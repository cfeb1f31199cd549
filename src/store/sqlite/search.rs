//! Search on SQLite: a [`Query`] as an FTS5 expression that always parses,
//! ranked by FTS5's BM25.

use rusqlite::{Connection, named_params};

use super::index::ROWID_STRIDE;
use crate::db::DbError;
use crate::store::{Hit, Query, SearchFilter, Term};

/// The FTS5 expression for `query`: every term a quoted string (the
/// tokenizer splits it further at punctuation), joined with `AND`.
pub(crate) fn fts_expression(query: &Query) -> String {
    match query {
        Query::Raw(raw) => raw.clone(),
        Query::All(terms) => terms
            .iter()
            .map(|t| match t {
                Term::Word { text, prefix: true } => format!("{}*", quote(text)),
                Term::Word { text, .. } | Term::Phrase(text) => quote(text),
            })
            .collect::<Vec<_>>()
            .join(" AND "),
    }
}

/// An FTS5 string literal.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Best BM25 first, newest document (highest id) first on ties.
///
/// Two steps, because `snippet()` is costly: the best `limit` rows are
/// picked by rank alone (joining documents only when a filter needs it),
/// then snippets are made for those rows only.
pub(crate) fn search(
    c: &Connection,
    query: &Query,
    filter: &SearchFilter,
    limit: usize,
) -> Result<Vec<Hit>, DbError> {
    let filtered =
        filter.since_ms.is_some() || filter.until_ms.is_some() || filter.status.is_some();
    let top = if filtered {
        format!(
            "SELECT p.rowid AS r, p.rank AS rank FROM page_index p \
             JOIN documents d ON d.id = p.document_id \
             WHERE page_index MATCH :q \
               AND (:since IS NULL OR d.created_at >= :since) \
               AND (:until IS NULL OR d.created_at < :until) \
               AND (:status IS NULL OR d.status = :status) \
             ORDER BY p.rank, p.rowid / {ROWID_STRIDE} DESC, p.rowid LIMIT :limit"
        )
    } else {
        format!(
            "SELECT rowid AS r, rank FROM page_index WHERE page_index MATCH :q \
             AND :since IS NULL AND :until IS NULL AND :status IS NULL \
             ORDER BY rank, rowid / {ROWID_STRIDE} DESC, rowid LIMIT :limit"
        )
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
            ":q": fts_expression(query), ":since": filter.since_ms, ":until": filter.until_ms,
            ":status": filter.status.map(|s| s.as_str()), ":limit": limit as i64,
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
