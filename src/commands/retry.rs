//! `quire retry`: put failed or cancelled tasks back in the queue.

use std::process::ExitCode;

use crate::app::App;
use crate::cli::RetryArgs;
use crate::config::Config;

/// Runs `quire retry`. Exits 1 if any named task could not be retried.
pub fn run(config: &Config, args: &RetryArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    if args.all_failed {
        let ids = app.queue.retry_all_failed()?;
        println!("retried {} failed task(s)", ids.len());
        return Ok(ExitCode::SUCCESS);
    }
    let mut code = ExitCode::SUCCESS;
    for &id in &args.tasks {
        match app.queue.retry(id) {
            Ok(()) => println!("task {id} is pending again"),
            Err(e) => {
                eprintln!("quire: error: {e}");
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}
