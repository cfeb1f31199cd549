//! Schema migrations: numbered `.sql` files embedded at compile time, applied in
//! order on open, tracked in `PRAGMA user_version`.
//! The schema files live in `migrations/sqlite/`.

use std::path::Path;

use rusqlite::Connection;

use super::write_tx;
use crate::db::DbError;

/// Every migration, in order; migration `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_queue",
        include_str!("../../../migrations/sqlite/0001_queue.sql"),
    ),
    (
        "0002_pages",
        include_str!("../../../migrations/sqlite/0002_pages.sql"),
    ),
    (
        "0003_search",
        include_str!("../../../migrations/sqlite/0003_search.sql"),
    ),
    (
        "0004_progress",
        include_str!("../../../migrations/sqlite/0004_progress.sql"),
    ),
    (
        "0005_searchable_pdf",
        include_str!("../../../migrations/sqlite/0005_searchable_pdf.sql"),
    ),
    (
        "0006_poor_pages",
        include_str!("../../../migrations/sqlite/0006_poor_pages.sql"),
    ),
];

/// The schema version this build writes.
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database up to [`schema_version`], each migration in its own
/// `BEGIN IMMEDIATE` transaction so two processes opening a new file at once
/// apply each migration exactly once. Refuses a database from a newer quire.
pub(super) fn apply(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    loop {
        let tx = write_tx(conn)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > schema_version() {
            return Err(DbError::TooNew {
                location: path.into(),
                found,
                known: schema_version(),
            });
        }
        let Some((name, sql)) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        log::info!("{}: applying migration {name}", path.display());
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_migrations_apply_and_are_idempotent_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut c = Connection::open(&path).unwrap();
        apply(&mut c, &path).unwrap();
        apply(&mut c, &path).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, schema_version());
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", schema_version() + 1)
            .unwrap();
        let err = apply(&mut c, &path).unwrap_err();
        assert!(matches!(err, DbError::TooNew { .. }), "{err}");
        assert!(err.to_string().contains("upgrade quire"));
    }
}
