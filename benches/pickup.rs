//! Pickup latency of a running `quire serve` (the real binary): from a file's
//! close in the inbox to its OCR task being claimed, and from a task committed
//! by `quire enqueue` in another process to its claim. Then, on PostgreSQL,
//! the same from `quire enqueue` on one host to the claim by a daemon on
//! another (two network and UTS namespaces of the tests' kind, over veth,
//! to a private server; as root, else skipped). Prints p50/p99.
//!
//! Run: `cargo bench --bench pickup` (QUIRE_BENCH_DROPS overrides the count).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quire::app::App;
use quire::config::Config;
use quire::queue::TaskType;

#[allow(dead_code)]
#[path = "../tests/util/netns.rs"]
mod netns;
#[path = "../tests/util/pdf.rs"]
mod pdf;
#[allow(dead_code)]
#[path = "../tests/util/pgserver.rs"]
mod pgserver;

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
    let inbox = wait_claims(&sqlite(&data), &closed_at);

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
        // `quire enqueue` names a document by its file name.
        names.push((f.file_name().unwrap().to_string_lossy().into_owned(), -1));
    }
    let enqueued = wait_claims(&sqlite(&data), &names);
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    report("inbox drop (rename into inbox) -> claim", inbox);
    report("quire enqueue (other process) commit -> claim", enqueued);
    if unsafe { libc::geteuid() } == 0 {
        let across = across_hosts(drops / 3);
        report(
            "PostgreSQL: quire enqueue on one host, commit -> claim on another",
            across,
        );
    } else {
        println!("PostgreSQL across hosts: skipped (network namespaces need root)");
    }
}

/// The config of a SQLite data dir.
fn sqlite(data: &Path) -> Config {
    Config {
        data_dir: data.to_path_buf(),
        ..Default::default()
    }
}

/// `n` tasks enqueued by `quire enqueue` on one test host and claimed by
/// `quire serve` on another, through a private PostgreSQL server; the
/// latencies from the commit to the claim, both stamped by the server.
fn across_hosts(n: usize) -> Vec<i64> {
    let server = pgserver::PgServer::start_for_hosts();
    let hosts = netns::Host::many(2);
    let url =
        |h: &netns::Host| format!("postgres://postgres@{}:{}/postgres", h.gateway, server.port);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let quire = env!("CARGO_BIN_EXE_quire");
    let on = |h: &netns::Host, args: &[&str]| {
        let wrapper = h.wrapper();
        let mut c = Command::new(&wrapper[0]);
        c.args(&wrapper[1..])
            .arg(quire)
            .args(args)
            .env("QUIRE_DATA_DIR", &data)
            .env("QUIRE_DATABASE_URL", url(h))
            .env("QUIRE_HTTP_LISTEN", "")
            .env("RUST_LOG", "warn");
        c
    };
    let mut daemon = on(&hosts[0], &["serve", "--workers", "2", "--no-watch"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let config = Config {
        data_dir: data.clone(),
        database: quire::config::DatabaseConfig {
            url: server.url(),
            ..Default::default()
        },
        ..Default::default()
    };
    // The daemon has made the schema and listens once its first commit-free
    // look at the queue is done; a generous second covers it.
    let start = Instant::now();
    while App::open_existing(&config).is_err() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    let mut names = vec![];
    for i in 0..n {
        let f = dir.path().join(format!("host-{i}.pdf"));
        std::fs::write(
            &f,
            pdf::text_pdf_bytes(&[&format!("enqueued on host two, number {i}")]),
        )
        .unwrap();
        let out = on(&hosts[1], &["enqueue", f.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `quire enqueue` names a document by its file name.
        names.push((f.file_name().unwrap().to_string_lossy().into_owned(), -1));
        // Spaced, as in the runs above: latency, not a backlog's drain.
        std::thread::sleep(Duration::from_millis(25));
    }
    let latencies = wait_claims(&config, &names);
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    latencies
}

/// Waits until every named document's OCR task is claimed; returns latencies in
/// ms from the given time (or, for -1, from the task's creation). Reads
/// through quire's own API, as any engine would answer it.
fn wait_claims(config: &Config, names: &[(String, i64)]) -> Vec<i64> {
    let app = App::open_existing(config).unwrap();
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
    if ms.is_empty() {
        println!("{what}: nothing was claimed within 2 minutes");
        return;
    }
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
