//! `quire rm`: remove documents: their tasks, pages and index rows, with
//! their originals moved to `trash/` (or deleted with `--purge`). Safe while
//! `serve` runs: a task of a removed document loses its claim and stops.

use std::io::Write;
use std::process::ExitCode;

use crate::app::App;
use crate::cli::RmArgs;
use crate::config::Config;

/// Runs `quire rm`. Exits 1 if any id named no document (the others are
/// still removed).
pub fn run(config: &Config, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let mut code = ExitCode::SUCCESS;
    let mut out = std::io::stdout().lock();
    for &id in &args.ids {
        match app.store.remove(id, args.purge)? {
            None => {
                eprintln!(
                    "quire: error: no document with id {id}; `quire list` shows the documents there are"
                );
                code = ExitCode::from(1);
            }
            Some(r) => {
                match &r.trashed {
                    Some(to) => writeln!(
                        out,
                        "removed document {id} {:?}; its file is in {}",
                        r.document.name,
                        to.display()
                    )?,
                    None => writeln!(
                        out,
                        "removed document {id} {:?} and its file",
                        r.document.name
                    )?,
                }
                if let Some(pdf) = &r.document.searchable_pdf {
                    writeln!(out, "  its searchable PDF stays at {pdf}")?;
                }
            }
        }
    }
    Ok(code)
}
