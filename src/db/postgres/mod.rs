//! The PostgreSQL engine, selected by a `postgres://` `database.url`: one
//! database that many daemons on many hosts share. It opens a pool of
//! synchronous `postgres` connections, checks the server, and applies the
//! schema in `migrations/postgres/` under an advisory lock; it also holds
//! the inbox's advisory lock ([`AdvisoryLock`]) and the connection that
//! listens for other hosts' work ([`NotifyWatch`]).
//!
//! PostgreSQL's SQL lives here and in the `postgres` modules of the queue
//! and the store; elsewhere the driver appears only as the transaction type
//! `Queue` hands to them.

mod lock;
pub mod migrations;
mod session;
pub mod target;
pub mod testing;
mod watch;

use postgres::types::Type;
use r2d2_postgres::PostgresConnectionManager;

use super::BUSY_TIMEOUT;

pub use lock::AdvisoryLock;
pub use session::{Conn, Session};
pub use target::{Target, TargetError};
pub use watch::NotifyWatch;

/// The oldest server quire runs on: 13 made `unaccent` a trusted extension
/// and added `DROP DATABASE ... WITH (FORCE)`.
pub const MIN_SERVER_VERSION: i32 = 130000;

/// Errors of the PostgreSQL engine. Each names the database by its
/// [`Target`], which never prints a password.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "cannot connect to PostgreSQL at {target}: {}; {}",
        describe(error),
        connect_advice(error)
    )]
    Connect {
        target: Target,
        error: postgres::Error,
    },
    #[error("PostgreSQL at {target} is version {found}; quire needs PostgreSQL 13 or newer")]
    TooOld { target: Target, found: String },
    #[error(
        "the database {target} has schema version {found}, newer than this quire understands \
         ({known}); upgrade quire, or point database.url at another database"
    )]
    TooNew {
        target: Target,
        found: i32,
        known: i32,
    },
    #[error(
        "migrating the database {target} failed: {}; it was rolled back and the database \
         is as it was (if the server says permission denied, the user needs to own the database)",
        describe(error)
    )]
    Migration {
        target: Target,
        error: postgres::Error,
    },
    #[error("PostgreSQL connection pool for {target}: {error}")]
    Pool { target: Target, error: r2d2::Error },
    #[error("PostgreSQL at {target}: {}", describe(error))]
    Query {
        target: Target,
        error: postgres::Error,
    },
    /// A statement of an operation that does not know its target (the
    /// queue's and the store's, which get a transaction).
    #[error("PostgreSQL: {}", describe(.0))]
    Statement(postgres::Error),
    /// A value in the database that quire never writes.
    #[error("PostgreSQL: unexpected {0}; was the database changed by hand?")]
    Unexpected(String),
}

/// A driver error with its causes, on one line. The driver's own message
/// stops at its kind ("db error", "error connecting to server"); what the
/// server said, or why the connection failed, is in its source.
pub fn describe(e: &postgres::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string().replace('\n', "; ");
        // OpenSSL's errors repeat their own cause's words.
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// What to check when a connection failed: the TLS settings when the
/// handshake did, else the server and the URL.
fn connect_advice(e: &postgres::Error) -> &'static str {
    if describe(e).contains("TLS") {
        "check database.url's sslmode and sslrootcert: verify-ca needs the server's \
         certificate signed by sslrootcert's CA, verify-full also needs it to name the \
         host in the URL (without sslrootcert, signed by a CA the system trusts)"
    } else {
        "check that the server runs and that database.url names its host, port, user \
         and database"
    }
}

impl From<postgres::Error> for PgError {
    fn from(e: postgres::Error) -> Self {
        PgError::Statement(e)
    }
}

/// An open PostgreSQL database: its pool and where it is.
#[derive(Clone)]
pub struct PostgresDb {
    pool: r2d2::Pool<session::Manager>,
    target: Target,
}

