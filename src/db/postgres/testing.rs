//! A PostgreSQL database of its own for each test. Tests share one server
//! and nextest runs them in parallel, so each creates a fresh database and
//! drops it when done.
//!
//! The server is `QUIRE_TEST_POSTGRES` (a URL naming a database to connect
//! to for CREATE and DROP DATABASE), by default the local one as the
//! `postgres` user over TCP: what `scripts/setup.sh --test` provides and CI
//! has.

use std::sync::atomic::{AtomicU32, Ordering};

use postgres::{Client, NoTls};

use super::Target;

/// The test server's maintenance database, unless `QUIRE_TEST_POSTGRES` says another.
pub const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database created for one test, dropped (with any connections still on
/// it) when this is dropped.
pub struct TestDatabase {
    admin: Target,
    target: Target,
}

impl TestDatabase {
    /// Creates an empty database with a name no other test uses. Panics,
    /// saying how to provide one, when no server answers.
    pub fn new() -> TestDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let url = std::env::var("QUIRE_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.into());
        let admin = Target::parse(&url, None, |k| std::env::var(k).ok())
            .unwrap_or_else(|e| panic!("QUIRE_TEST_POSTGRES: {e}"));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "quire_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        connect(&admin)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating the test database {name} on {admin}: {e}"));
        let target = admin.with_dbname(&name);
        TestDatabase { admin, target }
    }

    /// Where the test's database is.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The database's URL, for `database.url` (the test server needs no
    /// password; one given in `QUIRE_TEST_POSTGRES` is not repeated here,
    /// so set `PGPASSWORD` for such a server).
    pub fn url(&self) -> String {
        self.target.to_string()
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        TestDatabase::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.target.dbname();
        let dropped = connect(&self.admin)
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {name}: {e}");
        }
    }
}

fn connect(admin: &Target) -> Client {
    admin.config().connect(NoTls).unwrap_or_else(|e| {
        panic!(
            "no PostgreSQL server for the tests at {admin}: {e}; run scripts/setup.sh --test, \
             or set QUIRE_TEST_POSTGRES to a server's URL"
        )
    })
}
