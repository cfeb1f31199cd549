//! One module per subcommand, each with `run(config, args)`.

pub mod cancel;
pub mod copy_db;
pub mod doctor;
pub mod enqueue;
pub mod export;
pub mod list;
pub mod open;
pub mod process;
pub mod retry;
pub mod rm;
pub mod search;
pub mod serve;
pub mod show;
pub mod stats;
pub mod text;

mod dates;

pub(crate) use dates::{format_time, parse_date};

use crate::store::DocumentStatus;

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    // Serialise first, so that a closed pipe surfaces as an io::Error (quiet exit).
    let text = serde_json::to_string_pretty(value)?;
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}

/// A mistake in how a command was called (a bad flag value, a query that
/// cannot run): `quire` exits 2 for it, as for clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A [`UsageError`] saying `why`.
pub(crate) fn usage(why: impl Into<String>) -> anyhow::Error {
    UsageError(why.into()).into()
}

/// Parses a `--status` value; the error lists the statuses there are.
pub(crate) fn parse_status(status: Option<&str>) -> anyhow::Result<Option<DocumentStatus>> {
    status
        .map(|s| {
            s.parse().map_err(|_| {
                let all: Vec<_> = DocumentStatus::ALL.iter().map(|s| s.as_str()).collect();
                usage(format!(
                    "unknown status {s:?}; use one of: {}",
                    all.join(", ")
                ))
            })
        })
        .transpose()
}