impl PostgresDb {
    /// Connects to `target`, refuses a server older than
    /// [`MIN_SERVER_VERSION`], brings the schema up to date (once, however many
    /// hosts start together; see [`migrations::apply`]) and builds a pool of at
    /// most `max_connections`.
    pub fn open(target: &Target, max_connections: u32) -> Result<PostgresDb, PgError> {
        let mut setup = target.connect()?;
        let query = |error| PgError::Query {
            target: target.clone(),
            error,
        };
        let version: String = setup
            .query_one("SHOW server_version_num", &[])
            .map_err(query)?
            .get(0);
        if version.parse::<i32>().unwrap_or(0) < MIN_SERVER_VERSION {
            let found: String = setup
                .query_one("SHOW server_version", &[])
                .map_err(query)?
                .get(0);
            return Err(PgError::TooOld {
                target: target.clone(),
                found,
            });
        }
        migrations::apply(&mut setup, target)?;
        drop(setup);
        let manager = session::Manager(PostgresConnectionManager::new(
            target.config().clone(),
            target.connector(),
        ));
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_customizer(Box::new(session::StartSession))
            .connection_timeout(BUSY_TIMEOUT)
            .build(manager)
            .map_err(|error| PgError::Pool {
                target: target.clone(),
                error,
            })?;
        Ok(PostgresDb {
            pool,
            target: target.clone(),
        })
    }

    /// Takes a connection from the pool, untested: see
    /// [`PostgresDb::on_live_connection`] for why, and use it (through
    /// `write`, `statement`, `snapshot`) rather than this outside tests.
    pub fn conn(&self) -> Result<Conn, PgError> {
        self.pool.get().map(Conn).map_err(|error| PgError::Pool {
            target: self.target.clone(),
            error,
        })
    }

