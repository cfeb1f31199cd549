//! Noticing other hosts' work on PostgreSQL: a connection of its own that
//! LISTENs on `quire_changes` (notified by migration 0002's triggers when a
//! task becomes pending or a claim is taken away). Asking reads what is on
//! the socket, waiting at most a millisecond.
//!
//! Notifications sent while the connection is down are lost, so a
//! reconnection answers "changed" once, and the workers look for work.

use std::time::{Duration, Instant};

use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;

use super::{PgError, PostgresDb, Target};

/// How long each look waits for notifications to arrive on the socket.
const READ_FOR: Duration = Duration::from_millis(1);

/// How often a lost listening connection is tried again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// The listening connection, and when it was last tried if it is down.
pub struct NotifyWatch {
    target: Target,
    client: Option<Client>,
    tried: Instant,
}

impl PostgresDb {
    /// A watcher on a connection of its own, listening from now on.
    pub fn change_watcher(&self) -> Result<NotifyWatch, PgError> {
        let client = listen(self.target())?;
        Ok(NotifyWatch {
            target: self.target().clone(),
            client: Some(client),
            tried: Instant::now(),
        })
    }
}

fn listen(target: &Target) -> Result<Client, PgError> {
    let mut client = target.connect()?;
    client.batch_execute("LISTEN quire_changes")?;
    Ok(client)
}

impl NotifyWatch {
    /// True when a notification arrived since the last call, or when the
    /// connection was just re-established after a loss.
    pub fn changed(&mut self) -> bool {
        let Some(client) = &mut self.client else {
            if self.tried.elapsed() < RECONNECT_EVERY {
                return false;
            }
            self.tried = Instant::now();
            return match listen(&self.target) {
                Ok(client) => {
                    log::info!("listening for changes on {} again", self.target);
                    self.client = Some(client);
                    true
                }
                Err(e) => {
                    log::debug!("listening for changes: {e}; trying again in a second");
                    false
                }
            };
        };
        let read = {
            // Not the non-blocking iter(): it never lets the client's
            // runtime poll the socket, so it finds nothing new. A wait of a
            // millisecond does, and the waker thread can spare it.
            let mut notifications = client.notifications();
            let mut pending = notifications.timeout_iter(READ_FOR);
            let mut seen = false;
            loop {
                match pending.next() {
                    Ok(Some(_)) => seen = true,
                    Ok(None) => break Ok(seen),
                    Err(e) => break Err(e),
                }
            }
        };
        let closed = client.is_closed();
        match read {
            Ok(seen) if !closed => seen,
            Ok(seen) => {
                // Reconnect at the next call, which then says "changed".
                self.client = None;
                self.tried = Instant::now() - RECONNECT_EVERY;
                seen
            }
            Err(e) => {
                log::warn!(
                    "the connection listening for changes on {} failed: {}; \
                     reconnecting, and relying on the poll interval meanwhile",
                    self.target,
                    super::describe(&e)
                );
                self.client = None;
                self.tried = Instant::now();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestDatabase;
    use super::*;

    fn changed_within(watch: &mut NotifyWatch, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if watch.changed() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn new_work_wakes_the_watcher_claims_do_not_and_a_lost_connection_comes_back() {
        let t = TestDatabase::new();
        let db = PostgresDb::open(t.target(), 2).unwrap();
        let mut watch = db.change_watcher().unwrap();
        assert!(!watch.changed());
        let mut c = db.conn().unwrap();
        c.batch_execute(
            "INSERT INTO documents (original_name, stored_path, size, sha256, kind, created_at, updated_at) \
             VALUES ('a', 'a', 1, 'a', 'png', 0, 0); \
             INSERT INTO task_queue (document_id, task_type, priority, max_attempts, run_after, created_at) \
             VALUES (1, 'ocr', 1, 3, 0, 0)",
        )
        .unwrap();
        assert!(changed_within(&mut watch, Duration::from_secs(5)));
        assert!(!watch.changed(), "one notification, seen once");
        c.batch_execute("UPDATE task_queue SET status = 'claimed', claimed_by = 'w'")
            .unwrap();
        assert!(
            !changed_within(&mut watch, Duration::from_millis(300)),
            "a claim"
        );
        c.batch_execute("UPDATE task_queue SET status = 'cancelled'")
            .unwrap();
        assert!(
            changed_within(&mut watch, Duration::from_secs(5)),
            "a cancel"
        );
        // The server ends the listening session (a restart, a cut link).
        c.batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query = 'LISTEN quire_changes'",
        )
        .unwrap();
        assert!(
            changed_within(&mut watch, Duration::from_secs(10)),
            "back, and says so once"
        );
        c.batch_execute("UPDATE task_queue SET status = 'pending'")
            .unwrap();
        assert!(changed_within(&mut watch, Duration::from_secs(5)));
    }
}
