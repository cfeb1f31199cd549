//! Imperfect scans, read by quire and by OCRmyPDF in the same run: the scan
//! set of `tests/util/variants.rs` (rotated, skewed, low resolution, JPEG
//! artefacts, noise, low contrast, small print, two columns, a phone photo, a
//! scanned PDF) through `quire serve --workers 2` with searchable PDFs on,
//! and through `ocrmypdf --rotate-pages --deskew --skip-text -j 2` (one file
//! after another, as its watcher does; plain PDF output, no optimisation, its
//! `--sidecar` text). Prints each file's character error rate (CER) for both,
//! whether its needle word is found, and the wall time of each.
//!
//! Needs ImageMagick, poppler-utils and ocrmypdf (apt-get install ocrmypdf).
//! Run: `cargo bench --bench scans`.

#[path = "../tests/util/draw.rs"]
mod draw;
#[path = "../tests/util/measure.rs"]
mod measure;
#[path = "../tests/util/pdf.rs"]
mod pdf;
#[path = "../tests/util/variants.rs"]
mod variants;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use measure::cer;
use variants::Sample;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("set");
    std::fs::create_dir_all(&src).unwrap();
    let set = variants::scan_set(&src);
    println!(
        "Scan set: {} files, {} cores",
        set.len(),
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    let (quire_time, quire_text, quire_found) = quire(dir.path(), &set);
    let has_ocrmypdf = Command::new("ocrmypdf").arg("--version").output().is_ok();
    let (ocrmypdf_time, theirs) = if has_ocrmypdf {
        ocrmypdf(dir.path(), &set)
    } else {
        println!("ocrmypdf is not installed (apt-get install ocrmypdf): quire alone");
        (Duration::ZERO, vec![None; set.len()])
    };
    println!();
    println!(
        "{:<16} {:>10} {:>10}  needle",
        "variant", "quire CER", "OCRmyPDF"
    );
    let (mut ours, mut others) = (vec![], vec![]);
    for (i, s) in set.iter().enumerate() {
        let q = cer(&s.truth, &quire_text[i]);
        let o = theirs[i].as_ref().map(|t| cer(&s.truth, t));
        ours.push(q);
        if let Some(o) = o {
            others.push(o);
        }
        let o = o.map_or("-".into(), |o| format!("{o:.3}"));
        let found = if quire_found[i] { "found" } else { "MISSED" };
        let flag = match theirs[i].as_ref().map(|t| cer(&s.truth, t)) {
            Some(o) if q > o + 0.005 => "  <- worse than OCRmyPDF",
            _ => "",
        };
        println!("{:<16} {q:>10.3} {o:>10}  {found}{flag}", s.variant);
    }
    println!();
    println!(
        "quire:    CER median {:.3}, worst {:.3}; needles found {} of {}; {:.1} s",
        median(&ours),
        worst(&ours),
        quire_found.iter().filter(|f| **f).count(),
        set.len(),
        quire_time.as_secs_f64()
    );
    if has_ocrmypdf {
        println!(
            "OCRmyPDF: CER median {:.3}, worst {:.3}; {:.1} s",
            median(&others),
            worst(&others),
            ocrmypdf_time.as_secs_f64()
        );
        println!(
            "quire's wall time = {:.2}x OCRmyPDF's (aim: at most 0.8x)",
            quire_time.as_secs_f64() / ocrmypdf_time.as_secs_f64()
        );
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn worst(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// A `quire` command on `data`.
fn quire_cmd(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quire"));
    c.env("QUIRE_DATA_DIR", data)
        .env("QUIRE_WATCH_STABILITY_WINDOW", "100ms")
        .env_remove("RUST_LOG");
    c
}

/// Drops the set into a fresh daemon's inbox; returns the time until every
/// document is indexed and has its searchable PDF, each document's text in
/// set order, and whether a search for its needle finds it.
fn quire(dir: &Path, set: &[Sample]) -> (Duration, Vec<String>, Vec<bool>) {
    let data = dir.join("quire");
    let inbox = data.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let mut daemon = quire_cmd(&data)
        .args(["serve", "--workers", "2", "--http", ""])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    for s in set {
        std::fs::copy(&s.path, inbox.join(s.path.file_name().unwrap())).unwrap();
    }
    loop {
        let out = quire_cmd(&data).args(["stats", "--json"]).output().unwrap();
        let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let pdfs = &stats["by_type"]["pdf"];
        let done = pdfs["completed"].as_u64().unwrap_or(0) + pdfs["failed"].as_u64().unwrap_or(0);
        if done == set.len() as u64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    let _ = daemon.kill();
    let _ = daemon.wait();
    let list = quire_cmd(&data).args(["list", "--json"]).output().unwrap();
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    let mut texts = vec![];
    let mut found = vec![];
    for s in set {
        let name = s.path.file_name().unwrap().to_string_lossy();
        let id = docs
            .iter()
            .find(|d| d["name"] == *name)
            .and_then(|d| d["id"].as_i64())
            .unwrap();
        let text = quire_cmd(&data)
            .args(["text", &id.to_string()])
            .output()
            .unwrap();
        texts.push(String::from_utf8_lossy(&text.stdout).into_owned());
        let hits = quire_cmd(&data)
            .args(["search", s.needle, "--json"])
            .output()
            .unwrap();
        let hits: serde_json::Value = serde_json::from_slice(&hits.stdout).unwrap_or_default();
        let hit = hits
            .as_array()
            .is_some_and(|h| h.iter().any(|h| h["id"] == id));
        found.push(hit);
    }
    (took, texts, found)
}

/// Runs OCRmyPDF on each file in turn; returns the total time and each file's text.
fn ocrmypdf(dir: &Path, set: &[Sample]) -> (Duration, Vec<Option<String>>) {
    let out = dir.join("ocrmypdf");
    std::fs::create_dir_all(&out).unwrap();
    let started = Instant::now();
    let texts = set
        .iter()
        .map(|s| {
            let stem = s.path.file_stem().unwrap().to_string_lossy().into_owned();
            let sidecar: PathBuf = out.join(format!("{stem}.txt"));
            let mut c = Command::new("ocrmypdf");
            c.args(["--rotate-pages", "--deskew", "--skip-text", "-j", "2", "-q"])
                .args(["--output-type", "pdf", "--optimize", "0", "--sidecar"])
                .arg(&sidecar);
            match s.variant.as_str() {
                // No resolution recorded; quire assumes ocr.default_dpi.
                "phone-photo" => {
                    c.args(["--image-dpi", "300"]);
                }
                // OCRmyPDF refuses 75 DPI as "not credible" unless told.
                "small-print-75dpi" => {
                    c.args(["--image-dpi", "75"]);
                }
                _ => {}
            }
            let ok = c
                .arg(&s.path)
                .arg(out.join(format!("{stem}.pdf")))
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                println!("ocrmypdf failed on {}", s.path.display());
            }
            std::fs::read_to_string(&sidecar).ok()
        })
        .collect();
    (started.elapsed(), texts)
}