    /// Runs `run` on a pooled connection; when its first statement found
    /// the connection closed, on the next one.
    ///
    /// The pool does not test a connection when it hands it out: that is
    /// r2d2_postgres's empty query, a round trip, and the daemon's queue
    /// step is one statement, so the test cost as much as the step. What
    /// the test was there for is a connection the server closed while it
    /// sat in the pool (a restart, an idle timeout, `pg_terminate_backend`).
    /// Such a connection fails the first statement sent on it, before the
    /// server could have run anything, with a closed-connection error or,
    /// when the server's goodbye arrives as the statement's answer, the
    /// error the server ends sessions with ([`session_ended`]); so that
    /// statement is safe to send again on another connection, and the pool
    /// drops the closed one when it comes back. After a restart every
    /// pooled connection may be closed, hence one try more than the pool
    /// holds; the last try's error is the answer. A connection found
    /// closed is marked so ([`Session::ended`]), for the pool to drop it
    /// even when the client has not read the close yet.
    fn on_live_connection<T, E: From<PgError>>(
        &self,
        mut run: impl FnMut(&mut Session) -> Attempt<T, E>,
    ) -> Result<T, E> {
        let mut tries = self.pool.max_size() + 1;
        loop {
            tries -= 1;
            let mut conn = self.conn()?;
            match run(&mut conn.0) {
                Attempt::Done(out) => return out,
                Attempt::Closed(e) => {
                    conn.0.ended = true;
                    if tries == 0 {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Runs `f` in one transaction on a pooled connection (READ COMMITTED,
    /// PostgreSQL's default), committing when it returns `Ok`; an `Err` or a
    /// panic rolls it back (the transaction's drop).
    pub fn write<T, E: From<PgError>>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut f = Some(f);
        self.on_live_connection(|s| run_in(s.client.transaction(), &mut f))
    }

    /// Runs `f`, one statement, on a pooled connection outside a
    /// transaction: PostgreSQL runs it as a transaction of its own, one
    /// round trip where [`PostgresDb::write`] adds a BEGIN and a COMMIT.
    /// `f` may run again on another connection when its connection was
    /// found closed: the server was gone before the statement reached it
    /// (a connection closed in the pool), or went while running it, which
    /// rolls it back. Only a statement whose commit went through just
    /// before the server went runs twice; for the queue's statements that
    /// is a claim reported lost, or tasks claimed for nobody until they are
    /// released as stale: what a reply lost on the network does too.
    pub fn statement<T, E: From<PgError> + ClosedConnection>(
        &self,
        f: impl Fn(&mut postgres::Client) -> Result<T, E>,
    ) -> Result<T, E> {
        self.on_live_connection(|s| Attempt::of_statement(f(&mut s.client)))
    }

    /// As [`PostgresDb::statement`], with `sql` (parameters of `types`)
    /// prepared on the connection the first time that connection runs it
    /// and kept while it lives ([`Session::prepare`]): the server plans it
    /// once, not at every call. For the statements run most often (the
    /// daemon's step). A prepare that finds the connection closed is tried
    /// again on another, as a statement is.
    pub fn prepared<T, E: From<PgError> + ClosedConnection>(
        &self,
        sql: &'static str,
        types: &[Type],
        f: impl Fn(&mut postgres::Client, &postgres::Statement) -> Result<T, E>,
    ) -> Result<T, E> {
        self.on_live_connection(|s| {
            let statement = match s.prepare(sql, types) {
                Ok(statement) => statement,
                Err(e) if session_ended(&e) => {
                    return Attempt::Closed(PgError::Statement(e).into());
                }
                Err(e) => return Attempt::Done(Err(PgError::Statement(e).into())),
            };
            Attempt::of_statement(f(&mut s.client, &statement))
        })
    }

    /// Runs read-only `f` in one `REPEATABLE READ` transaction: several
    /// statements that see the database as of one moment, whatever other
    /// hosts commit meanwhile.
    pub fn snapshot<T, E: From<PgError>>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut f = Some(f);
        self.on_live_connection(|s| {
            let begun = s
                .client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start();
            run_in(begun, &mut f)
        })
    }

    /// Where the database is.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i32, PgError> {
        let mut c = self.conn()?;
        migrations::found_version(&mut *c).map_err(|error| PgError::Query {
            target: self.target.clone(),
            error,
        })
    }
}

/// What one try of [`PostgresDb::on_live_connection`] came to.
enum Attempt<T, E> {
    /// It ran (or failed for a reason of its own).
    Done(Result<T, E>),
    /// Its first statement found the connection closed; nothing ran.
    Closed(E),
}

impl<T, E: ClosedConnection> Attempt<T, E> {
    /// What a statement's outcome `out` comes to: closed when it found the
    /// connection closed, else done.
    fn of_statement(out: Result<T, E>) -> Attempt<T, E> {
        match out {
            Err(e) if e.is_closed_connection() => Attempt::Closed(e),
            out => Attempt::Done(out),
        }
    }
}

/// Begins with `begun`, runs `f` (taken from its `Option`: it runs once)
/// and commits. A BEGIN that finds the connection closed is
/// [`Attempt::Closed`]: nothing ran.
fn run_in<T, E: From<PgError>, F>(
    begun: Result<postgres::Transaction<'_>, postgres::Error>,
    f: &mut Option<F>,
) -> Attempt<T, E>
where
    F: FnOnce(&mut postgres::Transaction<'_>) -> Result<T, E>,
{
    let mut tx = match begun {
        Ok(tx) => tx,
        Err(e) if session_ended(&e) => return Attempt::Closed(PgError::Statement(e).into()),
        Err(e) => return Attempt::Done(Err(PgError::Statement(e).into())),
    };
    let f = f
        .take()
        .expect("a transaction that began is not tried again");
    Attempt::Done(f(&mut tx).and_then(|out| {
        tx.commit().map_err(PgError::Statement)?;
        Ok(out)
    }))
}

/// True when `e` says the connection's session is over: the connection
/// was found closed, or the server answered with the error it sends as it
/// ends a session (`pg_terminate_backend`, a shutdown, a crash of another
/// backend, an idle timeout). The driver reads such a goodbye as a closed
/// connection when it was waiting in the socket before the statement was
/// sent, and as the statement's answer when it came after; either way the
/// server rolled back whatever the statement had begun. Only those codes:
/// a pooler's FATAL (PgBouncer's query_timeout) may leave the statement
/// running on the server, where it can still commit.
fn session_ended(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    const SESSION_ENDED: [SqlState; 5] = [
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::IDLE_SESSION_TIMEOUT,
        SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
    ];
    e.is_closed() || e.code().is_some_and(|code| SESSION_ENDED.contains(code))
}

/// An error that can say whether it was a closed connection's.
pub trait ClosedConnection {
    /// True when the connection was closed or its session ended (the
    /// statement did not reach a live server, its answer did not come
    /// back, or the server ended the session under it): see
    /// [`session_ended`].
    fn is_closed_connection(&self) -> bool;
}

impl ClosedConnection for PgError {
    fn is_closed_connection(&self) -> bool {
        matches!(self, PgError::Statement(e) if session_ended(e))
    }
}

impl PostgresDb {
    /// The schema version and the server's version, for `quire doctor`.
    /// PostgreSQL checks its own pages; there is no integrity check to run.
    pub fn check(&self) -> Result<crate::db::Health, PgError> {
        let mut c = self.conn()?;
        let server: String = c.query_one("SHOW server_version", &[])?.get(0);
        let tls: Option<String> = c
            .query_opt(
                "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
                &[],
            )?
            .map(|r| r.get(0));
        let unaccent: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent')",
                &[],
            )?
            .get(0);
        Ok(crate::db::Health {
            connection: Some(match tls {
                Some(version) => format!("TLS {version}"),
                None => "not encrypted".to_owned(),
            }),
            schema_version: migrations::found_version(&mut *c)?.into(),
            known_schema_version: migrations::schema_version().into(),
            problem: (!unaccent)
                .then(|| format!("the extension unaccent is missing (server {server})")),
            repair: format!(
                "as the database's owner: psql '{}' -c 'CREATE EXTENSION unaccent' \
                 (Debian: the postgresql package has it)",
                self.target
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::TestDatabase;
    use super::*;

    /// The server process behind each of `db`'s `n` pooled connections,
    /// all checked out at once.
    fn backends(db: &PostgresDb, n: usize) -> Vec<i32> {
        let conns: Vec<Conn> = (0..n).map(|_| db.conn().unwrap()).collect();
        conns
            .into_iter()
            .map(|mut c| c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0))
            .collect()
    }

    #[test]
    fn connections_the_server_closed_in_the_pool_are_replaced_without_an_error() {
        let t = TestDatabase::new();
        let db = PostgresDb::open(t.target(), 3).unwrap();
        let mut admin = t.target().connect().unwrap();
        fn pid(c: &mut impl postgres::GenericClient) -> Result<i32, PgError> {
            Ok(c.query_one("SELECT pg_backend_pid()", &[])?.get(0))
        }
        let kill_pool = |admin: &mut postgres::Client| {
            // As a server restart does: every pooled connection ends while
            // it waits in the pool (and the server has finished ending it).
            let old = backends(&db, 3);
            admin
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) AS pid",
                    &[&old],
                )
                .unwrap();
            while admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                    &[&old],
                )
                .unwrap()
                .get::<_, i64>(0)
                > 0
            {
                std::thread::yield_now();
            }
            old
        };
        let old = kill_pool(&mut admin);
        let new = db.write(|tx| pid(tx)).unwrap();
        assert!(!old.contains(&new), "a write on a new connection");
        let old = kill_pool(&mut admin);
        let new = db.snapshot(|tx| pid(tx)).unwrap();
        assert!(!old.contains(&new), "a read on a new connection");
        let old = kill_pool(&mut admin);
        let new = db.statement(pid).unwrap();
        assert!(!old.contains(&new), "a statement on a new connection");
        // A statement prepared on a connection the server then closed is
        // prepared again on the next.
        let prepared = || {
            db.prepared("SELECT pg_backend_pid()", &[], |c, s| {
                Ok::<i32, PgError>(c.query_one(s, &[])?.get(0))
            })
        };
        prepared().unwrap();
        let old = kill_pool(&mut admin);
        let new = prepared().unwrap();
        assert!(
            !old.contains(&new),
            "a prepared statement on a new connection"
        );
    }

    #[test]
    fn a_statement_whose_session_the_server_ends_while_it_runs_is_sent_again() {
        // The server's FATAL then arrives as the statement's answer, not as
        // a closed connection (see session_ended).
        let t = TestDatabase::new();
        // One connection in the pool, so one try more than that: the
        // ended connection must not come out again.
        let db = PostgresDb::open(t.target(), 1).unwrap();
        let killer = {
            let target = t.target().clone();
            std::thread::spawn(move || {
                let mut admin = target.connect().unwrap();
                loop {
                    let ended: i64 = admin
                        .query_one(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                              WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'",
                            &[],
                        )
                        .unwrap()
                        .get(0);
                    if ended > 0 {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            })
        };
        let tries = std::sync::atomic::AtomicUsize::new(0);
        let answer: i32 = db
            .statement(|c| {
                if tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    c.batch_execute("SELECT pg_sleep(60)")?;
                }
                Ok::<_, PgError>(c.query_one("SELECT 7", &[])?.get(0))
            })
            .unwrap();
        killer.join().unwrap();
        assert_eq!(answer, 7);
        assert_eq!(tries.into_inner(), 2, "sent again, once");
    }

    #[test]
    fn a_transaction_left_idle_is_ended_by_the_server() {
        // So that a host cut off inside a transaction does not keep its
        // claims locked against stale release (see target::start_session).
        fn timeout(c: &mut postgres::Client) -> Result<String, PgError> {
            Ok(
                c.query_one("SHOW idle_in_transaction_session_timeout", &[])?
                    .get(0),
            )
        }
        let t = TestDatabase::new();
        let db = PostgresDb::open(t.target(), 1).unwrap();
        assert_eq!(db.statement(timeout).unwrap(), "10s");
        // A setting of the user's own, here in the URL, wins, in the pool
        // and on a connection of its own; even 0, the server's "no timeout".
        for theirs in ["1min", "0"] {
            let url = format!(
                "{}?options=-c%20idle_in_transaction_session_timeout%3D{theirs}",
                t.url()
            );
            let target = Target::parse(&url, None, |_| None).unwrap();
            let db = PostgresDb::open(&target, 1).unwrap();
            assert_eq!(db.statement(timeout).unwrap(), theirs);
            assert_eq!(timeout(&mut target.connect().unwrap()).unwrap(), theirs);
        }
    }

    #[test]
    fn open_applies_the_schema_once_and_reopens() {
        let t = TestDatabase::new();
        let db = PostgresDb::open(t.target(), 2).unwrap();
        assert_eq!(db.schema_version().unwrap(), migrations::schema_version());
        let again = PostgresDb::open(t.target(), 2).unwrap();
        assert_eq!(
            again.schema_version().unwrap(),
            migrations::schema_version()
        );
        let mut c = db.conn().unwrap();
        let tables: i64 = c
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' \
                 AND table_name IN ('documents', 'task_queue', 'pages', 'page_index')",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(tables, 4);
    }

    #[test]
    fn hosts_starting_together_migrate_once() {
        // The schema's CREATE TABLEs have no IF NOT EXISTS: a second
        // application would fail, so every open succeeding shows that the
        // advisory lock let exactly one apply it.
        let t = TestDatabase::new();
        std::thread::scope(|s| {
            let opens: Vec<_> = (0..8)
                .map(|_| s.spawn(|| PostgresDb::open(t.target(), 1).map(|_| ())))
                .collect();
            for open in opens {
                open.join().unwrap().unwrap();
            }
        });
        let db = PostgresDb::open(t.target(), 1).unwrap();
        let rows: i64 = db
            .conn()
            .unwrap()
            .query_one("SELECT count(*) FROM quire_schema", &[])
            .unwrap()
            .get(0);
        assert_eq!(rows, 1);
    }

    #[test]
    fn a_database_from_a_newer_quire_is_refused() {
        let t = TestDatabase::new();
        let db = PostgresDb::open(t.target(), 1).unwrap();
        db.conn()
            .unwrap()
            .execute("UPDATE quire_schema SET version = version + 1", &[])
            .unwrap();
        let err = PostgresDb::open(t.target(), 1).err().unwrap();
        assert!(matches!(err, PgError::TooNew { .. }), "{err}");
        assert!(err.to_string().contains("upgrade quire"), "{err}");
    }

    #[test]
    fn search_configurations_fold_accents_and_stem_on_request() {
        let t = TestDatabase::new();
        let db = PostgresDb::open(t.target(), 1).unwrap();
        let mut c = db.conn().unwrap();
        let matches = |c: &mut Conn, config: &str, text: &str, query: &str| -> bool {
            c.query_one(
                "SELECT to_tsvector($1::text::regconfig, $2) @@ plainto_tsquery($1::text::regconfig, $3)",
                &[&config, &text, &query],
            )
            .unwrap()
            .get(0)
        };
        assert!(matches(
            &mut c,
            "quire_simple",
            "Ein Café in Zürich",
            "cafe zurich"
        ));
        assert!(matches(
            &mut c,
            "quire_simple",
            "Ein Cafe in Zurich",
            "Café"
        ));
        assert!(!matches(
            &mut c,
            "quire_simple",
            "the runners ran",
            "running"
        ));
        assert!(matches(
            &mut c,
            "quire_english",
            "the runners were running",
            "run"
        ));
    }

    #[test]
    fn a_server_that_does_not_answer_is_named_without_the_password() {
        let t = Target::parse(
            "postgres://quire:s3cret@127.0.0.1:1/quire?connect_timeout=5",
            None,
            |_| None,
        )
        .unwrap();
        let err = PostgresDb::open(&t, 1).err().unwrap().to_string();
        assert!(err.contains("postgres://quire@127.0.0.1:1/quire"), "{err}");
        assert!(err.contains("check that the server runs"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
