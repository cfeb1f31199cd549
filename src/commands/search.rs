//! `quire search`: ranked full-text search, one result per document (its
//! best page first) or, with `--pages`, one per page.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::app::App;
use crate::cli::SearchArgs;
use crate::config::Config;
use crate::db::DbError;
use crate::store::{Hit, Query, SearchFilter};

/// A result as printed by `--json`: the page's fields (as before results
/// were grouped), the original file's absolute path and, by document, how
/// many pages match and which others.
#[derive(Serialize)]
struct JsonHit<'a> {
    id: i64,
    name: &'a str,
    page: i64,
    snippet: String,
    score: f64,
    path: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    matching_pages: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    other_pages: Option<&'a [i64]>,
}

/// A result, for either form: the (best) page's hit and, by document, the
/// number of matching pages and the other pages.
pub(crate) type Row = (Hit, Option<i64>, Vec<i64>);

/// The filter `--since`, `--until` and `--status` ask for (the API's
/// `since`, `until` and `status` the same): dates are days, `until` taking
/// in the whole of its day. A bad date or status is a usage error.
pub(crate) fn filter(
    since: Option<&str>,
    until: Option<&str>,
    status: Option<&str>,
) -> anyhow::Result<SearchFilter> {
    Ok(SearchFilter {
        since_ms: since.map(|d| super::parse_date(d, "--since")).transpose()?,
        until_ms: until
            .map(|d| super::parse_date(d, "--until").map(|t| t + 86_400_000))
            .transpose()?,
        status: super::parse_status(status)?,
    })
}

/// Runs `quire search`. Exits 1 when nothing matches (as grep does), 2 on a
/// usage error (a bad date, status or raw query).
pub fn run(config: &Config, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let text = args.query.join(" ");
    let filter = filter(
        args.since.as_deref(),
        args.until.as_deref(),
        args.status.as_deref(),
    )?;
    let query = parse_query(&text, args.raw)?;
    let app = App::open_existing(config)?;
    let found = find(&app, &query, &text, &filter, args.limit, args.pages)?;
    let results = &found.results;
    if args.json {
        super::print_json(&to_json(results))?;
    } else {
        print_human(results)?;
    }
    let (total, at_least) = (found.total, found.at_least);
    let unit = if args.pages { "page" } else { "document" };
    if results.is_empty() {
        eprintln!("no matches");
        return Ok(ExitCode::from(1));
    }
    if total > results.len() {
        let more = total - results.len();
        if at_least {
            eprintln!(
                "at least {more} more matching {unit}(s) (the word is on very many pages: the \
                 newest are ranked); add words to narrow it"
            );
        } else {
            eprintln!("{more} more matching {unit}(s); --limit {total} shows them all");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The query `text` means, as `quire search` reads it (`raw`: FTS5's own
/// syntax); a usage error when it has nothing to search for.
pub(crate) fn parse_query(text: &str, raw: bool) -> anyhow::Result<Query> {
    let query = if raw {
        Some(Query::Raw(text.to_owned()))
    } else {
        Query::parse(text)
    };
    query.ok_or_else(|| {
        super::usage(format!(
            "{text:?} has nothing to search for: give at least one word that must match \
             (exclusions alone, -word or NOT word, match nothing)"
        ))
    })
}

/// What a search found: the results shown and how many matched in all.
pub(crate) struct Found {
    pub results: Vec<Row>,
    pub total: usize,
    /// `total` is a lower bound (a word on very many pages).
    pub at_least: bool,
}

/// Runs `query` (`text` as typed, for errors): one result per document, or
/// per page with `pages`. A query SQLite cannot run is a usage error.
pub(crate) fn find(
    app: &App,
    query: &Query,
    text: &str,
    filter: &SearchFilter,
    limit: usize,
    pages: bool,
) -> anyhow::Result<Found> {
    let bad_query = |e: DbError| match e {
        DbError::BadQuery(why) => super::usage(why),
        e => anyhow::Error::new(e).context(format!("searching {text:?}")),
    };
    if pages {
        let found = app.store.search(query, filter, limit).map_err(bad_query)?;
        let results = found.hits.into_iter().map(|h| (h, None, vec![])).collect();
        return Ok(Found {
            results,
            total: found.total,
            at_least: found.at_least,
        });
    }
    let found = app
        .store
        .search_documents(query, filter, limit)
        .map_err(bad_query)?;
    let results = found
        .hits
        .into_iter()
        .map(|d| (d.best, Some(d.matching_pages), d.other_pages))
        .collect();
    Ok(Found {
        results,
        total: found.total,
        at_least: found.at_least,
    })
}

/// The `--json` form of `results` (also the web API's).
pub(crate) fn to_json(results: &[Row]) -> serde_json::Value {
    let absolute: Vec<_> = results
        .iter()
        .map(|(h, ..)| std::path::absolute(&h.path).unwrap_or_else(|_| h.path.clone()))
        .collect();
    let hits: Vec<JsonHit> = results
        .iter()
        .zip(&absolute)
        .map(|((h, pages, others), path)| JsonHit {
            id: h.id,
            name: &h.name,
            page: h.page,
            snippet: h.snippet.replace(['\x02', '\x03'], ""),
            score: h.score,
            path,
            matching_pages: *pages,
            other_pages: pages.map(|_| others.as_slice()),
        })
        .collect();
    serde_json::to_value(hits).expect("search results serialize")
}

/// `ID:NAME page P, also Q, R (N pages match): snippet`, the matched words
/// in bold on a terminal.
fn print_human(results: &[Row]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let (on, off) = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    for (h, pages, others) in results {
        let snippet = h
            .snippet
            .replace('\n', " ")
            .replace('\x02', on)
            .replace('\x03', off);
        let mut at = format!("page {}", h.page);
        if !others.is_empty() {
            let list: Vec<String> = others.iter().map(i64::to_string).collect();
            at += &format!(", also {}", list.join(", "));
        }
        match pages {
            Some(n) if *n as usize > others.len() + 1 => {
                at += &format!(" ({n} pages match)");
            }
            _ => {}
        }
        writeln!(out, "{}:{} {at}: {snippet}", h.id, h.name)?;
    }
    Ok(())
}
