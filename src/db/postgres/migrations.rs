//! The schema on PostgreSQL: numbered `.sql` files in `migrations/postgres/`,
//! embedded at compile time, and the version they reached in the table
//! `quire_schema` (one row).

use postgres::Client;

use super::{PgError, Target};

/// Every migration, in order; migration `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_schema",
        include_str!("../../../migrations/postgres/0001_schema.sql"),
    ),
    (
        "0002_notify",
        include_str!("../../../migrations/postgres/0002_notify.sql"),
    ),
    (
        "0003_queue_step",
        include_str!("../../../migrations/postgres/0003_queue_step.sql"),
    ),
    (
        "0004_page_index_narrow",
        include_str!("../../../migrations/postgres/0004_page_index_narrow.sql"),
    ),
    (
        "0005_queue_step_plans",
        include_str!("../../../migrations/postgres/0005_queue_step_plans.sql"),
    ),
    (
        "0006_checks_as_domains",
        include_str!("../../../migrations/postgres/0006_checks_as_domains.sql"),
    ),
];

/// Transaction-level advisory lock taken by every migration run on the
/// server: "quire" in ASCII.
const MIGRATION_LOCK: i64 = 0x71_75_69_72_65;

/// The schema version this build writes.
pub fn schema_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// Brings the database up to [`schema_version`] in one transaction, under an
/// advisory lock: ten hosts starting together wait for each other, the
/// first migrates, the others find the work done. PostgreSQL's DDL is
/// transactional, so a failed migration leaves nothing behind. Refuses a
/// database written by a newer quire.
pub fn apply(client: &mut Client, target: &Target) -> Result<(), PgError> {
    let failed = |error| PgError::Migration {
        target: target.clone(),
        error,
    };
    let mut tx = client.transaction().map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failed)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS quire_schema (version integer NOT NULL)")
        .map_err(failed)?;
    let found = found_version(&mut tx).map_err(failed)?;
    if found > schema_version() {
        return Err(PgError::TooNew {
            target: target.clone(),
            found,
            known: schema_version(),
        });
    }
    if found == schema_version() {
        return Ok(());
    }
    for (name, sql) in &MIGRATIONS[found as usize..] {
        log::info!("{target}: applying migration {name}");
        tx.batch_execute(sql).map_err(failed)?;
    }
    tx.execute("DELETE FROM quire_schema", &[])
        .map_err(failed)?;
    tx.execute(
        "INSERT INTO quire_schema (version) VALUES ($1)",
        &[&schema_version()],
    )
    .map_err(failed)?;
    tx.commit().map_err(failed)
}

/// The version recorded in `quire_schema`; 0 for a database quire never touched.
pub fn found_version(c: &mut impl postgres::GenericClient) -> Result<i32, postgres::Error> {
    let exists: bool = c
        .query_one("SELECT to_regclass('quire_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let version: Option<i32> = c
        .query_one("SELECT max(version) FROM quire_schema", &[])?
        .get(0);
    Ok(version.unwrap_or(0))
}
