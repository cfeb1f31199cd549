//! OCR throughput, in two runs on the same pages:
//! - pages per second of `quire serve` (the real binary, its engine reused
//!   across pages) with 1 and 2 workers, each page its own image file, side
//!   by side with the `tesseract` command-line tool on the same images, run
//!   one after the other and two at a time;
//! - one big document: the same pages as one scanned PDF (JPEG at 300 DPI)
//!   through `serve` with 1 and 2 workers (until searchable, and until its
//!   searchable PDF is written), and through `ocrmypdf -j 1` and `-j 2
//!   --skip-text` (plain PDF output, no optimisation) on the same file;
//! - a burst: 24 mixed documents (page images, scanned PDFs, text-layer
//!   PDFs) dropped at once into `serve --workers 2`: when each became
//!   searchable, the median against the last.
//!
//! Prints each figure and quire's ratio to its baselines.
//!
//! Needs ImageMagick (to draw the pages), the `tesseract` command and
//! `ocrmypdf` (apt-get install tesseract-ocr ocrmypdf; without ocrmypdf its
//! rows are left out). Run: `cargo bench --bench ocr` (QUIRE_BENCH_PAGES
//! overrides the 12 pages).

#[path = "common/daemon.rs"]
mod daemon;
#[path = "../tests/util/draw.rs"]
mod draw;
#[path = "../tests/util/pdf.rs"]
mod pdf;

use daemon::Daemon;

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
    println!();
    one_document(dir.path(), &pages);
    println!();
    burst(dir.path());
}

/// 24 documents of three kinds dropped at once; times each one from the
/// drop until it is indexed (searchable).
fn burst(dir: &Path) {
    const DOCS: usize = 24;
    let staging = dir.join("burst");
    std::fs::create_dir_all(&staging).unwrap();
    for d in 0..DOCS {
        let lines: Vec<String> = (0..10)
            .map(|l| format!("Burst document {d} line {l}: the ledger records receipts."))
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let png = staging.join(format!("burst-{d:02}.png"));
        draw::text_page(&png, (2550, 1400), (150, 200), 95, &lines);
        match d % 3 {
            0 => {}
            1 => {
                let scans = [pdf::PdfPage::Scan(jpeg_scan(&png, (2550, 1400)))];
                pdf::write_pdf(&png.with_extension("pdf"), &scans);
                std::fs::remove_file(&png).unwrap();
            }
            _ => {
                let pages: Vec<String> = (0..5)
                    .map(|p| format!("{} page {p}", lines.join(" ")))
                    .collect();
                let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
                pdf::text_pdf(&png.with_extension("pdf"), &pages);
                std::fs::remove_file(&png).unwrap();
            }
        }
    }
    let daemon = Daemon::start(&dir.join("burst-data"), 2, false);
    let data = daemon.data.clone();
    let t = Instant::now();
    for e in std::fs::read_dir(&staging).unwrap() {
        let p = e.unwrap().path();
        std::fs::rename(&p, data.join("inbox").join(p.file_name().unwrap())).unwrap();
    }
    let mut searchable: std::collections::HashMap<i64, Duration> = Default::default();
    wait_for(t, || {
        let out = Command::new(env!("CARGO_BIN_EXE_quire"))
            .args(["list", "--status", "indexed", "--json"])
            .env("QUIRE_DATA_DIR", &data)
            .output()
            .unwrap();
        let now = t.elapsed();
        let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        for d in docs.as_array().into_iter().flatten() {
            searchable.entry(d["id"].as_i64().unwrap()).or_insert(now);
        }
        searchable.len() == DOCS
    });
    drop(daemon);
    let mut times: Vec<f64> = searchable.values().map(Duration::as_secs_f64).collect();
    times.sort_by(f64::total_cmp);
    let (median, last) = (times[DOCS / 2 - 1], times[DOCS - 1]);
    println!(
        "Burst: {DOCS} documents (8 page images, 8 scanned PDFs, 8 five-page text PDFs) at once, serve --workers 2"
    );
    println!(
        "searchable after: first {:.2} s, median {median:.2} s, last {last:.2} s; median / last = {:.2}x (aim: at most 0.6x)",
        times[0],
        median / last
    );
}

