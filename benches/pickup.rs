//! Pickup latency of a running `quire serve` (the real binary): from a file's
//! close in the inbox to its OCR task being claimed, and from a task committed
//! by `quire enqueue` in another process to its claim. Prints p50/p99.
//!
//! Run: `cargo bench --bench pickup` (QUIRE_BENCH_DROPS overrides the count).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quire::app::App;
use quire::config::Config;
use quire::queue::TaskType;

#[path = "../tests/util/pdf.rs"]
mod pdf;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn main() {
    let drops: usize = std::env::var("QUIRE_BENCH_DROPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let quire = env!("CARGO_BIN_EXE_quire");
    let mut daemon = Command::new(quire)
        .args(["serve", "--workers", "2", "--http", ""])
        .env("QUIRE_DATA_DIR", &data)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !data.join("inbox.lock").exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));

    // Inbox drops: written outside, closed, then timestamped at rename into the inbox.
    let mut closed_at = vec![];
    for i in 0..drops {
        let tmp = dir.path().join(format!("drop-{i}.pdf"));
        std::fs::write(
            &tmp,
            pdf::text_pdf_bytes(&[&format!("drop number {i} of the pickup latency benchmark")]),
        )
        .unwrap();
        let t0 = now_ms();
        std::fs::rename(&tmp, data.join("inbox").join(format!("drop-{i}.pdf"))).unwrap();
        closed_at.push((format!("drop-{i}.pdf"), t0));
        std::thread::sleep(Duration::from_millis(25));
    }
    let inbox = wait_claims(&data, &closed_at);

    // Enqueue from another process: commit time (task created_at) to claim.
    let mut names = vec![];
    for i in 0..drops / 3 {
        let f = dir.path().join(format!("enq-{i}.pdf"));
        std::fs::write(
            &f,
            pdf::text_pdf_bytes(&[&format!(
                "enqueued number {i} of the pickup latency benchmark"
            )]),
        )
        .unwrap();
        let out = Command::new(quire)
            .arg("enqueue")
            .arg(&f)
            .env("QUIRE_DATA_DIR", &data)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success());
        names.push((f.to_string_lossy().into_owned(), -1));
    }
    let enqueued = wait_claims(&data, &names);
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    report("inbox drop (rename into inbox) -> claim", inbox);
    report("quire enqueue (other process) commit -> claim", enqueued);
}

/// Waits until every named document's OCR task is claimed; returns latencies in
/// ms from the given time (or, for -1, from the task's creation). Reads
/// through quire's own API, as any engine would answer it.
fn wait_claims(data: &Path, names: &[(String, i64)]) -> Vec<i64> {
    let config = Config {
        data_dir: data.to_path_buf(),
        ..Default::default()
    };
    let app = App::open_existing(&config).unwrap();
    let start = Instant::now();
    loop {
        let docs = app.store.list(None).unwrap();
        let mut out = vec![];
        for (name, t0) in names {
            let Some(doc) = docs.iter().find(|d| &d.name == name) else {
                continue;
            };
            let tasks = app.queue.tasks_of(doc.id).unwrap();
            let ocr = tasks.iter().find(|t| t.task_type == TaskType::Ocr);
            if let Some((claimed, created)) = ocr.and_then(|t| Some((t.claimed_at?, t.created_at)))
            {
                out.push(claimed - if *t0 < 0 { created } else { *t0 });
            }
        }
        if out.len() == names.len() || start.elapsed() > Duration::from_secs(120) {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn report(what: &str, mut ms: Vec<i64>) {
    ms.sort();
    let p = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    println!(
        "{what}: n={} p50 {} ms, p99 {} ms, max {} ms",
        ms.len(),
        p(0.5),
        p(0.99),
        ms[ms.len() - 1]
    );
}
