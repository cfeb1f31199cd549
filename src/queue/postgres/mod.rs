//! The queue on PostgreSQL: each operation a `do_x(tx, ...)` with its SQL
//! inline, as in `queue/sqlite/`, which [`crate::queue::Queue`] dispatches
//! to when `database.url` names a PostgreSQL database. The tests beside
//! each operation run it against a real server, many connections at once
//! where that matters.
//!
//! Where it differs from SQLite, and why:
//! - Writers do not queue for one lock: a claim selects with
//!   `FOR UPDATE SKIP LOCKED`, so workers on many hosts take different
//!   tasks at once, and re-checks `status = 'pending'` in the UPDATE.
//! - Time is the server's ([`db_now_ms`]), read once per transaction by the
//!   caller and passed in as `now`, so hosts whose clocks disagree still agree
//!   on heartbeats, stale claims and backoff; tests pass a fixed time.
//! - Claims and completions, the daemon's every step, are SQL functions
//!   (`migrations/postgres/0003_queue_step.sql`) that read the server's
//!   clock themselves when `now` is `None`: the step that completes a task
//!   and claims the next is one statement, one round trip and one commit,
//!   where the same statements sent one by one made eight round trips.
//! - One live task per document and type is the partial unique index
//!   `task_queue_live`, used by `ON CONFLICT ... DO NOTHING`.
//! - Statements go with their parameters' types (`execute_typed`,
//!   `query_typed`): one round trip each, where an untyped statement first
//!   asks the server to prepare it (this driver caches no statements).
//!   Round trips are what a queue step on PostgreSQL costs.

pub mod admin;
pub mod claim;
pub mod enqueue;
pub mod lease;
pub mod maintenance;
pub mod stats;

use postgres::GenericClient;
use postgres::types::Type;

use super::{DocumentStatus, QueueError};
use crate::db::DbError;
use crate::db::postgres::{ClosedConnection, PgError};

impl From<postgres::Error> for QueueError {
    fn from(e: postgres::Error) -> Self {
        QueueError::Db(DbError::Postgres(PgError::Statement(e)))
    }
}

impl ClosedConnection for QueueError {
    fn is_closed_connection(&self) -> bool {
        matches!(self, QueueError::Db(DbError::Postgres(e)) if e.is_closed_connection())
    }
}

impl From<PgError> for QueueError {
    fn from(e: PgError) -> Self {
        QueueError::Db(DbError::Postgres(e))
    }
}

/// The server's clock, Unix ms: `clock_timestamp()`, the time of the call
/// (`now()` would be the transaction's start).
pub fn db_now_ms(c: &mut impl GenericClient) -> Result<i64, QueueError> {
    Ok(c.query_typed_one(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
        &[],
    )?
    .get(0))
}

/// Reads one of quire's state enums from a text column's value.
fn parse<T: std::str::FromStr<Err = String>>(value: &str) -> Result<T, QueueError> {
    value
        .parse()
        .map_err(|e| QueueError::Db(DbError::Postgres(PgError::Unexpected(e))))
}

/// Sets a document's status (and clears or sets its error) as its tasks
/// move. The queue is the only writer of `documents.status`.
fn set_documents_status(
    c: &mut impl GenericClient,
    documents: &[i64],
    status: DocumentStatus,
    error: Option<&str>,
    now: i64,
) -> Result<(), QueueError> {
    c.execute_typed(
        "UPDATE documents SET status = $1, last_error = $2, updated_at = $3 WHERE id = ANY($4)",
        &[
            (&status.as_str(), Type::TEXT),
            (&error, Type::TEXT),
            (&now, Type::INT8),
            (&documents, Type::INT8_ARRAY),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A queue database of its own on the test server, with documents in it.
    use crate::db::postgres::testing::TestDatabase;
    use crate::db::postgres::{Conn, PostgresDb};

    pub const T0: i64 = 1_700_000_000_000;

    pub struct Fixture {
        pub db: PostgresDb,
        // Dropped after `db`'s pool (field order), so no connection is left
        // on the database it drops.
        _database: TestDatabase,
    }

    pub fn fixture() -> Fixture {
        let database = TestDatabase::new();
        let db = PostgresDb::open(database.target(), 10).unwrap();
        Fixture {
            db,
            _database: database,
        }
    }

    impl Fixture {
        pub fn conn(&self) -> Conn {
            self.db.conn().unwrap()
        }

        /// Inserts a document row and returns its id.
        pub fn document(&self, name: &str) -> i64 {
            self.conn()
                .query_one(
                    "INSERT INTO documents (original_name, stored_path, size, sha256, kind, \
                                            created_at, updated_at) \
                     VALUES ($1, $1, 1, $1, 'png', $2, $2) RETURNING id",
                    &[&name, &T0],
                )
                .unwrap()
                .get(0)
        }

        /// The document's status.
        pub fn doc_status(&self, id: i64) -> String {
            self.conn()
                .query_one("SELECT status FROM documents WHERE id = $1", &[&id])
                .unwrap()
                .get(0)
        }

        /// The task's status.
        pub fn task_status(&self, id: i64) -> String {
            self.conn()
                .query_one("SELECT status FROM task_queue WHERE id = $1", &[&id])
                .unwrap()
                .get(0)
        }
    }
}
