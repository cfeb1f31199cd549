//! Noticing other processes' commits on SQLite: `PRAGMA data_version`
//! changes on a connection whenever another connection commits to the file.
//! It is a read of shared memory, no I/O, so polling it every few
//! milliseconds costs nothing.

use rusqlite::Connection;

use super::SqliteDb;
use crate::db::DbError;

/// A private connection and the last `data_version` it saw.
pub struct DataVersionWatch {
    conn: Connection,
    last: Option<i64>,
}

impl SqliteDb {
    /// A watcher on a connection of its own: `data_version` is per connection
    /// and only changes for commits made by other connections (a pooled
    /// connection would also see this process's own commits).
    pub fn change_watcher(&self) -> Result<DataVersionWatch, DbError> {
        let conn = Connection::open(self.path())?;
        let mut watch = DataVersionWatch { conn, last: None };
        watch.last = watch.version();
        Ok(watch)
    }
}

impl DataVersionWatch {
    /// True when `data_version` moved since the last call.
    pub fn changed(&mut self) -> bool {
        let now = self.version();
        let changed = now != self.last;
        self.last = now;
        changed
    }

    /// The current `data_version`, `None` when it cannot be read.
    fn version(&self) -> Option<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_commits_of_other_connections_only() {
        let (_dir, db) = super::super::test_db();
        let mut watch = db.change_watcher().unwrap();
        assert!(!watch.changed());
        db.write(|tx| {
            tx.execute("CREATE TABLE t (x)", [])?;
            Ok::<_, DbError>(())
        })
        .unwrap();
        assert!(watch.changed());
        assert!(!watch.changed(), "reported once");
    }
}
