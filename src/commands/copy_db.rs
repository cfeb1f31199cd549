//! `quire copy-db --to URL`: moves a SQLite installation to PostgreSQL.

use std::process::ExitCode;

use anyhow::Context;

use crate::app::App;
use crate::cli::CopyDbArgs;
use crate::config::Config;
use crate::db::{Db, Location};

/// Copies the data dir's SQLite database into the empty PostgreSQL database
/// `--to`, checks the counts and prints what to change in the configuration.
/// Originals stay where they are: both engines keep them in the data dir.
pub fn run(config: &Config, args: &CopyDbArgs) -> anyhow::Result<ExitCode> {
    let mut from = config.clone();
    from.database.url.clear();
    let source = App::open_existing(&from)?;
    let mut to = config.clone();
    to.database.url = args.to.clone();
    let location = to.location().context("--to")?;
    let Location::Postgres(target) = &location else {
        unreachable!("a URL is a PostgreSQL location");
    };
    let db = Db::open(location.clone(), 2)?;
    let copied = source
        .store
        .copy_to(&db)
        .with_context(|| format!("copying {} into {target}", config.db_path().display()))?;
    for (table, rows) in &copied {
        println!("{table:>14}: {rows} rows copied");
    }
    println!(
        "\n{} is now a copy of {}, checked table by table. To use it, stop quire serve, set\n  \
         database.url = \"{target}\"\nin the configuration (or QUIRE_DATABASE_URL; a password goes in \
         database.password_file, never in the URL printed here), keep data_dir as it is (the \
         originals stay there), and start it again. Changes made here since the \
         copy began are not in it. quire.db is left as it was.",
        target,
        config.db_path().display()
    );
    Ok(ExitCode::SUCCESS)
}
