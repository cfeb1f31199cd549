//! `quire search`: ranked full-text search over every page.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::app::App;
use crate::cli::SearchArgs;
use crate::config::Config;
use crate::process::search::to_fts;
use crate::store::SearchFilter;

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
        Some(text.clone())
    } else {
        to_fts(&text)
    };
    let filter = SearchFilter {
        since_ms: args
            .since
            .as_deref()
            .map(|d| parse_date(d, "--since"))
            .transpose()?,
        until_ms: args
            .until
            .as_deref()
            .map(|d| parse_date(d, "--until").map(|t| t + 86_400_000))
            .transpose()?,
        status: args.status.clone(),
    };
    let hits = match &query {
        Some(q) => app.store.search(q, &filter, args.limit).with_context(|| {
            if args.raw {
                format!("the FTS5 query {q:?} is not valid; drop --raw to search it as words")
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

/// `YYYY-MM-DD` to Unix ms at 00:00 UTC.
fn parse_date(s: &str, flag: &str) -> anyhow::Result<i64> {
    let parts: Vec<i64> = s.split('-').filter_map(|p| p.parse().ok()).collect();
    let [y, m, d] = parts[..] else {
        bail!("{flag} {s:?}: write the date as YYYY-MM-DD")
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        bail!("{flag} {s:?}: write the date as YYYY-MM-DD");
    }
    // Days from civil, after Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_to_utc_midnight() {
        assert_eq!(parse_date("1970-01-01", "x").unwrap(), 0);
        assert_eq!(parse_date("2023-11-14", "x").unwrap(), 1_699_920_000_000);
        assert!(parse_date("14/11/2023", "x").is_err());
    }
}
