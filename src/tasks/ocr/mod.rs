//! The OCR processor: turns a document into page text, one page at a time,
//! checkpointing each page (see [`crate::store::Store::save_page`]) so that a
//! restarted task resumes at the first page not yet done.
//!
//! Images go to tesseract; PDF pages use their text layer when it is usable and
//! are otherwise rendered with `pdftoppm` and OCR'd. Bad input fails with a
//! message naming the problem; one bad page fails only that page.

pub mod child;
pub mod embedded;
pub mod engine;
#[cfg(test)]
mod fuzz;
pub mod image;
pub mod pdf;
pub mod reader;
pub mod searchable;
mod upright;

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use child::{Child, Failure};
use reader::PageText;

use crate::config::OcrConfig;
use crate::detect::Kind;
use crate::store::{PageDetail, PageReading, PageStatus, is_poor_reading};
use crate::worker::{Processor, TaskContext, TaskError};

thread_local! {
    /// This worker thread's OCR child, started on first use.
    static CHILD: RefCell<Option<Child>> = const { RefCell::new(None) };
}

/// The OCR processor. It runs in the daemon and drives this worker thread's
/// OCR child (see [`child`]): counts pages, skips those checkpointed, and
/// records each page's text or error as it comes back.
pub struct OcrProcessor {
    config: OcrConfig,
}

/// Runs `f` on this worker thread's OCR child (started with `config` if
/// there is none), and drops the child when it is lost (crashed, killed) or
/// has read enough pages. The OCR task and the PDF task share it.
pub fn with_child<T>(
    config: &OcrConfig,
    f: impl FnOnce(&mut Child) -> Result<T, Failure>,
) -> Result<T, Failure> {
    CHILD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Child::spawn(config).map_err(Failure::Spawn)?);
        }
        let child = slot.as_mut().expect("started above");
        let result = f(child);
        let worn = child.pages_read() >= config.engine_recycle_pages.max(1);
        if worn || result.as_ref().is_err_and(Failure::lost_child) {
            *slot = None;
        }
        result
    })
}

impl OcrProcessor {
    pub fn new(config: OcrConfig) -> OcrProcessor {
        OcrProcessor { config }
    }

    fn with_child<T>(
        &self,
        f: impl FnOnce(&mut Child) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        with_child(&self.config, f)
    }

    fn timeout(&self) -> Duration {
        self.config.page_timeout.0
    }

    /// Page count of the document at `path`, opened in the child.
    fn open(&self, path: &Path, kind: Kind) -> Result<usize, Failure> {
        self.with_child(|c| c.open(path, kind, self.timeout()))
    }

    /// Reads page `n`, (re)opening the document in the child if needed;
    /// gives up (killing the child) as soon as `stop` is set.
    fn page(
        &self,
        path: &Path,
        kind: Kind,
        n: usize,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<PageText, Failure> {
        self.with_child(|c| {
            if !c.has_open(path) {
                c.open(path, kind, self.timeout())?;
            }
            c.page(n, self.timeout(), stop)
        })
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
        let kind = Kind::from_stored(&doc.kind);
        let pages = self.open(&path, kind).map_err(|f| match f {
            Failure::Spawn(e) => TaskError::transient(e),
            f => TaskError::permanent(f.message("opening the file")),
        })?;
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
            // Pages done by an earlier attempt are kept; pages that failed
            // are read again (a timeout or memory limit may have been raised).
            if store
                .page_detail(doc_id, n as i64)
                .map_err(db)?
                .is_some_and(|d| d.status == PageStatus::Done)
            {
                continue;
            }
            let started = std::time::Instant::now();
            let result = match self.page(&path, kind, n, ctx.stop_flag()) {
                Ok(p) => Ok(p),
                Err(Failure::Spawn(e)) => return Err(TaskError::transient(e)),
                // Stopping: the page was cut short, not read; leave no checkpoint.
                Err(f) if f.lost_child() && ctx.should_stop() => {
                    return Err(TaskError::Interrupted);
                }
                Err(f) => Err(f.message(&format!("page {n}"))),
            };
            let detail = match &result {
                Ok(p) => PageDetail {
                    status: PageStatus::Done,
                    source: Some(p.source),
                    chars: p.text.chars().count(),
                    confidence: p.confidence,
                    images: p.images,
                    rendered: p.rendered,
                    turned: p.turned,
                    deskewed: p.deskewed,
                    poor: is_poor_reading(p.confidence, &p.text),
                    attempts: ctx.claim.attempt as u32,
                    error: None,
                },
                Err(e) => PageDetail {
                    status: PageStatus::Failed,
                    attempts: ctx.claim.attempt as u32,
                    error: Some(e.clone()),
                    ..Default::default()
                },
            };
            let reading = result.as_ref().ok().map(|p| PageReading {
                text: &p.text,
                source: p.source,
                confidence: p.confidence,
                layout: p.layout.as_ref(),
            });
            let now = ctx.app.queue.now_ms();
            store
                .save_page(doc_id, n as i64, reading.as_ref(), &detail, now)
                .map_err(db)?;
            // Only a page read is progress: a page that failed again must not
            // keep a task that dies every time alive for ever.
            if reading.is_some() {
                ctx.record_progress()?;
            }
            if let Ok(p) = &result {
                // -v: a line a page.
                log::info!(
                    target: "quire::pages",
                    "document {doc_id} {:?} page {n}/{pages}: {}, {} chars{}, {} ms",
                    doc.name,
                    p.source,
                    detail.chars,
                    p.confidence
                        .map(|c| format!(", confidence {c:.0}"))
                        .unwrap_or_default(),
                    started.elapsed().as_millis()
                );
            }
            if detail.poor {
                log::warn!(
                    "document {doc_id} {:?} page {n}: a poor reading (confidence {:.0}); \
                     the scan may be faint, blurred or not text",
                    doc.name,
                    detail.confidence.unwrap_or(0.0)
                );
            }
            if let Err(e) = result {
                log::warn!("document {doc_id} {:?}: {e}", doc.name);
                failed.push(e);
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
