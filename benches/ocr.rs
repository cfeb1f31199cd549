//! OCR throughput: pages per second of `quire serve` (the real binary, its
//! engine reused across pages) with 1 and 2 workers, side by side with the
//! `tesseract` command-line tool on the same page images, run one after the
//! other and two at a time. Prints pages/s and quire's ratio to each.
//!
//! Needs ImageMagick (to draw the pages) and the `tesseract` command
//! (apt-get install tesseract-ocr; `scripts/setup.sh --test` installs both).
//! Run: `cargo bench --bench ocr` (QUIRE_BENCH_PAGES overrides the 12 pages).

#[path = "../tests/util/draw.rs"]
mod draw;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES_PER_PAGE: usize = 30;

fn main() {
    let n: usize = std::env::var("QUIRE_BENCH_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let pages: Vec<PathBuf> = (0..n).map(|i| page(dir.path(), i)).collect();
    println!(
        "OCR throughput: {n} letter pages at 300 DPI, {LINES_PER_PAGE} lines of 11pt text each, eng, {} cores",
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );

    let cli_omp = rate(n, || tesseract_cli(&pages, 1, false));
    println!("tesseract CLI, one at a time (OpenMP on): {cli_omp:6.2} pages/s");
    let cli_seq = rate(n, || tesseract_cli(&pages, 1, true));
    println!("tesseract CLI, one at a time (OMP 1):     {cli_seq:6.2} pages/s");
    let cli_par = rate(n, || tesseract_cli(&pages, 2, true));
    println!("tesseract CLI, two at a time (OMP 1):     {cli_par:6.2} pages/s");
    for workers in [1, 2] {
        let q = rate(n, || quire_serve(dir.path(), &pages, workers));
        println!(
            "quire serve, {workers} worker(s):                 {q:6.2} pages/s  = {:.2}x the CLI one at a time (OpenMP on), {:.2}x (OMP 1), {:.2}x two at a time",
            q / cli_omp,
            q / cli_seq,
            q / cli_par
        );
    }
}

fn rate(pages: usize, f: impl FnOnce() -> Duration) -> f64 {
    pages as f64 / f().as_secs_f64()
}

/// Draws page `i`: a 2550x3300 (US Letter at 300 DPI) PNG of known text.
fn page(dir: &Path, i: usize) -> PathBuf {
    let path = dir.join(format!("page-{i:03}.png"));
    let lines: Vec<String> = (0..LINES_PER_PAGE)
        .map(|l| {
            format!(
                "Page {i} line {l}: the ledger records receipts, invoices and payments in order."
            )
        })
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    draw::text_page(&path, (2550, 3300), (150, 200), 95, &lines);
    path
}

/// Runs `tesseract PAGE stdout` over every page, `parallel` at a time.
fn tesseract_cli(pages: &[PathBuf], parallel: usize, single_thread: bool) -> Duration {
    let t = Instant::now();
    for chunk in pages.chunks(parallel) {
        let children: Vec<_> = chunk
            .iter()
            .map(|p| {
                let mut c = Command::new("tesseract");
                c.arg(p).args(["stdout", "-l", "eng"]);
                if single_thread {
                    c.env("OMP_THREAD_LIMIT", "1");
                }
                c.stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("the tesseract command is installed (apt-get install tesseract-ocr)")
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
    }
    t.elapsed()
}

/// Starts `quire serve --workers W` on a fresh data dir, moves every page
/// into its inbox, and times from the first move to the last page's text.
fn quire_serve(dir: &Path, pages: &[PathBuf], workers: usize) -> Duration {
    let data = dir.join(format!("data-{workers}"));
    let quire = env!("CARGO_BIN_EXE_quire");
    let mut daemon = Command::new(quire)
        .args(["serve", "--workers", &workers.to_string()])
        .env("QUIRE_DATA_DIR", &data)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !data.join("inbox.lock").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "quire serve did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Timed from the first drop: quire's start-up is excluded, its first
    // engine load is not (the CLI pays that load on every page).
    let staged: Vec<PathBuf> = pages
        .iter()
        .map(|p| {
            let s = dir.join(format!(
                "w{workers}-{}",
                p.file_name().unwrap().to_str().unwrap()
            ));
            std::fs::copy(p, &s).unwrap();
            s
        })
        .collect();
    let t = Instant::now();
    for s in &staged {
        std::fs::rename(s, data.join("inbox").join(s.file_name().unwrap())).unwrap();
    }
    loop {
        let out = Command::new(quire)
            .args(["stats", "--json"])
            .env("QUIRE_DATA_DIR", &data)
            .output()
            .unwrap();
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if stats["by_type"]["ocr"]["completed"].as_u64() == Some(pages.len() as u64) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "quire did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = t.elapsed();
    let _ = daemon.kill();
    let _ = daemon.wait();
    took
}
