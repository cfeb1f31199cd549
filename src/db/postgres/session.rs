//! The pool's connections: the driver's client, set up as
//! [`target::start_session`] says, with the statements prepared on it.
//!
//! A statement sent with `query_typed` is unnamed: the server parses and
//! plans it at every call. For the daemon's step, one short statement per
//! task, that was a sixth of the server's work (pgbench, 8 clients: 15-20%
//! more steps per second prepared); [`Session::prepare`] prepares a
//! statement once per connection and keeps it while the connection lives.
//! A connection the server ended takes its statements with it: the pool
//! drops it and the next one prepares them again.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use postgres::types::Type;
use postgres::{Client, Statement};
use postgres_native_tls::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;

use super::target;

/// A pooled connection; it derefs to the driver's client.
pub struct Conn(pub(super) r2d2::PooledConnection<Manager>);

impl Deref for Conn {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.0.client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.0.client
    }
}

/// One connection and what was prepared on it.
pub struct Session {
    pub(super) client: Client,
    prepared: HashMap<&'static str, Statement>,
    /// Set when a statement found the session over. The server's FATAL
    /// may arrive as a statement's answer before the socket closes, and
    /// the client reports itself closed only once it has read the close;
    /// without this the pool could hand the connection out again.
    pub(super) ended: bool,
}

impl Session {
    /// `sql`, with parameters of `types`, prepared on this connection: at
    /// the first call a round trip to prepare it, after that none.
    pub fn prepare(
        &mut self,
        sql: &'static str,
        types: &[Type],
    ) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare_typed(sql, types)?;
        self.prepared.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// r2d2_postgres's manager, making [`Session`]s.
pub struct Manager(pub(super) PostgresConnectionManager<MakeTlsConnector>);

impl r2d2::ManageConnection for Manager {
    type Connection = Session;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Session, postgres::Error> {
        Ok(Session {
            client: self.0.connect()?,
            prepared: HashMap::new(),
            ended: false,
        })
    }

    fn is_valid(&self, session: &mut Session) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut session.client)
    }

    fn has_broken(&self, session: &mut Session) -> bool {
        session.ended || self.0.has_broken(&mut session.client)
    }
}

/// Sets up each new pooled connection's session as
/// [`target::start_session`] says.
#[derive(Debug)]
pub(super) struct StartSession;

impl r2d2::CustomizeConnection<Session, postgres::Error> for StartSession {
    fn on_acquire(&self, session: &mut Session) -> Result<(), postgres::Error> {
        target::start_session(&mut session.client)
    }
}
