//! Ingest storm (issue 13) on the real binary: files moved into the inbox of
//! a running `quire serve` by one `mv` of a folder, then as many copied in
//! one by one; files/s from the drop to the last document committed.
//!
//! The baseline, in the same run, is the watcher's own work without the
//! watcher: `quire::ingest::ingest` of as many files of the same kind,
//! already in an inbox, one after another in this process, moved into the
//! store as the watcher moves them (a hard link, two fsyncs and one
//! transaction a file). The ratio is thus what the events, the completeness
//! checks and the daemon's other threads cost. `quire enqueue DIR` is shown
//! too, for reference only: it copies each file into the store and fsyncs
//! the copy, more work a file than the inbox does, so it would flatter the
//! watcher.
//!
//! Each round is fresh (temp dir, data dir, daemon); the figures are the
//! medians of the rounds, as fsyncs on a shared disk vary a lot.
//!
//! Run: `cargo bench --bench storm`. QUIRE_BENCH_FILES overrides the 2,000
//! files of each storm, QUIRE_BENCH_ROUNDS the 3 rounds;
//! QUIRE_BENCH_WORKERS=N runs N workers alongside (none by default: the
//! daemon only ingests, as `quire enqueue` does).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quire::app::App;
use quire::config::Config;
use quire::ingest::{Ingested, ingest};
use quire::queue::Priority;
use quire::store::Placement;

fn main() {
    let n: usize = env_or("QUIRE_BENCH_FILES", 2_000);
    let workers: usize = env_or("QUIRE_BENCH_WORKERS", 0);
    let rounds: usize = env_or("QUIRE_BENCH_ROUNDS", 3).max(1);
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("ingest storm, {n} small text files each, daemon with {workers} worker(s):");
    let mut all = vec![];
    for r in 1..=rounds {
        let x = round(n, workers);
        println!(
            "  round {r}: ingest() {:.0}, enqueue {:.0}, mv {:.0}, cp {:.0} files/s \
             (copying alone {:.0}); peak {:.1} MiB; {} rescan(s) after lost events",
            rate(x.baseline),
            rate(x.enqueued),
            rate(x.moved),
            rate(x.copied),
            rate(x.copy_loop),
            x.peak_mib,
            x.rescans
        );
        all.push(x);
    }
    let median = |f: fn(&Round) -> Duration| {
        let mut v: Vec<Duration> = all.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    let baseline = median(|x| x.baseline);
    let enqueued = median(|x| x.enqueued);
    println!("  median of {rounds} round(s):");
    println!(
        "    baseline, ingest() in a loop {:>7.0} files/s ({:.2}s)",
        rate(baseline),
        baseline.as_secs_f64()
    );
    println!(
        "    (`quire enqueue DIR`         {:>7.0} files/s ({:.2}s), copies: reference only)",
        rate(enqueued),
        enqueued.as_secs_f64()
    );
    for (what, took) in [
        ("one mv of a folder", median(|x| x.moved)),
        ("cp one by one", median(|x| x.copied)),
    ] {
        println!(
            "    {what:<27} {:>7.0} files/s ({:.2}s), {:.2}x the baseline",
            rate(took),
            took.as_secs_f64(),
            rate(took) / rate(baseline)
        );
    }
}

/// What one round measured.
struct Round {
    baseline: Duration,
    enqueued: Duration,
    moved: Duration,
    copied: Duration,
    /// The copying into the inbox alone, without waiting for the daemon.
    copy_loop: Duration,
    peak_mib: f64,
    rescans: usize,
}

/// The baseline, then both storms on a fresh daemon, in a fresh temp dir.
fn round(n: usize, workers: usize) -> Round {
    let dir = tempfile::tempdir().unwrap();
    let baseline = ingest_loop(dir.path(), n);
    let enqueued = enqueue(dir.path(), n);

    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let mut daemon = serve(&data, &log, workers);
    let app = App::open_existing(&Config {
        data_dir: data.clone(),
        ..Default::default()
    })
    .unwrap();
    let inbox = data.join("inbox");

    let folder = text_files(&dir.path().join("storm"), "moved", n);
    let t0 = now_ms();
    std::fs::rename(&folder, inbox.join("storm")).unwrap();
    let moved = until_documents(&app, n, t0);

    let sources = text_files(&dir.path().join("copies"), "copied", n);
    let t0 = now_ms();
    let copying = Instant::now();
    for e in std::fs::read_dir(&sources).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), inbox.join(e.file_name())).unwrap();
    }
    let copy_loop = copying.elapsed();
    let copied = until_documents(&app, 2 * n, t0);

    let peak_mib = peak_mib(daemon.id());
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    let rescans = std::fs::read_to_string(&log)
        .unwrap()
        .matches("lost events; rescanning")
        .count();
    Round {
        baseline,
        enqueued,
        moved,
        copied,
        copy_loop,
        peak_mib,
        rescans,
    }
}

