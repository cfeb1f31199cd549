//! Indexing and search on a synthetic corpus: D documents of P pages of
//! generated text (Zipf-distributed words from a 20,000-word vocabulary),
//! indexed by the real indexing processor through the real queue, then a few
//! hundred 1-3 word searches through the same path as `quire search` (by
//! document, its default, and by page, `--pages`). Prints indexing pages/s
//! and search latency p50/p99; then the same corpus and queries on
//! PostgreSQL (a fresh database on the test server), beside SQLite's.
//!
//! Run: `cargo bench --bench index` (QUIRE_BENCH_PAGES overrides the 100,000 pages;
//! QUIRE_BENCH_KEEP=1 keeps the PostgreSQL database and prints its URL, for
//! EXPLAIN ANALYZE; drop it afterwards).

use std::time::{Duration, Instant};

use quire::app::App;
use quire::config::Config;
use quire::db::postgres::testing::TestDatabase;
use quire::store::{Query, SearchFilter};

#[path = "common/synth.rs"]
mod synth;

use synth::{PAGES_PER_DOC, Rng, VOCABULARY, WORDS_PER_PAGE, Zipf};

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
    println!("SQLite (FTS5):");
    run(&app, docs, synth::fill);
    // The same corpus and the same queries on PostgreSQL, unless
    // QUIRE_BENCH_POSTGRES=0 or no test server answers.
    if std::env::var("QUIRE_BENCH_POSTGRES").is_ok_and(|v| v == "0") {
        return;
    }
    let database = match std::panic::catch_unwind(TestDatabase::new) {
        Ok(db) => db,
        Err(_) => {
            println!("PostgreSQL: skipped (no test server; see QUIRE_TEST_POSTGRES)");
            return;
        }
    };
    let mut config = config.clone();
    config.data_dir = dir.path().join("pg");
    config.database.url = database.url();
    let app = App::open(&config, 4).unwrap();
    println!("PostgreSQL (tsvector, GIN, ts_rank_cd):");
    run(&app, docs, synth::fill_postgres);
    drop(app);
    if std::env::var("QUIRE_BENCH_KEEP").is_ok() {
        println!("kept database {}", database.url());
        std::mem::forget(database);
    }
}

/// Fills `app` with the synthetic corpus (`fill`), indexes it and runs the
/// searches; the generator starts from the same seed for each engine, so
/// both get the same pages and the same queries.
fn run(app: &App, docs: usize, fill: fn(&App, usize, &[String], &Zipf, &mut Rng)) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let vocab: Vec<String> = (0..VOCABULARY).map(|_| rng.word()).collect();
    let zipf = Zipf::new(VOCABULARY);

    let t = Instant::now();
    fill(app, docs, &vocab, &zipf, &mut rng);
    println!(
        "corpus: {docs} documents x {PAGES_PER_DOC} pages x {WORDS_PER_PAGE} words, generated and stored in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    synth::index_all(app, docs);
    let secs = t.elapsed().as_secs_f64();
    // A running server's autovacuum analyzes a table this size within a
    // minute of its filling; the planner needs those statistics to tell
    // frequent words from rare ones. QUIRE_BENCH_ANALYZE=0 measures without.
    if let quire::db::Engine::Postgres(db) = app.db.engine()
        && !std::env::var("QUIRE_BENCH_ANALYZE").is_ok_and(|v| v == "0")
    {
        db.conn().unwrap().batch_execute("ANALYZE").unwrap();
    }
    println!(
        "indexing: {} pages in {secs:.1}s = {:.0} pages/s (batches of {} pages)",
        docs * PAGES_PER_DOC,
        (docs * PAGES_PER_DOC) as f64 / secs,
        app.config.index.batch_pages
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
