//! The leader lock on PostgreSQL: a session advisory lock, held by a
//! connection of its own for as long as the guard lives. File locks do not
//! work across hosts (network filesystems do not honour them); the server
//! releases an advisory lock when the session ends, so when the watching
//! daemon dies or is cut off, another host takes over at its next try.

use postgres::Client;

use super::{PgError, PostgresDb};

/// A held advisory lock; dropping it closes its connection, which releases it.
pub struct AdvisoryLock {
    client: Box<Client>,
}

impl AdvisoryLock {
    /// True while its session lives and holds an advisory lock.
    pub fn still_held(&mut self) -> bool {
        self.client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid() AND granted)",
                &[],
            )
            .is_ok_and(|r| r.get(0))
    }
}

impl PostgresDb {
    /// Takes the leader lock named `role` if no other session holds it.
    pub fn try_leader_lock(&self, role: &str) -> Result<Option<AdvisoryLock>, PgError> {
        let target = self.target();
        let mut client = target.connect()?;
        // hashtext() is PostgreSQL's own 32-bit hash: the key is stable
        // across hosts and versions of quire.
        let taken: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtext('quire leader ' || $1::text))",
                &[&role],
            )?
            .get(0);
        Ok(taken.then(|| AdvisoryLock {
            client: Box::new(client),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestDatabase;
    use super::*;

    #[test]
    fn one_session_leads_until_it_lets_go() {
        let t = TestDatabase::new();
        let db = PostgresDb::open(t.target(), 1).unwrap();
        let mut held = db.try_leader_lock("inbox").unwrap();
        assert!(held.as_mut().is_some_and(AdvisoryLock::still_held));
        assert!(db.try_leader_lock("inbox").unwrap().is_none());
        assert!(db.try_leader_lock("other").unwrap().is_some());
        drop(held);
        // The server notices the closed session at once on a local socket;
        // allow it a moment over TCP.
        let taken = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            db.try_leader_lock("inbox").unwrap().is_some()
        });
        assert!(taken);
    }

    #[test]
    fn a_lock_whose_session_ended_says_so() {
        let t = TestDatabase::new();
        let db = PostgresDb::open(t.target(), 1).unwrap();
        let mut held = db.try_leader_lock("inbox").unwrap().unwrap();
        db.conn()
            .unwrap()
            .batch_execute(
                // pg_locks is the whole server's: only this test's database.
                "SELECT pg_terminate_backend(pid) FROM pg_locks \
                 WHERE locktype = 'advisory' AND granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .unwrap();
        assert!(!held.still_held());
        assert!(db.try_leader_lock("inbox").unwrap().is_some(), "free again");
    }
}
