//! Trying hard to lose a file: hostile input, SIGKILL at every stage, many
//! processes on one database, a full disk and a read-only data dir. Every
//! check reads the store and the queue themselves (through quire's API), not
//! only what the commands say.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quire::app::App;
use quire::queue::{DocumentStatus, TaskStatus, TaskType};
use sha2::{Digest, Sha256};

use crate::util::{
    Env, PdfPage, corpus, on_both_engines, processes_with_env, raw_pdf, scan, text_pdf, wait_until,
    wait_within, write_pdf,
};

/// Waits until `expected` documents exist and none is still queued or
/// running. On a timeout it shows the documents and the daemons' last log
/// lines, since the data dir goes with the test.
fn wait_all_settled(env: &Env, expected: usize, limit: Duration) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let docs = env.docs();
        let settled = docs.iter().all(|d| {
            matches!(
                d["status"].as_str(),
                Some("indexed" | "failed" | "cancelled")
            )
        });
        if docs.len() == expected && settled {
            return docs;
        }
        if start.elapsed() > limit {
            let mut logs = String::new();
            for e in std::fs::read_dir(env.dir.path()).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("serve-") {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    logs.push_str(&format!(
                        "--- {name}\n{}\n",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    ));
                }
            }
            let stuck: Vec<_> = docs
                .iter()
                .filter(|d| {
                    !matches!(
                        d["status"].as_str(),
                        Some("indexed" | "failed" | "cancelled")
                    )
                })
                .collect();
            panic!(
                "timed out after {limit:?}: {} of {expected} documents, not settled: {stuck:#?}\n{logs}",
                docs.len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Peak resident memory (kB) of the processes whose environment carries
/// this env's data dir (the daemon and its OCR children), sampled every 20 ms.
struct RssSampler {
    stop: Arc<AtomicBool>,
    daemon_kb: Arc<AtomicU64>,
    child_kb: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(env: &Env, daemon_pid: u32) -> RssSampler {
        let entry = env.env_entry();
        let stop = Arc::new(AtomicBool::new(false));
        let (daemon_kb, child_kb) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, d, c) = (stop.clone(), daemon_kb.clone(), child_kb.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for pid in processes_with_env(&entry) {
                    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
                        .ok()
                        .and_then(|s| {
                            s.lines()
                                .find(|l| l.starts_with("VmRSS:"))?
                                .split_whitespace()
                                .nth(1)?
                                .parse::<u64>()
                                .ok()
                        })
                        .unwrap_or(0);
                    let slot = if pid == daemon_pid { &d } else { &c };
                    slot.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler {
            stop,
            daemon_kb,
            child_kb,
            thread: Some(thread),
        }
    }

    /// (daemon, largest OCR child) peaks in MiB.
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        (
            self.daemon_kb.load(Ordering::Relaxed) / 1024,
            self.child_kb.load(Ordering::Relaxed) / 1024,
        )
    }
}

/// A PDF whose catalog holds an array nested `depth` levels deep.
fn nested_pdf(depth: usize) -> Vec<u8> {
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    raw_pdf(&[
        format!("<< /Type /Catalog /Pages 2 0 R /Deep {deep} >>").into_bytes(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_vec(),
    ])
}

/// A PDF whose page tree is `depth` /Pages nodes deep, a page at the bottom.
fn deep_tree_pdf(depth: usize) -> Vec<u8> {
    let mut objects = vec![b"<< /Type /Catalog /Pages 2 0 R >>".to_vec()];
    for i in 0..depth {
        objects.push(format!("<< /Type /Pages /Kids [{} 0 R] /Count 1 >>", i + 3).into_bytes());
    }
    objects.push(b"<< /Type /Page /MediaBox [0 0 612 792] >>".to_vec());
    raw_pdf(&objects)
}

/// A PDF whose page tree loops back on itself.
fn looping_tree_pdf() -> Vec<u8> {
    raw_pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_vec(),
    ])
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn hostile_input_and_the_whole_corpus_end_indexed_or_failed_with_a_reason() {
    let env = Env::new()
        .set("QUIRE_OCR_PAGE_TIMEOUT", "60s")
        .set("QUIRE_OCR_MAX_MEMORY_MB", "2048");
    let dir = env.dir.path();
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let put = |name: &std::ffi::OsStr, bytes: &[u8]| {
        std::fs::write(staging.join(name), bytes).unwrap();
    };
    let multipage = std::fs::read(corpus("multipage.pdf")).unwrap();
    put("empty.pdf".as_ref(), b"");
    put("random.pdf".as_ref(), &noise(10_000, 1));
    put("random.png".as_ref(), &noise(10_000, 2));
    put("random.tiff".as_ref(), &noise(10_000, 3));
    put("truncated.pdf".as_ref(), &multipage[..multipage.len() / 2]);
    let mut cut = multipage[..multipage.len() / 2].to_vec();
    cut.extend_from_slice(b"\n%%EOF\n");
    put("truncated-with-eof.pdf".as_ref(), &cut);
    put("nested.pdf".as_ref(), &nested_pdf(200_000));
    put("deep-tree.pdf".as_ref(), &deep_tree_pdf(20_000));
    put("looping-tree.pdf".as_ref(), &looping_tree_pdf());
    let plain = dir.join("plain.pdf");
    text_pdf(&plain, &["a locked page of text that needs a password"]);
    let ok = Command::new("qpdf")
        .args(["--encrypt", "secret", "owner", "256", "--"])
        .arg(&plain)
        .arg(staging.join("encrypted.pdf"))
        .status()
        .unwrap();
    assert!(ok.success());
    let pages: Vec<&str> = vec![""; 10_000];
    text_pdf(&staging.join("ten-thousand-pages.pdf"), &pages);
    text_pdf(
        &staging.join("new\nline.pdf"),
        &["a name with a newline in it"],
    );
    text_pdf(
        &staging.join(std::ffi::OsStr::from_bytes(b"invalid-\xff-utf8.pdf")),
        &["a name that is not valid UTF-8"],
    );
    for entry in std::fs::read_dir(corpus("")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, staging.join(p.file_name().unwrap())).unwrap();
    }
    let expected = std::fs::read_dir(&staging).unwrap().count();

    let mut daemon = env.serve(&["--workers", "2"]);
    let sampler = RssSampler::start(&env, daemon.pid() as u32);
    let inbox = env.inbox();
    // A symlink to a file outside the inbox: never followed.
    let outside = dir.join("outside.pdf");
    text_pdf(&outside, &["outside the inbox"]);
    std::os::unix::fs::symlink(&outside, inbox.join("symlink-to-outside.pdf")).unwrap();
    for entry in std::fs::read_dir(&staging).unwrap() {
        let p = entry.unwrap().path();
        std::fs::rename(&p, inbox.join(p.file_name().unwrap())).unwrap();
    }
    // Files that vanish or move while the daemon may be taking them.
    for i in 0..20 {
        let p = inbox.join(format!("vanishing-{i}.pdf"));
        text_pdf(&p, &[&format!("here and gone {i}")]);
        let _ = std::fs::remove_file(&p);
    }
    let moving = inbox.join("moving.pdf");
    text_pdf(&moving, &["renamed while being taken in"]);
    let _ = std::fs::rename(&moving, inbox.join("moved.pdf"));
    // The moved file counts once, under whichever name the daemon saw; a
    // vanishing file the daemon took before it was deleted counts once too.
    let mut docs = vec![];
    wait_within("every file to settle", Duration::from_secs(600), || {
        docs = env.docs();
        let vanished_docs = docs
            .iter()
            .filter(|d| d["name"].as_str().unwrap().starts_with("vanishing"))
            .count();
        docs.len() == expected + 1 + vanished_docs
            && docs
                .iter()
                .all(|d| matches!(d["status"].as_str(), Some("indexed" | "failed")))
    });
    let docs_expected = docs.len();
    let (daemon_mb, child_mb) = sampler.finish();
    assert!(
        daemon.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the daemon died:\n{}",
        daemon.log_text()
    );
    let failed: Vec<_> = docs.iter().filter(|d| d["status"] == "failed").collect();
    for d in &docs {
        match d["status"].as_str() {
            Some("indexed") => {}
            Some("failed") => assert!(
                d["error"].as_str().is_some_and(|e| e.len() > 10),
                "failed without a reason: {d}"
            ),
            s => panic!("{s:?}: {d}"),
        }
    }
    eprintln!(
        "{} files: {} indexed, {} failed; peak RSS: daemon {daemon_mb} MiB, largest OCR child {child_mb} MiB",
        docs.len(),
        docs.len() - failed.len(),
        failed.len()
    );
    for d in &failed {
        eprintln!("  {}: {}", d["name"], d["error"]);
    }
    let status_of = |name: &str| {
        docs.iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("no document {name}"))["status"]
            .clone()
    };
    for bad in [
        "empty.pdf",
        "random.pdf",
        "random.png",
        "encrypted.pdf",
        "ten-thousand-pages.pdf",
    ] {
        assert_eq!(status_of(bad), "failed", "{bad}");
    }
    for good in ["new\nline.pdf", "multipage.pdf", "linn.pdf"] {
        assert_eq!(status_of(good), "indexed", "{good}");
    }
    assert!(
        inbox.join("symlink-to-outside.pdf").is_symlink(),
        "the symlink was touched"
    );
    let mut names: Vec<&str> = docs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), docs.len(), "a file became two documents");
    // Memory stays bounded: the daemon holds no page data, and each OCR
    // child is capped by ocr.max_memory_mb.
    assert!(daemon_mb < 300, "daemon peak RSS {daemon_mb} MiB");
    assert!(child_mb <= 2048, "OCR child peak RSS {child_mb} MiB");
    // Still up and still working.
    text_pdf(&inbox.join("after.pdf"), &["still working afterwards"]);
    wait_all_settled(&env, docs_expected + 1, Duration::from_secs(60));
    assert_eq!(env.json(&["search", "afterwards"])[0]["name"], "after.pdf");
}

