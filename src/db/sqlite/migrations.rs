//! Schema migrations: numbered `.sql` files embedded at compile time, applied in
//! order on open, tracked in `PRAGMA user_version`.
//! The schema files live in `migrations/sqlite/`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

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
    (
        "0007_queue_hot_path",
        include_str!("../../../migrations/sqlite/0007_queue_hot_path.sql"),
    ),
];

/// The schema version this build writes.
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database up to [`schema_version`], each migration in its own
/// `BEGIN IMMEDIATE` transaction so two processes opening a new file at once
/// apply each migration exactly once. Refuses a database from a newer quire.
///
/// Migrations run with foreign-key enforcement off, SQLite's procedure for
/// rebuilding a table that others reference (it cannot alter a constraint):
/// with it on, dropping the old table would delete the rows that reference
/// it. Each migration is checked with `PRAGMA foreign_key_check` before it
/// commits, and enforcement is back on when this returns.
pub(super) fn apply(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    // A no-op inside a transaction: set here, between them.
    conn.pragma_update(None, "foreign_keys", false)?;
    let applied = apply_each(conn, path);
    conn.pragma_update(None, "foreign_keys", true)?;
    applied
}

fn apply_each(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
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
        let Some(&(name, sql)) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        log::info!("{}: applying migration {name}", path.display());
        tx.execute_batch(sql)?;
        let dangling: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = dangling {
            return Err(DbError::Migration {
                location: path.into(),
                name,
                problem: format!(
                    "rows of {table} reference rows that do not exist \
                     (`PRAGMA foreign_key_check` in sqlite3 lists them)"
                ),
            });
        }
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

    /// A database at `version`, with a document, its page, index entry and
    /// task, written as that version's quire would.
    fn populated_at(path: &Path, version: usize) -> Connection {
        let c = Connection::open(path).unwrap();
        for (_, sql) in &MIGRATIONS[..version] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", version as i64)
            .unwrap();
        c.execute_batch(
            "INSERT INTO documents (original_name, stored_path, size, sha256, kind, status, \
                                    created_at, updated_at) \
             VALUES ('a.png', 'a', 1, 'x', 'png', 'indexed', 0, 0); \
             INSERT INTO pages (document_id, page_number, text, source) VALUES (1, 1, 'hello', 'ocr'); \
             INSERT INTO page_index (rowid, text, document_id, page_number) \
                 VALUES (1000001, 'hello', 1, 1); \
             INSERT INTO task_queue (document_id, task_type, priority, status, max_attempts, \
                                     run_after, created_at) \
                 VALUES (1, 'ocr', 1, 'completed', 3, 0, 0);",
        )
        .unwrap();
        c
    }

    #[test]
    fn rebuilding_tables_keeps_every_row_and_the_cascades() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut c = populated_at(&path, 6);
        apply(&mut c, &path).unwrap();
        let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            count("SELECT count(*) FROM documents WHERE status = 'indexed'"),
            1
        );
        assert_eq!(count("SELECT count(*) FROM task_queue"), 1);
        assert_eq!(
            count("SELECT count(*) FROM page_index WHERE page_index MATCH 'hello'"),
            1
        );
        assert_eq!(count("PRAGMA foreign_keys"), 1, "enforcement is back on");
        // The rebuilt documents table is still the one pages and tasks
        // reference, and its trigger still empties the search index.
        c.execute("DELETE FROM documents WHERE id = 1", []).unwrap();
        assert_eq!(count("SELECT count(*) FROM pages"), 0);
        assert_eq!(count("SELECT count(*) FROM task_queue"), 0);
        assert_eq!(
            count("SELECT count(*) FROM page_index WHERE page_index MATCH 'hello'"),
            0
        );
    }

    #[test]
    fn a_migration_that_leaves_dangling_references_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut c = populated_at(&path, 6);
        // A task whose document is gone (only possible with enforcement off).
        c.execute_batch(
            "PRAGMA foreign_keys = OFF; \
             INSERT INTO task_queue (document_id, task_type, priority, max_attempts, run_after, created_at) \
             VALUES (404, 'ocr', 1, 3, 0, 0)",
        )
        .unwrap();
        let err = apply(&mut c, &path).unwrap_err();
        assert!(matches!(err, DbError::Migration { .. }), "{err}");
        assert!(err.to_string().contains("task_queue"), "{err}");
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 6, "the failed migration was rolled back");
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
