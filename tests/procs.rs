//! Several OS processes claiming from one database: a SQLite file, and a
//! PostgreSQL database.

use std::collections::HashMap;
use std::process::Command;

use quire::db::postgres::Target;
use quire::db::postgres::testing::TestDatabase;
use quire::db::{Db, Location};
use quire::queue::{Policy, Priority, Queue};
use quire::store::NewDocument;

const TASKS: usize = 600;
const PROCESSES: usize = 4;

/// The database `QUIRE_TEST_CLAIM_DB` names: a PostgreSQL URL or a file.
fn location(db: &str) -> Location {
    match Target::parse(db, None, |_| None) {
        Ok(target) => Location::Postgres(target),
        Err(_) => Location::Sqlite(db.into()),
    }
}

/// The child side: claims and completes until the queue is empty, writing the
/// ids it claimed. Does nothing unless run by the parent tests below.
#[test]
fn claim_child() {
    let (Ok(db), Ok(out)) = (
        std::env::var("QUIRE_TEST_CLAIM_DB"),
        std::env::var("QUIRE_TEST_CLAIM_OUT"),
    ) else {
        return;
    };
    let queue = Queue::new(Db::open(location(&db), 2).unwrap(), Policy::default());
    let worker = format!("proc-{}", std::process::id());
    let mut mine = vec![];
    loop {
        let claims = queue.claim(&worker, 2).unwrap();
        if claims.is_empty() {
            break;
        }
        for c in claims {
            queue.complete(&c).unwrap();
            mine.push(c.task_id.to_string());
        }
    }
    std::fs::write(out, mine.join("\n")).unwrap();
}

#[test]
fn processes_claim_every_task_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quire.db");
    claim_in_processes(dir.path(), &path.to_string_lossy());
}

#[test]
fn processes_claim_every_task_exactly_once_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::new();
    claim_in_processes(dir.path(), &database.url());
}

/// Enqueues TASKS documents into `db` (a file or a URL), has PROCESSES
/// child processes drain it, and checks that each task was claimed once.
fn claim_in_processes(dir: &std::path::Path, db: &str) {
    let queue = Queue::new(Db::open(location(db), 2).unwrap(), Policy::default());
    for i in 0..TASKS {
        let name = format!("d{i}");
        let doc = NewDocument {
            name: &name,
            stored_path: &name,
            size: 1,
            sha256: &name,
            kind: "png",
        };
        let created = queue.create_document_with_task(&doc, Priority::Normal);
        assert!(created.unwrap().is_some());
    }
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            let out = dir.join(format!("claimed-{i}"));
            let child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "procs::claim_child", "--nocapture"])
                .env("QUIRE_TEST_CLAIM_DB", db)
                .env("QUIRE_TEST_CLAIM_OUT", &out)
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut per_process = vec![];
    for (mut child, out) in children {
        assert!(child.wait().unwrap().success());
        let text = std::fs::read_to_string(out).unwrap();
        let ids: Vec<i64> = text.lines().map(|l| l.parse().unwrap()).collect();
        per_process.push(ids.len());
        for id in ids {
            *seen.entry(id).or_default() += 1;
        }
    }
    // Each completed OCR task enqueued an indexing and a PDF task, claimed in turn.
    assert_eq!(seen.len(), 3 * TASKS, "per process: {per_process:?}");
    assert!(seen.values().all(|&n| n == 1), "a task was claimed twice");
    let stats = queue.stats().unwrap();
    assert_eq!(stats.tasks.completed as usize, 3 * TASKS);
    assert_eq!(stats.tasks.pending + stats.tasks.claimed, 0);
}