/// Per (document, page): the attempt that read it, as recorded in ocr_details.
fn page_attempts(env: &Env) -> BTreeMap<(i64, String), i64> {
    let mut attempts = BTreeMap::new();
    for d in env.app().store.list(None).unwrap() {
        let Some(pages) = d.ocr_details["pages"].as_object() else {
            continue;
        };
        for (n, p) in pages.iter().filter(|(_, p)| p["status"] == "done") {
            attempts.insert((d.id, n.clone()), p["attempts"].as_i64().unwrap_or(0));
        }
    }
    attempts
}

/// A document is being read and has pages checkpointed.
fn mid_ocr(app: &App) -> bool {
    let reading = app.store.list(Some(DocumentStatus::Ocr)).unwrap();
    reading
        .iter()
        .any(|d| !app.store.pages(d.id).unwrap().is_empty())
}

/// A document's indexing has staged pages but not published them.
fn mid_indexing(app: &App) -> bool {
    app.store.list(None).unwrap().iter().any(|d| {
        let details = &d.indexing_details;
        details["phase"] == "stage" && details["staged"].as_i64().unwrap_or(0) > 0
    })
}

// A killed daemon's claims come back by its process id, not by age: the
// stale timeout is an hour (on PostgreSQL too, as the claims are this host's).
on_both_engines!(sigkill_at_every_stage_loses_nothing_and_redoes_no_finished_page);

