//! Indexing and search on a synthetic corpus: D documents of P pages of
//! generated text (Zipf-distributed words from a 20,000-word vocabulary),
//! indexed by the real indexing processor through the real queue, then a few
//! hundred 1-3 word searches through the same path as `quire search` (by
//! document, its default, and by page, `--pages`). Prints indexing pages/s
//! and search latency p50/p99.
//!
//! Run: `cargo bench --bench index` (QUIRE_BENCH_PAGES overrides the 100,000 pages).

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use quire::app::App;
use quire::config::Config;
use quire::queue::{Priority, TaskType};
use quire::store::{Query, SearchFilter};
use quire::tasks::index::IndexProcessor;
use quire::worker::{Processor, TaskContext};

const PAGES_PER_DOC: usize = 100;
const WORDS_PER_PAGE: usize = 250;
const VOCABULARY: usize = 20_000;
const QUERIES: usize = 300;

fn main() {
    let pages: usize = std::env::var("QUIRE_BENCH_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let docs = pages.div_ceil(PAGES_PER_DOC);
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let app = App::open(&config, 4).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let vocab: Vec<String> = (0..VOCABULARY).map(|_| rng.word()).collect();
    let zipf = Zipf::new(VOCABULARY);

    let t = Instant::now();
    fill(&app, docs, &vocab, &zipf, &mut rng);
    println!(
        "corpus: {docs} documents x {PAGES_PER_DOC} pages x {WORDS_PER_PAGE} words, generated and stored in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    // Index every document through the queue, as the daemon would.
    let tasks: Vec<_> = (1..=docs as i64)
        .map(|d| (d, TaskType::Indexing, Priority::Normal))
        .collect();
    app.queue.enqueue_batch(&tasks).unwrap();
    let processor = IndexProcessor::new(config.index.batch_pages);
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    while let Some(claim) = app.queue.claim("bench-w0", 1).unwrap().pop() {
        processor
            .run(&TaskContext::new(&app, &claim, stop.clone()))
            .unwrap();
        app.queue.complete(&claim).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "indexing: {} pages in {secs:.1}s = {:.0} pages/s (batches of {} pages)",
        docs * PAGES_PER_DOC,
        (docs * PAGES_PER_DOC) as f64 / secs,
        config.index.batch_pages
    );

    // Queries of 1-3 words: words any page may hold (drawn uniformly from
    // the vocabulary), then the worst case, words drawn by their frequency in
    // the text (so mostly words found on most pages).
    let modes = [
        ("vocabulary words", false, false),
        ("frequent words", true, false),
        ("vocabulary words, by document", false, true),
        ("frequent words, by document", true, true),
    ];
    for (label, by_frequency, by_document) in modes {
        let mut times = vec![];
        let mut hits = 0;
        for _ in 0..QUERIES {
            let words: Vec<&str> = (0..1 + rng.below(3))
                .map(|_| {
                    let i = if by_frequency {
                        zipf.sample(&mut rng)
                    } else {
                        rng.below(VOCABULARY)
                    };
                    vocab[i].as_str()
                })
                .collect();
            let query = Query::parse(&words.join(" ")).unwrap();
            let filter = SearchFilter::default();
            let t = Instant::now();
            hits += if by_document {
                // What `quire search` runs by default.
                let found = app.store.search_documents(&query, &filter, 20).unwrap();
                found.hits.len()
            } else {
                app.store.search(&query, &filter, 20).unwrap().hits.len()
            };
            times.push(t.elapsed());
        }
        times.sort();
        let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "search, {label}: {QUERIES} queries of 1-3 words, limit 20 ({hits} hits): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(pct(1.0))
        );
    }
}

/// Stores `docs` documents with their OCR'd pages (as the OCR task would
/// leave them), in one transaction: setup, not measured.
fn fill(app: &App, docs: usize, vocab: &[String], zipf: &Zipf, rng: &mut Rng) {
    let quire::db::Engine::Sqlite(db) = app.db.engine();
    let mut conn = db.conn().unwrap();
    let tx = conn.transaction().unwrap();
    for d in 0..docs {
        tx.execute(
            "INSERT INTO documents (original_name, stored_path, size, sha256, kind, status, created_at, updated_at) \
             VALUES (?1, ?1, 1, ?1, 'pdf', 'indexing', ?2, ?2)",
            rusqlite::params![format!("doc{d}.pdf"), d as i64],
        )
        .unwrap();
        let id = tx.last_insert_rowid();
        for p in 1..=PAGES_PER_DOC {
            let text: Vec<&str> = (0..WORDS_PER_PAGE)
                .map(|_| vocab[zipf.sample(rng)].as_str())
                .collect();
            tx.execute(
                "INSERT INTO pages (document_id, page_number, text, source) VALUES (?1, ?2, ?3, 'ocr')",
                rusqlite::params![id, p as i64, text.join(" ")],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// xorshift64*: a small deterministic generator, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A pronounceable made-up word of 2-4 syllables.
    fn word(&mut self) -> String {
        const ONSETS: &[&str] = &[
            "b", "c", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t", "v", "br", "st", "tr",
        ];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou"];
        (0..2 + self.below(3))
            .map(|_| {
                format!(
                    "{}{}",
                    ONSETS[self.below(ONSETS.len())],
                    VOWELS[self.below(VOWELS.len())]
                )
            })
            .collect()
    }
}

/// Zipf's law over ranks 0..n (weight 1/(rank+1)), sampled by binary search
/// of the cumulative weights.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut acc = 0.0;
        Zipf(
            (1..=n)
                .map(|r| {
                    acc += 1.0 / r as f64;
                    acc
                })
                .collect(),
        )
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * self.0[self.0.len() - 1];
        self.0.partition_point(|&c| c < x).min(self.0.len() - 1)
    }
}
