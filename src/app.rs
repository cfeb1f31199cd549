//! The opened data directory: configuration, database, queue and store,
//! built once per command from a validated [`Config`].

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::db::{Db, DbError};
use crate::queue::{Policy, Queue, QueueError};
use crate::store::{Document, Store};

/// Everything a command works on.
#[derive(Clone)]
pub struct App {
    pub config: Config,
    pub db: Db,
    pub queue: Queue,
    pub store: Store,
}

impl App {
    /// Opens the data dir of `config`, creating it and its database if needed.
    /// `connections` bounds the pool (a daemon wants one per worker and more).
    pub fn open(config: &Config, connections: u32) -> anyhow::Result<App> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the data dir {}; create it or pass --data-dir",
                dir.display()
            )
        })?;
        check_writable(dir)?;
        let db = Db::open(config.location()?, connections)?;
        let queue = Queue::new(db.clone(), Policy::from_config(config));
        let store = Store::open(db.clone(), dir)
            .with_context(|| format!("cannot create the store folders in {}", dir.display()))?;
        Ok(App {
            config: config.clone(),
            db,
            queue,
            store,
        })
    }

    /// Opens an existing data dir for a read-mostly command; fails with advice
    /// when there is none yet, instead of creating an empty one.
    pub fn open_existing(config: &Config) -> anyhow::Result<App> {
        let location = config.location()?;
        if !location.exists() {
            return Err(DbError::Missing(location).into());
        }
        App::open(config, 4)
    }

    /// The document with `id`, or an error that says how to see the ids there are.
    pub fn document(&self, id: i64) -> anyhow::Result<Document> {
        Ok(self
            .store
            .document(id)?
            .ok_or(QueueError::DocumentNotFound(id))?)
    }
}

/// Fails with a clear message when the data dir is read-only, before SQLite
/// would fail with a vaguer one.
fn check_writable(dir: &Path) -> anyhow::Result<()> {
    let probe = dir.join(format!(".quire-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| {
        format!(
            "the data dir {} is not writable; fix its permissions (chown/chmod) or pass another --data-dir",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
