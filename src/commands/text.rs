//! `quire text`: a document's text, pages separated by form feeds like pdftotext.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;

use crate::app::App;
use crate::cli::TextArgs;
use crate::config::Config;

/// Runs `quire text`.
pub fn run(config: &Config, args: &TextArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let doc = app.document(args.id)?;
    let pages = app.store.pages(doc.id)?;
    let mut out = std::io::stdout().lock();
    match args.page {
        Some(n) => {
            let Some(p) = pages.iter().find(|p| p.number == n) else {
                bail!(
                    "document {} has no text for page {n} (it has {} page(s) read)",
                    doc.id,
                    pages.len()
                );
            };
            writeln!(out, "{}", p.text)?;
        }
        None => {
            for p in &pages {
                write!(out, "{}\x0c", p.text)?;
            }
            writeln!(out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