/// The baseline: `n` files already in the inbox of a data dir of their own
/// (no daemon), ingested one after another as the watcher does; the time it
/// took.
fn ingest_loop(dir: &Path, n: usize) -> Duration {
    let app = App::open(
        &Config {
            data_dir: dir.join("direct"),
            ..Default::default()
        },
        4,
    )
    .unwrap();
    let inbox = text_files(&app.config.inbox_dir(), "direct", n);
    let mut files: Vec<_> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let start = Instant::now();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        let r = ingest(
            &app.store,
            &app.queue,
            f,
            &name,
            Placement::Move,
            Priority::High,
        );
        assert!(matches!(r, Ok(Ingested::New { .. })), "{r:?}");
    }
    start.elapsed()
}

/// For reference: `quire enqueue` of a folder of `n` files into a data dir
/// of its own; the time the command took.
fn enqueue(dir: &Path, n: usize) -> Duration {
    let folder = text_files(&dir.join("enqueue"), "enqueued", n);
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_quire"))
        .arg("enqueue")
        .arg(&folder)
        .env("QUIRE_DATA_DIR", dir.join("baseline"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("added document"))
        .count();
    assert_eq!(added, n);
    took
}

/// Starts `quire serve` on `data` (logging to `log`) and waits until it
/// watches the inbox.
fn serve(data: &Path, log: &Path, workers: usize) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_quire"));
    cmd.args(["serve", "--http", ""])
        .env("QUIRE_DATA_DIR", data)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(log).unwrap())
        .stdout(Stdio::null());
    if workers == 0 {
        cmd.env("QUIRE_QUEUE_ENABLED", "false");
    } else {
        cmd.args(["--workers", &workers.to_string()]);
    }
    let child = cmd.spawn().unwrap();
    let start = Instant::now();
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("watching the inbox")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Writes `n` small text files into `dir` (made), each with a word of its
/// own so that none is a duplicate of another; returns `dir`.
fn text_files(dir: &Path, prefix: &str, n: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let body = format!("file {i} of the storm, with the word {prefix}word{i:05}\n");
        std::fs::write(dir.join(format!("{prefix}-{i:05}.txt")), body).unwrap();
    }
    dir.to_path_buf()
}

/// Waits until there are `n` documents; the time from `t0` (ms since the
/// epoch) to the newest one's creation.
fn until_documents(app: &App, n: usize, t0: i64) -> Duration {
    let start = Instant::now();
    loop {
        let docs = app.store.list(None).unwrap();
        if docs.len() >= n {
            let last = docs.iter().map(|d| d.created_at).max().unwrap();
            return Duration::from_millis((last - t0).max(1) as u64);
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "{} of {n} documents after 10 minutes",
            docs.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A process's peak resident memory (VmHWM), in MiB.
fn peak_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An environment variable's value, or `default`.
fn env_or(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
