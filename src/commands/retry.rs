//! `quire retry`: put failed or cancelled tasks back in the queue, named by
//! task or by document.

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;

use crate::app::App;
use crate::cli::RetryArgs;
use crate::config::Config;
use crate::queue::TaskStatus;

/// Runs `quire retry`. Exits 1 if any named task (or document) had nothing
/// to retry.
pub fn run(config: &Config, args: &RetryArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let mut out = std::io::stdout().lock();
    if args.all_failed {
        let ids = app.queue.retry_all_failed()?;
        writeln!(out, "retried {} failed task(s)", ids.len())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut ids = args.tasks.clone();
    let mut code = ExitCode::SUCCESS;
    for &doc in &args.docs {
        app.document(doc)?;
        // The newest finished-but-not-completed task of each type, unless
        // that type already has a live task.
        let tasks = app.queue.tasks_of(doc)?;
        let live: HashSet<_> = tasks
            .iter()
            .filter(|t| matches!(t.status, TaskStatus::Pending | TaskStatus::Claimed))
            .map(|t| t.task_type)
            .collect();
        let mut seen = HashSet::new();
        let mut newest_first: Vec<_> = tasks.iter().collect();
        newest_first.sort_by_key(|t| std::cmp::Reverse(t.id));
        let retry: Vec<i64> = newest_first
            .into_iter()
            .filter(|t| matches!(t.status, TaskStatus::Failed | TaskStatus::Cancelled))
            .filter(|t| !live.contains(&t.task_type) && seen.insert(t.task_type))
            .map(|t| t.id)
            .collect();
        if retry.is_empty() {
            eprintln!("quire: error: document {doc} has no failed or cancelled task to retry");
            code = ExitCode::from(1);
        }
        ids.extend(retry);
    }
    for id in ids {
        match app.queue.retry(id) {
            Ok(()) => writeln!(out, "task {id} is pending again")?,
            Err(e) => {
                eprintln!("quire: error: {e}");
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}
