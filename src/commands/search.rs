//! `quire search`: ranked full-text search over every page.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use crate::app::App;
use crate::cli::SearchArgs;
use crate::config::Config;
use crate::store::{Query, SearchFilter};

/// A hit as printed by `--json`.
#[derive(Serialize)]
struct JsonHit<'a> {
    id: i64,
    name: &'a str,
    page: i64,
    snippet: String,
    score: f64,
}

/// Runs `quire search`.
pub fn run(config: &Config, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let text = args.query.join(" ");
    let query = if args.raw {
        Some(Query::Raw(text.clone()))
    } else {
        Query::parse(&text)
    };
    let filter = SearchFilter {
        since_ms: args
            .since
            .as_deref()
            .map(|d| super::parse_date(d, "--since"))
            .transpose()?,
        until_ms: args
            .until
            .as_deref()
            .map(|d| super::parse_date(d, "--until").map(|t| t + 86_400_000))
            .transpose()?,
        status: super::parse_status(args.status.as_deref())?,
    };
    let hits = match &query {
        Some(q) => app.store.search(q, &filter, args.limit).with_context(|| {
            if args.raw {
                format!("the raw query {text:?} is not valid; drop --raw to search it as words")
            } else {
                format!("searching {text:?}")
            }
        })?,
        None => vec![],
    };
    if args.json {
        let hits: Vec<JsonHit> = hits
            .iter()
            .map(|h| JsonHit {
                id: h.id,
                name: &h.name,
                page: h.page,
                snippet: h.snippet.replace(['\x02', '\x03'], ""),
                score: h.score,
            })
            .collect();
        super::print_json(&hits)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let (on, off) = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    for h in &hits {
        let snippet = h
            .snippet
            .replace('\n', " ")
            .replace('\x02', on)
            .replace('\x03', off);
        writeln!(out, "{}:{} page {}: {snippet}", h.id, h.name, h.page)?;
    }
    if hits.is_empty() {
        eprintln!("no matches");
    }
    Ok(ExitCode::SUCCESS)
}