/// The pages as one scanned PDF, through `serve` with 1 and 2 workers and
/// through ocrmypdf with 1 and 2 jobs.
fn one_document(dir: &Path, pages: &[PathBuf]) {
    let n = pages.len();
    let file = dir.join("long-scan.pdf");
    let scans: Vec<pdf::PdfPage> = pages
        .iter()
        .map(|p| pdf::PdfPage::Scan(jpeg_scan(p, (2550, 3300))))
        .collect();
    pdf::write_pdf(&file, &scans);
    println!("One big document: the same {n} pages as one scanned PDF (JPEG, 300 DPI)");
    let mut quire = vec![];
    for workers in [1, 2] {
        let (searchable, written) = quire_one_document(dir, &file, workers);
        println!(
            "quire serve, {workers} worker(s): searchable after {:6.2} s, searchable PDF after {:6.2} s",
            searchable.as_secs_f64(),
            written.as_secs_f64()
        );
        quire.push(written);
    }
    println!(
        "quire, 2 workers / 1 worker: {:.2}x (aim: at most 0.6x)",
        quire[1].as_secs_f64() / quire[0].as_secs_f64()
    );
    if Command::new("ocrmypdf").arg("--version").output().is_err() {
        println!("ocrmypdf is not installed (apt-get install ocrmypdf): quire alone");
        return;
    }
    for (jobs, ours) in [(1, quire[0]), (2, quire[1])] {
        let theirs = ocrmypdf(&file, &dir.join(format!("ocrmypdf-{jobs}.pdf")), jobs);
        println!(
            "ocrmypdf -j {jobs} --skip-text:     searchable PDF after {:6.2} s; quire with {jobs} worker(s) = {:.2}x its time",
            theirs.as_secs_f64(),
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
}

/// A page image of `size` pixels as a grey JPEG scan for a PDF.
fn jpeg_scan(png: &Path, (width, height): (u32, u32)) -> pdf::Scan {
    let jpeg = png.with_extension("jpg");
    let ok = Command::new("convert")
        .arg(png)
        .args(["-colorspace", "Gray", "-quality", "92"])
        .arg(&jpeg)
        .status()
        .expect("ImageMagick's convert is installed");
    assert!(ok.success());
    pdf::Scan {
        width,
        height,
        filter: "/DCTDecode",
        data: std::fs::read(&jpeg).unwrap(),
    }
}

/// Runs `ocrmypdf -j JOBS --skip-text` from `input` to `output`.
fn ocrmypdf(input: &Path, output: &Path, jobs: usize) -> Duration {
    let t = Instant::now();
    let ok = Command::new("ocrmypdf")
        .args([
            "-j",
            &jobs.to_string(),
            "--skip-text",
            "--output-type",
            "pdf",
        ])
        .args(["--optimize", "0", "-l", "eng", "-q"])
        .arg(input)
        .arg(output)
        .status()
        .unwrap();
    assert!(ok.success(), "ocrmypdf failed on {}", input.display());
    t.elapsed()
}

/// `quire stats --json` of the data dir.
fn stats(data: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_quire"))
        .args(["stats", "--json"])
        .env("QUIRE_DATA_DIR", data)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

/// Completed tasks of `task_type` in `stats`.
fn completed(stats: &serde_json::Value, task_type: &str) -> u64 {
    stats["by_type"][task_type]["completed"]
        .as_u64()
        .unwrap_or(0)
}

/// Moves `file` into a fresh `serve --workers W`'s inbox; times until it is
/// searchable (indexed) and until its searchable PDF is written.
fn quire_one_document(dir: &Path, file: &Path, workers: usize) -> (Duration, Duration) {
    let daemon = Daemon::start(&dir.join(format!("one-{workers}")), workers, false);
    let data = daemon.data.clone();
    let staged = dir.join(format!("one-{workers}.pdf"));
    std::fs::copy(file, &staged).unwrap();
    let t = Instant::now();
    std::fs::rename(&staged, data.join("inbox/long-scan.pdf")).unwrap();
    let mut searchable = None;
    wait_for(t, || {
        let s = stats(&data);
        if searchable.is_none() && completed(&s, "indexing") == 1 {
            searchable = Some(t.elapsed());
        }
        completed(&s, "pdf") == 1
    });
    let written = t.elapsed();
    drop(daemon);
    (searchable.unwrap_or(written), written)
}

/// Polls `done` every 50 ms (from `t`, the drop) until it says so.
fn wait_for(t: Instant, mut done: impl FnMut() -> bool) {
    while !done() {
        assert!(
            t.elapsed() < Duration::from_secs(1800),
            "quire did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
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
    let daemon = Daemon::start(&dir.join(format!("data-{workers}")), workers, false);
    let data = daemon.data.clone();
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
    wait_for(t, || completed(&stats(&data), "ocr") == pages.len() as u64);
    let took = t.elapsed();
    drop(daemon);
    took
}
