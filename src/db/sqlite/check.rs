//! `quire doctor`'s look at the database: the schema version in
//! `PRAGMA user_version` and SQLite's `PRAGMA quick_check`.

use super::SqliteDb;
use crate::db::{DbError, Health};

impl SqliteDb {
    /// The schema version and the result of `quick_check` (which reads every
    /// page of the file but takes no write lock, so a daemon may run).
    pub fn check(&self) -> Result<Health, DbError> {
        let conn = self.conn()?;
        let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let verdict: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        let path = self.path().display();
        Ok(Health {
            connection: None,
            schema_version,
            known_schema_version: super::schema_version(),
            problem: (verdict != "ok").then_some(verdict),
            repair: format!("restore {path} from a backup, or run: sqlite3 {path} .recover"),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_new_database_is_healthy_at_the_current_schema() {
        let (_dir, db) = super::super::test_db();
        let health = db.check().unwrap();
        assert_eq!(health.schema_version, super::super::schema_version());
        assert_eq!(health.problem, None);
    }
}
