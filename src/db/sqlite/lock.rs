//! The leader lock on SQLite: an advisory file lock (`flock`) on
//! `<role>.lock` beside the database file. The kernel releases it when the
//! process dies, however it dies.

use std::fs::File;

use super::SqliteDb;
use crate::db::DbError;

/// A held file lock; dropping it (closing the file) releases it.
pub struct FileLock {
    _file: File,
}

impl SqliteDb {
    /// Takes `<role>.lock` beside the database, or `Ok(None)` when another
    /// process holds it.
    pub fn try_leader_lock(&self, role: &str) -> Result<Option<FileLock>, DbError> {
        let dir = self.path().parent().unwrap_or(std::path::Path::new("."));
        let path = dir.join(format!("{role}.lock"));
        let io_err = |error| DbError::Lock {
            path: path.clone(),
            error,
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let (dir, db) = super::super::test_db();
        let held = db.try_leader_lock("inbox").unwrap();
        assert!(held.is_some());
        assert!(dir.path().join("inbox.lock").exists());
        assert!(db.try_leader_lock("inbox").unwrap().is_none());
        drop(held);
        assert!(db.try_leader_lock("inbox").unwrap().is_some());
    }
}
