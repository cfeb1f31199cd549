//! `quire list`: documents, newest first.

use std::process::ExitCode;

use serde::Serialize;

use crate::app::App;
use crate::cli::ListArgs;
use crate::config::Config;
use crate::store::Document;

/// A line of `quire list --json`.
#[derive(Serialize)]
pub(crate) struct Item<'a> {
    id: i64,
    name: &'a str,
    status: &'a str,
    error: Option<&'a str>,
    pages: Option<i64>,
    kind: &'a str,
    size: i64,
    created_at: i64,
    poor_pages: i64,
}

/// The `--json` lines for `docs` (also the web API's).
pub(crate) fn items(docs: &[Document]) -> Vec<Item<'_>> {
    docs.iter()
        .map(|d| Item {
            id: d.id,
            name: &d.name,
            status: d.status.as_str(),
            error: d.error.as_deref(),
            pages: d.pages,
            kind: &d.kind,
            size: d.size,
            created_at: d.created_at,
            poor_pages: d.poor_pages,
        })
        .collect()
}

/// Runs `quire list`.
pub fn run(config: &Config, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let status = super::parse_status(args.status.as_deref())?;
    let app = App::open_existing(config)?;
    let mut docs = app.store.list(status)?;
    if args.poor {
        docs.retain(|d| d.poor_pages > 0);
    }
    if args.json {
        let items = items(&docs);
        super::print_json(&items)?;
        return Ok(ExitCode::SUCCESS);
    }
    for d in &docs {
        let pages = d
            .pages
            .map(|p| format!("{p}p"))
            .unwrap_or_else(|| "-".into());
        print!(
            "{:>6}  {:<9} {:>5}  {}  {}",
            d.id,
            d.status,
            pages,
            super::format_time(d.created_at),
            d.name
        );
        if d.poor_pages > 0 {
            print!("  ({} poor page(s))", d.poor_pages);
        }
        match &d.error {
            Some(e) => println!("  [{e}]"),
            None => println!(),
        }
    }
    Ok(ExitCode::SUCCESS)
}
