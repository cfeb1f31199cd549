//! A synthetic corpus for the search benchmarks: made-up words drawn by
//! Zipf's law (as word frequencies in real text fall off), so that some
//! words are on nearly every page and most on few, stored as OCR'd pages.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use quire::app::App;
use quire::queue::{Priority, TaskType};
use quire::tasks::index::IndexProcessor;
use quire::worker::{Processor, TaskContext};

pub const PAGES_PER_DOC: usize = 100;
pub const WORDS_PER_PAGE: usize = 250;
pub const VOCABULARY: usize = 20_000;

/// Stores `docs` documents with their OCR'd pages (as the OCR task would
/// leave them), in one transaction: setup, not measured.
pub fn fill(app: &App, docs: usize, vocab: &[String], zipf: &Zipf, rng: &mut Rng) {
    let quire::db::Engine::Sqlite(db) = app.db.engine() else {
        panic!("the synthetic index is written to SQLite only")
    };
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

/// [`fill`] on PostgreSQL: the same documents and pages (from the same
/// `rng` state), a document's pages in one statement.
pub fn fill_postgres(app: &App, docs: usize, vocab: &[String], zipf: &Zipf, rng: &mut Rng) {
    let quire::db::Engine::Postgres(db) = app.db.engine() else {
        panic!("fill_postgres writes to PostgreSQL")
    };
    db.write(|tx| -> Result<(), quire::db::postgres::PgError> {
        for d in 0..docs {
            let name = format!("doc{d}.pdf");
            let id: i64 = tx
                .query_one(
                    "INSERT INTO documents (original_name, stored_path, size, sha256, kind, \
                     status, created_at, updated_at) \
                     VALUES ($1, $1, 1, $1, 'pdf', 'indexing', $2, $2) RETURNING id",
                    &[&name, &(d as i64)],
                )?
                .get(0);
            let texts: Vec<String> = (0..PAGES_PER_DOC)
                .map(|_| {
                    let words: Vec<&str> = (0..WORDS_PER_PAGE)
                        .map(|_| vocab[zipf.sample(rng)].as_str())
                        .collect();
                    words.join(" ")
                })
                .collect();
            tx.execute(
                "INSERT INTO pages (document_id, page_number, text, source) \
                 SELECT $1, n, t, 'ocr' FROM unnest($2::text[]) WITH ORDINALITY AS u(t, n)",
                &[&id, &texts],
            )?;
        }
        Ok(())
    })
    .unwrap();
}

/// Indexes documents 1..=docs through the queue and the real indexing
/// processor, as the daemon would (one worker).
pub fn index_all(app: &App, docs: usize) {
    let tasks: Vec<_> = (1..=docs as i64)
        .map(|d| (d, TaskType::Indexing, Priority::Normal))
        .collect();
    app.queue.enqueue_batch(&tasks).unwrap();
    let processor = IndexProcessor::new(app.config.index.batch_pages);
    let stop = Arc::new(AtomicBool::new(false));
    while let Some(claim) = app.queue.claim("bench-w0", 1).unwrap().pop() {
        processor
            .run(&TaskContext::new(app, &claim, stop.clone()))
            .unwrap();
        app.queue.complete(&claim).unwrap();
    }
}

/// xorshift64*: a small deterministic generator, so runs are comparable.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A pronounceable made-up word of 2-4 syllables.
    pub fn word(&mut self) -> String {
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
pub struct Zipf(Vec<f64>);

impl Zipf {
    pub fn new(n: usize) -> Zipf {
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

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * self.0[self.0.len() - 1];
        self.0.partition_point(|&c| c < x).min(self.0.len() - 1)
    }
}
