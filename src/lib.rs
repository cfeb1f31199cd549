//! quire: a hot-folder OCR and full-text search daemon on SQLite.
//!
//! [`run`] dispatches a parsed command line; [`app::App`] is the opened data
//! directory (database, queue, store) every command works on.

pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod db;
pub mod detect;
pub mod http;
pub mod inbox;
pub mod ingest;
pub mod live;
pub mod logging;
pub mod manpages;
pub mod metrics;
pub mod queue;
pub mod scheduler;
pub mod store;
pub mod systemd;
pub mod tasks;
mod text_enum;
pub mod worker;

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Cli, Command};
use crate::config::Config;

/// The systemd unit shipped in dist/, printed by `quire systemd-unit`.
pub const SYSTEMD_UNIT: &str = include_str!("../dist/quire.service");

/// Resolves the configuration (flags > environment > file > defaults) and runs
/// the command. `Ok` carries the exit code for commands that report a partial
/// failure (for example a file that could not be enqueued).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that need no configuration or data dir.
    match &cli.command {
        Command::OcrChild => {
            // Configured by its parent over stdin, not from files.
            tasks::ocr::child::child_main()?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            manpages::write_completions(*shell, &Cli::command(), &mut std::io::stdout().lock());
            return Ok(ExitCode::SUCCESS);
        }
        Command::SystemdUnit => {
            print!("{SYSTEMD_UNIT}");
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man { dir } => {
            use clap::CommandFactory;
            manpages::write_man_pages(Cli::command(), dir)
                .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())
        .context("loading the configuration")?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if let Some(url) = cli.database {
        config.database.url = url;
    }
    match cli.command {
        Command::Serve(args) => commands::serve::run(&config, &args),
        Command::Enqueue(args) => commands::enqueue::run(&config, &args),
        Command::Process(args) => commands::process::run(&config, &args),
        Command::Search(args) => commands::search::run(&config, &args),
        Command::Stats(args) => commands::stats::run(&config, &args),
        Command::List(args) => commands::list::run(&config, &args),
        Command::Show(args) => commands::show::run(&config, &args),
        Command::Text(args) => commands::text::run(&config, &args),
        Command::Export(args) => commands::export::run(&config, &args),
        Command::Open(args) => commands::open::run(&config, &args),
        Command::Rm(args) => commands::rm::run(&config, &args),
        Command::Retry(args) => commands::retry::run(&config, &args),
        Command::Cancel(args) => commands::cancel::run(&config, &args),
        Command::Doctor => commands::doctor::run(&config),
        Command::CopyDb(args) => commands::copy_db::run(&config, &args),
        Command::OcrChild
        | Command::Completions { .. }
        | Command::SystemdUnit
        | Command::Man { .. } => unreachable!("handled above"),
    }
}