fn sigkill_at_every_stage_loses_nothing_and_redoes_no_finished_page(env: Env) {
    let env = env
        .set("QUIRE_QUEUE_STALE_TIMEOUT", "1h")
        .set("QUIRE_INDEX_BATCH_PAGES", "2");
    let dir = env.dir.path();
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    // Scanned documents (OCR takes a while per page) and long text-layer
    // ones (indexing takes a while).
    for d in 0..3 {
        let pages: Vec<PdfPage> = (0..3)
            .map(|p| {
                let line = format!("Scanned document {d} page {p} for the crash test.");
                PdfPage::Scan(scan(dir, &[&line, "A second line of known text."], true))
            })
            .collect();
        write_pdf(&staging.join(format!("scan-{d}.pdf")), &pages);
    }
    for d in 0..3 {
        let pages: Vec<String> = (0..300)
            .map(|p| format!("Ledger {d} page {p}: entries and totals"))
            .collect();
        let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
        text_pdf(&staging.join(format!("ledger-{d}.pdf")), &pages);
    }
    let mut originals: HashMap<String, String> = HashMap::new();
    for e in std::fs::read_dir(&staging).unwrap() {
        let p = e.unwrap().path();
        let hash = hex(&Sha256::digest(std::fs::read(&p).unwrap()));
        originals.insert(p.file_name().unwrap().to_str().unwrap().into(), hash);
    }

    // Each round waits for a stage, then SIGKILLs the daemon there.
    // No stage "between OCR and indexing": the worker that completes a
    // document's OCR claims its indexing next, a few milliseconds later; a
    // kill in between leaves the indexing task pending, enqueued in the OCR
    // completion's own transaction (queue::sqlite::lease's tests).
    type Stage = (&'static str, fn(&App) -> bool);
    let stages: [Stage; 2] = [("mid-OCR", mid_ocr), ("mid-indexing", mid_indexing)];
    let mut kills: Vec<&str> = vec![];
    let mut snapshots = vec![];

    // Round 0: kill during ingest, a few milliseconds after the drop.
    let mut daemon = env.serve(&["--workers", "2"]);
    for e in std::fs::read_dir(&staging).unwrap() {
        let p = e.unwrap().path();
        std::fs::rename(&p, env.inbox().join(p.file_name().unwrap())).unwrap();
    }
    std::thread::sleep(Duration::from_millis(5));
    daemon.kill();
    kills.push("during ingest");
    snapshots.push(page_attempts(&env));

    let settled = |app: &App| {
        let docs = app.store.list(None).unwrap();
        let done = |d: &&quire::store::Document| {
            matches!(d.status, DocumentStatus::Indexed | DocumentStatus::Failed)
        };
        docs.iter().filter(done).count() == originals.len()
    };
    let app = env.app();
    for (name, at_stage) in stages.iter().cycle().take(6) {
        let mut daemon = env.serve(&["--workers", "2"]);
        let start = Instant::now();
        let mut hit = false;
        while start.elapsed() < Duration::from_secs(30) {
            if at_stage(&app) {
                hit = true;
                break;
            }
            if settled(&app) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        daemon.kill();
        if hit {
            kills.push(name);
            snapshots.push(page_attempts(&env));
        }
    }

    let _last = env.serve(&["--workers", "2"]);
    let docs = wait_all_settled(&env, originals.len(), Duration::from_secs(300));
    eprintln!("survived {} kills: {kills:?}", kills.len());
    assert!(kills.len() >= 5, "too few kills landed: {kills:?}");
    for d in &docs {
        let id = d["id"].as_i64().unwrap();
        assert_eq!(d["status"], "indexed", "{d}");
        let pages: i64 = d["pages"].as_i64().unwrap();
        let stored = app.store.pages(id).unwrap().len() as i64;
        let indexed = app.store.indexed_pages(id).unwrap();
        assert_eq!((stored, indexed), (pages, pages), "document {id}");
        // The original is in the store, byte for byte.
        let doc = app.store.document(id).unwrap().unwrap();
        let bytes = std::fs::read(app.store.file_of(&doc)).unwrap();
        assert_eq!(hex(&Sha256::digest(&bytes)), doc.sha256);
        assert_eq!(originals[d["name"].as_str().unwrap()], doc.sha256);
    }
    // The searchable PDFs may still be being written.
    wait_until("every task to finish", || {
        let t = app.queue.stats().unwrap().tasks;
        t.pending + t.claimed == 0
    });
    let stats = app.queue.stats().unwrap();
    assert_eq!(stats.tasks.claimed, 0);
    let completed_ocr = stats.by_type["ocr"].completed;
    assert_eq!(
        completed_ocr as usize,
        originals.len(),
        "an OCR task ran twice"
    );
    // A page finished before a kill was never read again.
    let last = page_attempts(&env);
    for snap in &snapshots {
        for (page, attempt) in snap {
            assert_eq!(
                last.get(page),
                Some(attempt),
                "page {page:?} was OCR'd again"
            );
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

on_both_engines!(many_processes_on_one_database_never_see_it_locked_and_do_each_task_once);

fn many_processes_on_one_database_never_see_it_locked_and_do_each_task_once(env: Env) {
    let secs: u64 = std::env::var("QUIRE_TEST_HAMMER_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let env = Arc::new(env.set("QUIRE_QUEUE_BACKOFF_BASE", "100ms"));
    let watcher = env.serve(&["--workers", "1"]);
    let a = env.serve(&["--workers", "1", "--no-watch"]);
    let b = env.serve(&["--workers", "1", "--no-watch"]);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let files = Arc::new(AtomicU64::new(0));

    let run = |env: &Env, errors: &std::sync::Mutex<Vec<String>>, args: &[&str]| {
        let out = env.cmd().args(args).stdout(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        // `search` exits 1 when nothing matches, like grep.
        let nothing_found = args[0] == "search" && out.status.code() == Some(1);
        if !(out.status.success() || nothing_found) || err.contains("locked") {
            errors
                .lock()
                .unwrap()
                .push(format!("quire {args:?}: {err}"));
        }
    };
    let mut threads = vec![];
    // Drops into the inbox.
    {
        let (env, stop, files) = (env.clone(), stop.clone(), files.clone());
        threads.push(std::thread::spawn(move || {
            let tmp = env.dir.path().join("drops");
            std::fs::create_dir_all(&tmp).unwrap();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let p = tmp.join(format!("drop-{i}.pdf"));
                text_pdf(&p, &[&format!("dropped file number {i} zulu{i}")]);
                std::fs::rename(&p, env.inbox().join(format!("drop-{i}.pdf"))).unwrap();
                files.fetch_add(1, Ordering::Relaxed);
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }
    // `quire enqueue` from other processes.
    {
        let (env, stop, files, errors) = (env.clone(), stop.clone(), files.clone(), errors.clone());
        threads.push(std::thread::spawn(move || {
            let tmp = env.dir.path().join("enqueued");
            std::fs::create_dir_all(&tmp).unwrap();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let p = tmp.join(format!("enq-{i}.pdf"));
                text_pdf(&p, &[&format!("enqueued file number {i} yankee{i}")]);
                run(&env, &errors, &["enqueue", p.to_str().unwrap()]);
                files.fetch_add(1, Ordering::Relaxed);
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }
    // Readers and queue commands.
    {
        let (env, stop, errors) = (env.clone(), stop.clone(), errors.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                run(&env, &errors, &["stats", "--json"]);
                run(&env, &errors, &["search", &format!("zulu{i}")]);
                run(&env, &errors, &["list", "--status", "failed", "--json"]);
                run(&env, &errors, &["retry", "--all-failed"]);
                i += 1;
            }
        }));
    }
    // Cancels: the newest pending OCR task, now and then.
    let cancelled = Arc::new(AtomicU64::new(0));
    {
        let (env, stop, errors, cancelled) =
            (env.clone(), stop.clone(), errors.clone(), cancelled.clone());
        threads.push(std::thread::spawn(move || {
            let app = env.app();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                if let Some(id) = newest_pending_ocr_task(&app) {
                    let out = env
                        .cmd()
                        .args(["cancel", &id.to_string()])
                        .output()
                        .unwrap();
                    let err = String::from_utf8_lossy(&out.stderr);
                    if out.status.success() {
                        cancelled.fetch_add(1, Ordering::Relaxed);
                    } else if err.contains("locked") {
                        errors.lock().unwrap().push(format!("cancel: {err}"));
                    }
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let total = files.load(Ordering::Relaxed) as usize;
    let docs = wait_all_settled(&env, total, Duration::from_secs(300));
    let logs = [watcher.log_text(), a.log_text(), b.log_text()].concat();
    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} command(s) failed: {:#?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(
        !logs.contains("database is locked"),
        "a daemon saw the database locked"
    );
    // Exactly once: one completed OCR task per document that was not
    // cancelled, and no document's OCR completed in two processes.
    let app = env.app();
    let per_doc: Vec<(i64, usize)> = docs
        .iter()
        .map(|d| {
            let id = d["id"].as_i64().unwrap();
            let tasks = app.queue.tasks_of(id).unwrap();
            let completed = tasks
                .iter()
                .filter(|t| t.task_type == TaskType::Ocr && t.status == TaskStatus::Completed);
            (id, completed.count())
        })
        .filter(|&(_, n)| n > 0)
        .collect();
    assert!(per_doc.iter().all(|(_, n)| *n == 1), "{per_doc:?}");
    let indexed = docs.iter().filter(|d| d["status"] == "indexed").count();
    let cancelled_docs = docs.iter().filter(|d| d["status"] == "cancelled").count();
    assert_eq!(indexed + cancelled_docs, total, "{docs:?}");
    assert_eq!(logs.matches("(ocr) completed").count(), indexed);
    eprintln!(
        "{secs}s: {total} files from 3 daemons' inbox and `quire enqueue`, {indexed} indexed, \
         {cancelled_docs} cancelled, 0 lock errors"
    );
}

#[test]
fn a_full_disk_keeps_the_files_and_recovers_when_space_returns() {
    let env = Env::new()
        .set("QUIRE_WATCH_RESCAN_INTERVAL", "1s")
        .set("QUIRE_QUEUE_BACKOFF_BASE", "100ms")
        .set("QUIRE_QUEUE_BACKOFF_MAX", "1s")
        .set("QUIRE_QUEUE_MAX_ATTEMPTS", "1000");
    // The whole data dir (database, inbox, store) on a small filesystem.
    let fs = env.data();
    std::fs::create_dir_all(&fs).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
        .arg(&fs)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a tmpfs here (not root?); skipping the full-disk test");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(fs.clone());
    let daemon = env.serve(&["--workers", "1"]);
    text_pdf(
        &env.inbox().join("before.pdf"),
        &["written before the disk filled"],
    );
    wait_until("the first document", || {
        env.docs().first().is_some_and(|d| d["status"] == "indexed")
    });
    // Stage the files on the same filesystem, then fill it to the last byte.
    let staging = fs.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let names: Vec<String> = (0..8).map(|i| format!("during-{i}.pdf")).collect();
    for (i, n) in names.iter().enumerate() {
        let pages: Vec<String> = (0..40)
            .map(|p| format!("page {p} of file {i} written while the disk was full, xray{i}"))
            .collect();
        let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
        text_pdf(&staging.join(n), &pages);
    }
    let filler = fs.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&chunk[..512]).is_ok() {}
    drop(f);
    for n in &names {
        std::fs::rename(staging.join(n), env.inbox().join(n)).unwrap();
    }
    wait_within(
        "quire to report the full disk",
        Duration::from_secs(60),
        || {
            let log = daemon.log_text();
            log.contains("disk is full") || log.contains("No space left")
        },
    );
    for line in daemon
        .log_text()
        .lines()
        .filter(|l| l.contains("disk is full") || l.contains("No space left"))
        .take(3)
    {
        eprintln!("reported: {line}");
    }
    // Nothing lost while full: each file is in the inbox or in the store.
    for n in &names {
        let in_inbox = env.inbox().join(n).exists();
        let in_store = env.docs().iter().any(|d| d["name"] == n.as_str());
        assert!(in_inbox || in_store, "{n} is gone");
    }
    std::fs::remove_file(&filler).unwrap();
    let docs = wait_all_settled(&env, names.len() + 1, Duration::from_secs(120));
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    let hits = env.json(&["search", "xray3", "--pages", "--limit", "100"]);
    assert_eq!(hits.as_array().unwrap().len(), 40);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .all(|h| h["name"] == "during-3.pdf")
    );
}

#[test]
fn a_read_only_data_dir_is_a_clear_error_at_start() {
    let env = Env::new();
    text_pdf(&env.dir.path().join("x.pdf"), &["x"]);
    env.ok(&["enqueue", env.dir.path().join("x.pdf").to_str().unwrap()]);
    let data = env.data();
    let is_root = unsafe { libc::geteuid() } == 0;
    // Others may reach the data dir, but not write to it.
    set_mode(env.dir.path(), 0o755);
    let mut cmd = if is_root {
        // Root ignores permissions: run as nobody, to whom the dir is read-only.
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.arg(env!("CARGO_BIN_EXE_quire"));
        c
    } else {
        set_mode(&data, 0o555);
        Command::new(env!("CARGO_BIN_EXE_quire"))
    };
    let out = cmd
        .args(["serve", "--workers", "1"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("QUIRE_DATA_DIR", &data)
        .output()
        .unwrap();
    if !is_root {
        set_mode(&data, 0o755);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not writable"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The newest document's pending OCR task, if a queued document has one.
fn newest_pending_ocr_task(app: &App) -> Option<i64> {
    let queued = app.store.list(Some(DocumentStatus::Queued)).ok()?;
    queued.iter().find_map(|d| {
        let tasks = app.queue.tasks_of(d.id).ok()?;
        tasks
            .iter()
            .find(|t| t.task_type == TaskType::Ocr && t.status == TaskStatus::Pending)
            .map(|t| t.id)
    })
}
