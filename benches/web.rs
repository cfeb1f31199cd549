//! The web API under load, on the real binary.
//!
//! 1. `/api/search` at 100,000 pages (the synthetic corpus of the index
//!    bench) with 8 clients at once: p50 and p99 per request, beside the
//!    same queries run in-process one at a time (`Store::search_documents`,
//!    what `quire search` runs) as the baseline.
//! 2. OCR throughput of `serve --workers 2`: the same 24 scanned pages,
//!    once with nobody on the web page and once with 8 clients requesting
//!    the home page, searches, the document list and the metrics as fast as
//!    they are answered. Aim: within 5%.
//!
//! The client threads run at nice 19: they stand for browsers on other
//! machines, which here share the daemon's cores.
//!
//! Run: `cargo bench --bench web` (QUIRE_BENCH_PAGES overrides the 100,000
//! pages, QUIRE_BENCH_REQUESTS the 200 requests per client).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use quire::app::App;
use quire::config::Config;
use quire::store::{Query, SearchFilter};

#[path = "common/daemon.rs"]
mod daemon;
#[path = "../tests/util/draw.rs"]
mod draw;
#[path = "common/synth.rs"]
mod synth;

use daemon::Daemon;
use synth::{PAGES_PER_DOC, Rng, VOCABULARY, Zipf};

const CLIENTS: usize = 8;
/// Scanned pages OCR'd with and without clients on the web page: enough
/// for about ten seconds of OCR, so that noise stays small beside it.
const SCANS: usize = 24;

/// Runs the calling client thread at the lowest priority: the clients of
/// a web page are other machines' browsers, and here they share the
/// daemon's two cores; niced, they take only what the daemon leaves.
fn as_remote_client() {
    // SAFETY: setpriority on this thread's own id.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
    }
}

