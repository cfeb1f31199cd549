//! `quire open`: where a document's original is, or open it in the
//! desktop's viewer.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

use crate::app::App;
use crate::cli::OpenArgs;
use crate::config::Config;

/// Runs `quire open`: prints the original's absolute path; with `--view`
/// hands it to `xdg-open` instead.
pub fn run(config: &Config, args: &OpenArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let doc = app.document(args.id)?;
    let file = app.store.file_of(&doc);
    let file = std::path::absolute(&file).unwrap_or(file);
    if !file.is_file() {
        anyhow::bail!(
            "document {}'s stored file {} is missing; restore it from a backup",
            doc.id,
            file.display()
        );
    }
    if !args.view {
        writeln!(std::io::stdout().lock(), "{}", file.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    let status = std::process::Command::new("xdg-open")
        .arg(&file)
        .status()
        .context("cannot run xdg-open (apt-get install xdg-utils), or open the path it prints without --view")?;
    if !status.success() {
        anyhow::bail!("xdg-open could not open {} ({status})", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
