//! The `quire` binary: parse, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = quire::cli::with_search_exclusions(std::env::args_os().collect());
    let cli = quire::cli::Cli::parse_from(args);
    if !cli.command.drives_children() {
        // A closed pipe (`quire list | head`) ends a command that only
        // prints at once and quietly, as it does cat and grep: the default
        // action of SIGPIPE, which Rust's runtime turns off. Commands that
        // drive OCR children keep it off and end on the write error instead.
        // SAFETY: restores a signal's default action before any thread starts.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    quire::logging::init(cli.verbose, cli.quiet);
    let verbose = cli.verbose > 0;
    match quire::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            if verbose {
                eprintln!("quire: error: {err:?}");
            } else {
                eprintln!("quire: error: {err:#}");
            }
            // Usage errors exit 2, like clap's own.
            let usage = err
                .chain()
                .any(|e| e.downcast_ref::<quire::commands::UsageError>().is_some());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// A closed pipe (`quire list | head`) is not an error worth a message.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
