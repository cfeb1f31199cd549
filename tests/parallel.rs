//! One document's pages read by every worker of `serve` at once: each page
//! once, resumed after SIGKILL without rereading, and other documents still
//! flowing past a long one.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::util::{Env, scanned_pdf, text_png, wait_until};
use quire::store::DocumentStatus;

/// Per page of document `id`: the worker that read it and in which attempt.
fn readers(env: &Env, id: i64) -> BTreeMap<i64, (String, i64)> {
    let doc = env.app().store.document(id).unwrap().unwrap();
    let pages = doc.ocr_details["pages"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    pages
        .iter()
        .filter(|(_, p)| p["status"] == "done")
        .map(|(n, p)| {
            (
                n.parse().unwrap(),
                (
                    p["worker"].as_str().unwrap().to_owned(),
                    p["attempts"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

/// How many times the daemon's log says it read page `n` of `pages`.
fn times_read(log: &str, n: usize, pages: usize) -> usize {
    log.matches(&format!(" page {n}/{pages}: ")).count()
}

/// Makes `path` as a scanned PDF of `pages` pages outside the inbox and
/// moves it in whole.
fn drop_scan(env: &Env, name: &str, pages: usize) {
    let staging = env.dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let path = staging.join(name);
    scanned_pdf(&path, pages);
    std::fs::rename(&path, env.inbox().join(name)).unwrap();
}

/// Drops a scan of `pages` pages, then, once two of them are read, a
/// one-line image; waits until the image is searchable. Returns the long
/// document as `list` shows it then, and how many of its pages were read.
fn small_after_long(env: &Env, pages: usize) -> (Value, usize) {
    drop_scan(env, "long.pdf", pages);
    wait_until("the long document's first pages to be read", || {
        doc_named(env, "long.pdf")
            .is_some_and(|d| readers(env, d["id"].as_i64().unwrap()).len() >= 2)
    });
    let staging = env.dir.path().join("staging");
    text_png(&staging.join("note.png"), &["a short memo about quinces"]);
    std::fs::rename(staging.join("note.png"), env.inbox().join("note.png")).unwrap();
    wait_until("the small document to be searchable", || {
        env.search(&["quinces"])
            .as_array()
            .is_some_and(|hits| !hits.is_empty())
    });
    let long = doc_named(env, "long.pdf").unwrap();
    let read = readers(env, long["id"].as_i64().unwrap()).len();
    (long, read)
}

fn doc_named(env: &Env, name: &str) -> Option<Value> {
    env.docs().into_iter().find(|d| d["name"] == name)
}

#[test]
fn one_documents_pages_are_read_once_each_by_two_and_by_four_workers() {
    const PAGES: usize = 8;
    for workers in [2, 4] {
        let env = Env::new();
        let daemon = env.serve(&["-v", "--workers", &workers.to_string()]);
        drop_scan(&env, "long.pdf", PAGES);
        let docs = env.wait_settled(1);
        let log = daemon.log_text();
        assert_eq!(docs[0]["status"], "indexed", "{log}");
        assert_eq!(docs[0]["pages"], PAGES, "{log}");
        for n in 1..=PAGES {
            assert_eq!(
                times_read(&log, n, PAGES),
                1,
                "page {n}, {workers} workers:\n{log}"
            );
        }
        let id = docs[0]["id"].as_i64().unwrap();
        let readers = readers(&env, id);
        assert_eq!(readers.len(), PAGES);
        let workers_seen: BTreeSet<&str> = readers.values().map(|(w, _)| w.as_str()).collect();
        assert!(
            workers_seen.len() >= 2,
            "{workers} workers, but the pages were read by {workers_seen:?}"
        );
        // Every page is found on its own page.
        let hits = env.json(&["search", "--pages", "number 007"]);
        assert_eq!(hits[0]["page"], 7, "{hits}");
    }
}

#[test]
fn a_sigkill_while_several_workers_read_one_document_rereads_no_finished_page() {
    const PAGES: usize = 12;
    let env = Env::new().set("QUIRE_QUEUE_STALE_TIMEOUT", "1h");
    let mut first = env.serve(&["-v", "--workers", "4"]);
    let app = env.app();
    drop_scan(&env, "long.pdf", PAGES);
    let mut done = BTreeMap::new();
    wait_until("a third of the pages to be read", || {
        let Some(d) = doc_named(&env, "long.pdf") else {
            return false;
        };
        done = readers(&env, d["id"].as_i64().unwrap());
        done.len() >= PAGES / 3
    });
    first.kill();
    let id = doc_named(&env, "long.pdf").unwrap()["id"].as_i64().unwrap();
    // What the kill left checkpointed (pages may have been saved since the
    // last look, before the kill landed).
    let before = readers(&env, id);
    assert!(
        before.len() < PAGES,
        "the whole document was read before the kill"
    );
    assert_eq!(
        app.store.document(id).unwrap().unwrap().status,
        DocumentStatus::Ocr
    );

    let second = env.serve(&["-v", "--workers", "4"]);
    let docs = env.wait_settled(1);
    let log = second.log_text();
    assert_eq!(docs[0]["status"], "indexed", "{log}");
    let after = readers(&env, id);
    assert_eq!(after.len(), PAGES);
    for n in 1..=PAGES {
        let read_again = times_read(&log, n, PAGES);
        match before.get(&(n as i64)) {
            Some(reader) => {
                assert_eq!(read_again, 0, "page {n} was read again:\n{log}");
                assert_eq!(after[&(n as i64)], *reader, "page {n}");
            }
            None => assert_eq!(read_again, 1, "page {n}:\n{log}"),
        }
    }
    let stats = app.queue.stats().unwrap();
    assert_eq!(
        stats.by_type["ocr"].completed, 1,
        "the OCR task completed more than once"
    );
}

#[test]
fn a_small_document_dropped_after_a_long_one_is_searchable_before_the_long_one_is_read() {
    const PAGES: usize = 100;
    // Helpers, not the time slice, are what this checks.
    let env = Env::new().set("QUIRE_QUEUE_TIME_SLICE", "1h");
    let daemon = env.serve(&["--workers", "2"]);
    let (long, read) = small_after_long(&env, PAGES);
    assert_eq!(long["status"], "ocr", "{}", daemon.log_text());
    assert!(read < PAGES, "all {read} pages were read first");
    eprintln!("the small document was searchable after {read} of {PAGES} pages");
}

#[test]
fn with_one_worker_a_long_document_gives_way_to_one_dropped_after_it_and_resumes() {
    const PAGES: usize = 12;
    // A time slice of nothing: the long document gives way as soon as
    // another waits, so the test needs no clock.
    let env = Env::new().set("QUIRE_QUEUE_TIME_SLICE", "0s");
    let daemon = env.serve(&["-v", "--workers", "1"]);
    let (_, read) = small_after_long(&env, PAGES);
    assert!(read < PAGES, "all {read} pages were read first");
    // The long one then resumes where it stopped, reading no page twice.
    let docs = env.wait_settled(2);
    let log = daemon.log_text();
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{log}");
    assert!(log.contains("to let a waiting task go first"), "{log}");
    for n in 1..=PAGES {
        assert_eq!(times_read(&log, n, PAGES), 1, "page {n}:\n{log}");
    }
}

#[test]
fn quire_process_reads_one_documents_pages_with_every_worker_once_each() {
    const PAGES: usize = 8;
    let env = Env::new().set("QUIRE_QUEUE_WORKERS", "2");
    let staging = env.dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let path = staging.join("long.pdf");
    scanned_pdf(&path, PAGES);
    let out = env.run(&["-v", "process", path.to_str().unwrap()]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    for n in 1..=PAGES {
        assert_eq!(times_read(&log, n, PAGES), 1, "page {n}:\n{log}");
    }
    let readers = readers(&env, 1);
    assert_eq!(readers.len(), PAGES);
    let workers: BTreeSet<&str> = readers.values().map(|(w, _)| w.as_str()).collect();
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert_eq!(env.json(&["show", "1"])["status"], "indexed");
}
