//! The OCR processor: turns a document into page text, one page at a time,
//! checkpointing each page (see [`crate::store::Store::save_page`]) so that a
//! restarted task resumes at the first page not yet done.
//!
//! Images go to tesseract; PDF pages use their text layer when it is usable and
//! are otherwise rendered with `pdftoppm` and OCR'd. Bad input fails with a
//! message naming the problem; one bad page fails only that page.

pub mod engine;
pub mod image;
pub mod pdf;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::config::{OcrConfig, OcrMode};
use crate::detect::Kind;
use crate::store::{PageDetail, PageSource};
use crate::worker::{Processor, TaskContext, TaskError};

/// Turns off tesseract's OpenMP threading when several workers run: parallel
/// engines with OpenMP threads run slower than serial ones. Must run before
/// the library starts any thread, so `serve` calls it first thing.
pub fn limit_omp_threads(workers: usize) {
    if workers > 1 && std::env::var_os("OMP_THREAD_LIMIT").is_none() {
        // SAFETY: called at start-up, before any other thread exists.
        unsafe { std::env::set_var("OMP_THREAD_LIMIT", "1") };
    }
}

/// The OCR processor.
pub struct OcrProcessor {
    config: OcrConfig,
    languages: String,
}

/// The text of one page, or why it has none.
struct PageText {
    text: String,
    source: PageSource,
    confidence: Option<f64>,
}

impl OcrProcessor {
    pub fn new(config: OcrConfig) -> OcrProcessor {
        let languages = config.languages.join("+");
        OcrProcessor { config, languages }
    }

    /// OCRs an image already decoded into leptonica.
    fn ocr_image(&self, kind: Kind, data: &[u8], index: usize) -> Result<PageText, String> {
        let pix = image::read_page(kind, data, index)?;
        let r = engine::recognize(
            &pix,
            &self.languages,
            self.config.default_dpi,
            self.config.engine_recycle_pages,
        )?;
        Ok(PageText {
            text: r.text,
            source: PageSource::Ocr,
            confidence: Some(r.confidence),
        })
    }

    /// Reads one PDF page: its text layer, or OCR of its rendering.
    fn pdf_page(&self, doc: &pdf::Pdf, path: &Path, n: u32) -> Result<PageText, String> {
        let layer = match self.config.mode {
            OcrMode::Force => None,
            _ => Some(doc.text(n)),
        };
        match (&layer, self.config.mode) {
            (Some(Ok(t)), _) if pdf::usable_text(t) => {
                return Ok(PageText {
                    text: t.clone(),
                    source: PageSource::Text,
                    confidence: None,
                });
            }
            (Some(Ok(t)), OcrMode::TextOnly) => {
                return Ok(PageText {
                    text: t.clone(),
                    source: PageSource::Text,
                    confidence: None,
                });
            }
            (Some(Err(e)), OcrMode::TextOnly) => return Err(e.clone()),
            (Some(Err(e)), _) => log::debug!("page {n}: {e}; reading it with OCR instead"),
            _ => {}
        }
        let dpi = pdf::render_dpi(doc.page_size(n), 300, self.config.max_pixels);
        let png = pdf::render(path, n, dpi, self.config.page_timeout.0)?;
        self.ocr_image(Kind::Png, &png, 0)
    }
}

impl Processor for OcrProcessor {
    fn run(&self, ctx: &TaskContext<'_>) -> Result<(), TaskError> {
        let store = &ctx.app.store;
        let doc_id = ctx.claim.document_id;
        let db = |e: crate::db::DbError| TaskError::transient(format!("database: {e}"));
        let doc = store
            .document(doc_id)
            .map_err(db)?
            .ok_or_else(|| TaskError::permanent("the document was deleted"))?;
        let path = store.file_of(&doc);
        let data = std::fs::read(&path).map_err(|e| {
            TaskError::permanent(format!(
                "cannot read the stored file {}: {e}; restore it from a backup and `quire retry` this task",
                path.display()
            ))
        })?;
        let kind = Kind::from_stored(&doc.kind);

        // Open the document and count its pages.
        enum Source {
            Image(Vec<(u64, u64)>),
            Pdf(Box<pdf::Pdf>),
        }
        let source = match kind {
            Kind::Unsupported("empty") => {
                return Err(TaskError::permanent("the file is empty (0 bytes)"));
            }
            Kind::Unsupported(what) => {
                return Err(TaskError::permanent(format!(
                    "unsupported file type: the content is {what}; quire reads PDF, PNG, JPEG, TIFF, BMP, GIF, WebP and PNM"
                )));
            }
            Kind::Pdf => Source::Pdf(Box::new(
                pdf::Pdf::load(&data).map_err(TaskError::permanent)?,
            )),
            k => Source::Image(image::page_sizes(k, &data).map_err(TaskError::permanent)?),
        };
        let pages = match &source {
            Source::Image(sizes) => sizes.len(),
            Source::Pdf(p) => p.page_count(),
        };
        if pages > self.config.max_pages as usize {
            return Err(TaskError::permanent(format!(
                "the document has {pages} pages, over the limit of {} (ocr.max_pages)",
                self.config.max_pages
            )));
        }
        store
            .begin_ocr(doc_id, ctx.claim.task_id, pages as i64)
            .map_err(db)?;

        let mut failed = vec![];
        for n in 1..=pages {
            if ctx.should_stop() {
                return Err(TaskError::Interrupted);
            }
            if let Some(done) = store.page_detail(doc_id, n as i64).map_err(db)? {
                if done.status == "failed" {
                    failed.push(format!("page {n}: {}", done.error.unwrap_or_default()));
                }
                continue; // checkpointed by an earlier attempt
            }
            let result = catch_unwind(AssertUnwindSafe(|| match &source {
                Source::Image(sizes) => {
                    let (w, h) = sizes[n - 1];
                    if w * h > self.config.max_pixels {
                        return Err(format!(
                            "the page is {w}x{h} pixels, over the limit of {} (ocr.max_pixels)",
                            self.config.max_pixels
                        ));
                    }
                    self.ocr_image(kind, &data, n - 1)
                }
                Source::Pdf(p) => self.pdf_page(p, &path, n as u32),
            }))
            .unwrap_or_else(|_| Err("reading the page crashed the reader".into()));
            let detail = match &result {
                Ok(p) => PageDetail {
                    status: "done".into(),
                    source: Some(p.source),
                    chars: p.text.chars().count(),
                    confidence: p.confidence,
                    images: usize::from(p.source == PageSource::Ocr),
                    attempts: ctx.claim.attempt as u32,
                    error: None,
                },
                Err(e) => PageDetail {
                    status: "failed".into(),
                    attempts: ctx.claim.attempt as u32,
                    error: Some(e.clone()),
                    ..Default::default()
                },
            };
            let text = result
                .as_ref()
                .ok()
                .map(|p| (p.text.as_str(), p.source, p.confidence));
            store
                .save_page(doc_id, n as i64, text, &detail, ctx.app.queue.now_ms())
                .map_err(db)?;
            if let Err(e) = result {
                log::warn!("document {doc_id} {:?}: page {n} failed: {e}", doc.name);
                failed.push(format!("page {n}: {e}"));
            }
        }
        if failed.len() == pages {
            return Err(TaskError::permanent(format!(
                "no page could be read: {}",
                failed.join("; ")
            )));
        }
        Ok(())
    }
}
