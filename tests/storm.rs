//! Ingest storms (issue 13): thousands of files arriving in the inbox at
//! once, by one `mv` of a folder or by as many separate copies, are each
//! taken exactly once, none is left behind, and the daemon's memory stays
//! bounded.
//!
//! The files are small plain-text files, which are read without OCR, so the
//! test measures the watcher and the ingest rather than tesseract.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{Daemon, Env, wait_until, wait_within};

/// Files per storm, as in the issue. Each test takes about ten seconds in a
/// debug build on two cores (measured: 7-8 s of ingest, workers indexing
/// alongside), well inside the suite's budget.
const FILES: usize = 2_000;

/// A generous bound on the daemon's peak resident memory after a storm.
const MAX_PEAK_KIB: u64 = 200 * 1024;

#[test]
fn a_folder_of_files_moved_in_with_one_rename_is_ingested_once_each() {
    let env = Env::new();
    let daemon = env.serve(&["--workers", "2"]);
    let staging = env.dir.path().join("storm");
    let names = text_files(&staging, "moved", FILES);
    let start = Instant::now();
    std::fs::rename(&staging, env.inbox().join("storm")).unwrap();
    let took = wait_ingested(&env, FILES, start);
    report("moved folder", took, &daemon);
    let expected: Vec<String> = names.iter().map(|n| format!("storm/{n}")).collect();
    check_documents(&env, &expected);
    wait_until("the emptied folder to go", || {
        !env.inbox().join("storm").exists()
    });
    check_searchable(&env, "moved", &[0, 1, FILES / 2, FILES - 1]);
}

#[test]
fn files_copied_in_one_by_one_are_ingested_once_each() {
    let env = Env::new();
    let daemon = env.serve(&["--workers", "2"]);
    let staging = env.dir.path().join("staging");
    let names = text_files(&staging, "copied", FILES);
    let start = Instant::now();
    for name in &names {
        std::fs::copy(staging.join(name), env.inbox().join(name)).unwrap();
    }
    let took = wait_ingested(&env, FILES, start);
    report("copied one by one", took, &daemon);
    check_documents(&env, &names);
    check_searchable(&env, "copied", &[0, 1, FILES / 2, FILES - 1]);
}

/// The word only file `i` of a batch holds.
fn word(prefix: &str, i: usize) -> String {
    format!("{prefix}word{i:05}")
}

/// Writes `n` small text files into `dir` (made), each with a word of its
/// own so that no two have the same content; returns their names.
fn text_files(dir: &Path, prefix: &str, n: usize) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let name = format!("{prefix}-{i:05}.txt");
            let body = format!("file {i} of the storm, with the word {}\n", word(prefix, i));
            std::fs::write(dir.join(&name), body).unwrap();
            name
        })
        .collect()
}

/// Waits until there are `n` documents and no file is left in the inbox;
/// returns the time since `start`.
fn wait_ingested(env: &Env, n: usize, start: Instant) -> Duration {
    let app = env.app();
    let mut docs = 0;
    // Exactly once is the point, not speed: a loaded machine gets time.
    // The documents are listed only once the inbox is empty, so that the
    // polling does not compete with the daemon.
    wait_within(&format!("{n} documents"), Duration::from_secs(300), || {
        files_under(&env.inbox()) == 0 && {
            docs = app.store.list(None).unwrap().len();
            docs >= n
        }
    });
    let took = start.elapsed();
    assert_eq!(docs, n, "more documents than files");
    took
}

/// How many files there are under `dir`, at any depth.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Prints the rate and the daemon's peak memory, and checks the latter.
fn report(what: &str, took: Duration, daemon: &Daemon) {
    let peak = peak_kib(daemon.pid());
    println!(
        "{what}: {FILES} files in {:.2}s ({:.0} files/s), daemon peak memory {:.1} MiB",
        took.as_secs_f64(),
        FILES as f64 / took.as_secs_f64(),
        peak as f64 / 1024.0
    );
    assert!(
        peak < MAX_PEAK_KIB,
        "{what}: the daemon peaked at {peak} KiB"
    );
}

/// A process's peak resident memory (VmHWM), in KiB.
fn peak_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Checks, through `quire list --json`, that the documents are exactly the
/// `expected` names, each once, and that no file was kept aside as a
/// duplicate.
fn check_documents(env: &Env, expected: &[String]) {
    let docs = env.docs();
    let names: Vec<&str> = docs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "a name was ingested twice");
    let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(unique, want);
    let stored = env.app().store.list(None).unwrap();
    let shas: BTreeSet<&str> = stored.iter().map(|d| d.sha256.as_str()).collect();
    assert_eq!(shas.len(), docs.len(), "two documents share a content");
    assert_eq!(files_under(&env.data().join("duplicates")), 0);
}

/// Checks that the word of each of the files `picks` finds its document, and
/// only it.
fn check_searchable(env: &Env, prefix: &str, picks: &[usize]) {
    for &i in picks {
        let w = word(prefix, i);
        let mut hits = serde_json::Value::Null;
        wait_until(&format!("{w} to be searchable"), || {
            hits = env.search(&[&w]);
            hits.as_array().is_some_and(|h| !h.is_empty())
        });
        let hits = hits.as_array().unwrap();
        assert_eq!(hits.len(), 1, "{w}: {hits:?}");
        let name = hits[0]["name"].as_str().unwrap();
        assert!(
            name.ends_with(&format!("{prefix}-{i:05}.txt")),
            "{w}: {name}"
        );
    }
}
