//! `quire cancel`: cancel pending or running tasks, named by task or by
//! document. A running task stops within a second: the daemon running it
//! notices the cancel at once and stops its OCR child.

use std::io::Write;
use std::process::ExitCode;

use crate::app::App;
use crate::cli::CancelArgs;
use crate::config::Config;
use crate::queue::TaskStatus;

/// Runs `quire cancel`. Exits 1 if any named task (or document) had nothing
/// to cancel.
pub fn run(config: &Config, args: &CancelArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let mut ids = args.tasks.clone();
    let mut code = ExitCode::SUCCESS;
    for &doc in &args.docs {
        app.document(doc)?;
        let live: Vec<i64> = app
            .queue
            .tasks_of(doc)?
            .iter()
            .filter(|t| matches!(t.status, TaskStatus::Pending | TaskStatus::Claimed))
            .map(|t| t.id)
            .collect();
        if live.is_empty() {
            eprintln!("quire: error: document {doc} has no pending or running task");
            code = ExitCode::from(1);
        }
        ids.extend(live);
    }
    let mut out = std::io::stdout().lock();
    for id in ids {
        match app.queue.cancel(id) {
            Ok(()) => writeln!(out, "task {id} cancelled")?,
            Err(e) => {
                eprintln!("quire: error: {e}");
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}
