//! `quire text`: a document's text, pages separated by form feeds like pdftotext.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;

use crate::app::App;
use crate::cli::TextArgs;
use crate::config::Config;
use crate::store::DocumentStatus;

/// Runs `quire text`.
pub fn run(config: &Config, args: &TextArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let doc = app.document(args.id)?;
    let pages = app.store.pages(doc.id)?;
    if pages.is_empty() {
        let why = match (doc.status, &doc.error) {
            (DocumentStatus::Failed, Some(e)) => format!("it failed: {e}"),
            (DocumentStatus::Failed | DocumentStatus::Cancelled, None) => {
                format!("it is {}", doc.status)
            }
            (DocumentStatus::Queued | DocumentStatus::Ocr, _) => {
                format!("it is not read yet (it is {})", doc.status)
            }
            _ => "no page of it has text".to_string(),
        };
        bail!("document {} has no text: {why}", doc.id);
    }
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
