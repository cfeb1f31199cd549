//! `quire cancel`: cancel pending or running tasks.

use std::process::ExitCode;

use crate::app::App;
use crate::cli::CancelArgs;
use crate::config::Config;

/// Runs `quire cancel`. Exits 1 if any named task could not be cancelled.
pub fn run(config: &Config, args: &CancelArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let mut code = ExitCode::SUCCESS;
    for &id in &args.tasks {
        match app.queue.cancel(id) {
            Ok(()) => println!("task {id} cancelled"),
            Err(e) => {
                eprintln!("quire: error: {e}");
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}
