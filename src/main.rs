//! The `quire` binary: parse, run, map the result to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = quire::cli::Cli::parse();
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
            ExitCode::from(1)
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