fn main() {
    let pages: usize = env_or("QUIRE_BENCH_PAGES", 100_000);
    let requests: usize = env_or("QUIRE_BENCH_REQUESTS", 200);
    let dir = tempfile::tempdir().unwrap();
    search_under_load(dir.path(), pages, requests);
    ocr_under_load(dir.path());
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn search_under_load(dir: &Path, pages: usize, requests: usize) {
    let data = dir.join("search");
    let docs = pages.div_ceil(PAGES_PER_DOC);
    let config = Config {
        data_dir: data.clone(),
        ..Config::default()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let vocab: Vec<String> = (0..VOCABULARY).map(|_| rng.word()).collect();
    let zipf = Zipf::new(VOCABULARY);
    {
        let app = App::open(&config, 4).unwrap();
        let t = Instant::now();
        synth::fill(&app, docs, &vocab, &zipf, &mut rng);
        synth::index_all(&app, docs);
        println!(
            "corpus: {docs} documents x {PAGES_PER_DOC} pages, stored and indexed in {:.1}s",
            t.elapsed().as_secs_f64()
        );
    }
    // 1-3 words drawn uniformly from the vocabulary, as in the index bench.
    let queries: Vec<String> = (0..CLIENTS * requests)
        .map(|_| {
            let words: Vec<&str> = (0..1 + rng.below(3))
                .map(|_| vocab[rng.below(VOCABULARY)].as_str())
                .collect();
            words.join(" ")
        })
        .collect();

    // Baseline: the same queries in-process, one at a time.
    let app = App::open(&config, 4).unwrap();
    let mut base = vec![];
    for q in &queries {
        let query = Query::parse(q).unwrap();
        let t = Instant::now();
        app.store
            .search_documents(&query, &SearchFilter::default(), 20)
            .unwrap();
        base.push(t.elapsed());
    }
    drop(app);

    let daemon = Daemon::start(&data, 0, true);
    let web = daemon.web.clone().unwrap();
    let (b50, b99) = percentiles(&mut base);
    println!(
        "baseline, the queries in-process one at a time (Store::search_documents): \
         p50 {b50:.2} ms, p99 {b99:.2} ms"
    );
    // One client alone (what a request costs), then all at once.
    for clients in [1, CLIENTS] {
        let queries = &queries[..clients * requests];
        let t = Instant::now();
        let mut times = get_all(&web, queries, requests);
        let wall = t.elapsed().as_secs_f64();
        let (p50, p99) = percentiles(&mut times);
        println!(
            "/api/search at {pages} pages, {clients} client(s) x {requests} requests: \
             p50 {p50:.2} ms, p99 {p99:.2} ms, {:.0} requests/s; web / in-process: p50 {:.2}x, \
             p99 {:.2}x{}",
            queries.len() as f64 / wall,
            p50 / b50,
            p99 / b99,
            if clients == CLIENTS {
                " (aim: p50 under 10 ms)"
            } else {
                ""
            }
        );
    }
    drop(daemon);
}

/// Searches `queries` through `/api/search`, `per_client` per client
/// thread, all clients at once; each request's time.
fn get_all(web: &str, queries: &[String], per_client: usize) -> Vec<Duration> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(per_client)
            .map(|chunk| {
                let agent = agent.clone();
                s.spawn(move || {
                    as_remote_client();
                    chunk
                        .iter()
                        .map(|q| {
                            let url = format!("http://{web}/api/search?q={}", encode(q));
                            let t = Instant::now();
                            let mut r = agent.get(&url).call().unwrap();
                            assert_eq!(r.status(), 200);
                            r.body_mut().read_to_vec().unwrap();
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// p50 and p99 in milliseconds.
fn percentiles(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let at = |p: f64| times[((times.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ocr_under_load(dir: &Path) {
    let staging = dir.join("scans");
    std::fs::create_dir_all(&staging).unwrap();
    for i in 0..SCANS {
        let lines: Vec<String> = (0..12)
            .map(|l| format!("page {i} line {l}: the quick brown fox jumps over the lazy dog"))
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        draw::text_page(
            &staging.join(format!("scan-{i}.png")),
            (2550, 1800),
            (150, 200),
            100,
            &lines,
        );
    }
    let quiet = ocr_run(dir, &staging);
    let (busy, served) = ocr_run_loaded(dir, &staging);
    println!(
        "OCR of {SCANS} scanned pages, serve --workers 2: {quiet:.2} s with nobody on the web page, \
         {busy:.2} s with {CLIENTS} clients on it ({served} requests answered meanwhile) = {:.3}x \
         (aim: within 1.05x)",
        busy / quiet
    );
}

/// Seconds to OCR the staged scans with the web page on but unused.
fn ocr_run(dir: &Path, staging: &Path) -> f64 {
    let daemon = Daemon::start(&dir.join("quiet"), 2, true);
    let t = drop_and_wait(&daemon, staging);
    drop(daemon);
    t
}

/// [`ocr_run`] with [`CLIENTS`] clients hammering the web page throughout;
/// returns the seconds and the requests answered.
fn ocr_run_loaded(dir: &Path, staging: &Path) -> (f64, usize) {
    let daemon = Daemon::start(&dir.join("busy"), 2, true);
    let web = daemon.web.clone().unwrap();
    let stop = AtomicBool::new(false);
    let served = AtomicUsize::new(0);
    let secs = std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (web, stop, served) = (&web, &stop, &served);
            s.spawn(move || {
                as_remote_client();
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                let paths = [
                    "/",
                    "/api/search?q=quick+fox",
                    "/api/documents?limit=25",
                    "/metrics",
                ];
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let url = format!("http://{web}{}", paths[i % paths.len()]);
                    if let Ok(mut r) = agent.get(&url).call() {
                        let _ = r.body_mut().read_to_vec();
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            });
        }
        let secs = drop_and_wait(&daemon, staging);
        stop.store(true, Ordering::Relaxed);
        secs
    });
    drop(daemon);
    (secs, served.into_inner())
}

/// Copies the staged scans into the inbox at once; seconds until every one
/// is indexed.
fn drop_and_wait(daemon: &Daemon, staging: &Path) -> f64 {
    let inbox = daemon.data.join("inbox");
    let files: Vec<_> = std::fs::read_dir(staging)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let t = Instant::now();
    for f in &files {
        let tmp = daemon.data.join(f.file_name().unwrap());
        std::fs::copy(f, &tmp).unwrap();
        std::fs::rename(&tmp, inbox.join(f.file_name().unwrap())).unwrap();
    }
    let config = Config {
        data_dir: daemon.data.clone(),
        ..Config::default()
    };
    let app = App::open_existing(&config).unwrap();
    loop {
        let stats = app.queue.stats().unwrap();
        if stats.documents["indexed"] as usize == files.len() {
            return t.elapsed().as_secs_f64();
        }
        assert!(t.elapsed() < Duration::from_secs(600), "OCR did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
}
