//! The OCR processor: turns a document into page text, one page at a time,
//! checkpointing each page (see [`crate::store::Store::save_page`]) so that a
//! restarted task resumes at the first page not yet done. The pages of one
//! document are read by every idle worker of the daemon at once, each in its
//! own OCR child.
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
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use child::{Child, Failure};

use crate::config::OcrConfig;
use crate::detect::Kind;
use crate::store::{PageDetail, PageReading, PageStatus, is_poor_reading};
use crate::worker::{Attempt, Divisible, Processor, TaskContext, TaskError};

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

    /// Page count of the document at `path`, opened in the child.
    fn open(&self, path: &Path, kind: Kind) -> Result<usize, Failure> {
        with_child(&self.config, |c| {
            c.open(path, kind, self.config.page_timeout.0)
        })
    }
}

impl Processor for OcrProcessor {
    fn run(&self, ctx: &TaskContext<'_>) -> Result<(), TaskError> {
        let store = &ctx.app.store;
        let doc_id = ctx.claim.document_id;
        let doc = store
            .document(doc_id)
            .map_err(TaskError::database)?
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
        let held = store
            .begin_ocr(ctx.claim, pages as i64)
            .map_err(TaskError::database)?;
        if !held {
            // Released and taken over, or cancelled: the new owner's
            // checkpoints are not this attempt's to reset.
            return Err(TaskError::Interrupted);
        }
        // Pages done by an earlier attempt are kept; pages that failed are
        // read again (a timeout or memory limit may have been raised), after
        // those not tried yet: a task that gives way every time slice must
        // not spend each turn on the same slow, failing page.
        let (mut todo, mut failed_before) = (VecDeque::new(), vec![]);
        for n in 1..=pages {
            match store
                .page_detail(doc_id, n as i64)
                .map_err(TaskError::database)?
            {
                Some(d) if d.status == PageStatus::Done => {}
                Some(_) => failed_before.push(n),
                None => todo.push_back(n),
            }
        }
        todo.extend(failed_before);
        let reading = Arc::new(Reading {
            attempt: ctx.attempt(),
            config: self.config.clone(),
            name: doc.name,
            path,
            kind,
            pages,
            state: Mutex::new(ReadingState {
                todo,
                ..Default::default()
            }),
            returned: Condvar::new(),
        });
        // Idle workers read pages too; this worker reads until none are left
        // to take (or it should give way to a waiting document), then waits
        // for the pages its helpers are reading.
        let offered = ctx.offer(reading.clone());
        let mut paused = false;
        while reading.help(&ctx.claim.worker) {
            // With helpers at work, one of them takes the waiting task when
            // its page is done; alone, this worker gives way itself.
            if !reading.helped() && ctx.should_give_way() {
                paused = true;
                break;
            }
        }
        drop(offered);
        let state = reading.wait_for_helpers();
        if let Some(fault) = state.fault {
            return Err(fault);
        }
        if !state.todo.is_empty() {
            return Err(if paused {
                TaskError::Paused
            } else {
                TaskError::Interrupted
            });
        }
        if state.failed.len() == pages {
            let mut failed = state.failed;
            failed.sort();
            return Err(TaskError::permanent(format!(
                "no page could be read: {}",
                failed
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        Ok(())
    }
}

/// Why a page was not read (it goes back, to be read by another worker or
/// attempt).
enum Unread {
    /// What stops the whole attempt.
    Fault(TaskError),
    /// A helping worker cannot start its OCR child: it stops helping (the
    /// offer is withdrawn from the pool's idle workers), the others go on.
    CannotHelp(String),
}

impl From<TaskError> for Unread {
    fn from(e: TaskError) -> Unread {
        Unread::Fault(e)
    }
}

/// One attempt at reading a document's pages, shared by the worker that
/// claimed its OCR task and the idle workers that help it (see
/// [`crate::worker::Divisible`]): each page is handed out once, read in the
/// reading worker's own OCR child, and checkpointed under the task's claim.
struct Reading {
    attempt: Attempt,
    config: OcrConfig,
    name: String,
    path: PathBuf,
    kind: Kind,
    pages: usize,
    state: Mutex<ReadingState>,
    /// Signalled whenever a page comes back.
    returned: Condvar,
}

#[derive(Default)]
struct ReadingState {
    /// Pages not yet handed out, in order.
    todo: VecDeque<usize>,
    /// Pages being read now.
    in_flight: usize,
    /// Pages that failed in this attempt, with why.
    failed: Vec<(usize, String)>,
    /// What stops the whole attempt (stopping, a lost claim, the database,
    /// no OCR child); the first one is kept, and no page is handed out after.
    fault: Option<TaskError>,
}

impl Divisible for Reading {
    /// Reads the next page not handed out yet; false when none is left, the
    /// attempt is stopping, or this (helping) worker cannot read at all.
    fn help(&self, worker: &str) -> bool {
        let n = {
            let mut state = self.state.lock().unwrap();
            if state.fault.is_some() {
                return false;
            }
            if self.attempt.should_stop() {
                state.fault = Some(TaskError::Interrupted);
                return false;
            }
            let Some(n) = state.todo.pop_front() else {
                return false;
            };
            state.in_flight += 1;
            n
        };
        let outcome =
            catch_unwind(AssertUnwindSafe(|| self.read(n, worker))).unwrap_or_else(|panic| {
                Err(Unread::Fault(TaskError::transient(format!(
                    "page {n}: reading it panicked: {}",
                    crate::worker::panic_message(&panic)
                ))))
            });
        let mut state = self.state.lock().unwrap();
        state.in_flight -= 1;
        let helped = match outcome {
            Ok(None) => true,
            Ok(Some(error)) => {
                state.failed.push((n, error));
                true
            }
            Err(Unread::Fault(fault)) => {
                // Not checkpointed: the next attempt reads it.
                state.todo.push_front(n);
                state.fault.get_or_insert(fault);
                true
            }
            Err(Unread::CannotHelp(error)) => {
                state.todo.push_front(n);
                log::warn!(
                    "{worker} cannot help read document {} {:?}: {error}; its other workers go on",
                    self.attempt.claim.document_id,
                    self.name
                );
                false
            }
        };
        self.returned.notify_all();
        helped
    }
}

impl Reading {
    /// True while another worker reads one of its pages.
    fn helped(&self) -> bool {
        self.state.lock().unwrap().in_flight > 0
    }

    /// Waits until no page is being read, and gives what the attempt came to.
    fn wait_for_helpers(&self) -> ReadingState {
        let mut state = self.state.lock().unwrap();
        while state.in_flight > 0 {
            state = self.returned.wait(state).unwrap();
        }
        std::mem::take(&mut *state)
    }

    /// Reads page `n` in this thread's OCR child (`worker`'s) and
    /// checkpoints it: `None`
    /// when it was read, the page's error when it failed (recorded: one bad
    /// page fails only itself), or the fault that stops the attempt.
    fn read(&self, n: usize, worker: &str) -> Result<Option<String>, Unread> {
        let (app, claim) = (&self.attempt.app, &self.attempt.claim);
        let doc_id = claim.document_id;
        let started = std::time::Instant::now();
        let timeout = self.config.page_timeout.0;
        let result = with_child(&self.config, |c| {
            if !c.has_open(&self.path) {
                c.open(&self.path, self.kind, timeout)?;
            }
            c.page(n, timeout, self.attempt.stop_flag())
        });
        let result = match result {
            Ok(p) => Ok(p),
            // Another worker's child may start where this one's cannot.
            Err(Failure::Spawn(e)) if worker != claim.worker => {
                return Err(Unread::CannotHelp(e));
            }
            Err(Failure::Spawn(e)) => return Err(TaskError::transient(e).into()),
            // Stopping: the page was cut short, not read; leave no checkpoint.
            Err(f) if f.lost_child() && self.attempt.should_stop() => {
                return Err(TaskError::Interrupted.into());
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
                attempts: claim.attempt as u32,
                error: None,
                worker: Some(worker.to_owned()),
            },
            Err(e) => PageDetail {
                status: PageStatus::Failed,
                attempts: claim.attempt as u32,
                error: Some(e.clone()),
                worker: Some(worker.to_owned()),
                ..Default::default()
            },
        };
        let reading = result.as_ref().ok().map(|p| PageReading {
            text: &p.text,
            source: p.source,
            confidence: p.confidence,
            layout: p.layout.as_ref(),
        });
        let now = app.queue.now_ms();
        if !app
            .store
            .save_page(claim, n as i64, reading.as_ref(), &detail, now)
            .map_err(|e| Unread::Fault(TaskError::database(e)))?
        {
            // Cancelled, or released and taken elsewhere: not ours to write.
            self.attempt.stop();
            return Err(TaskError::Interrupted.into());
        }
        if let Some(r) = &reading {
            let ocr = r.source == crate::store::PageSource::Ocr;
            crate::metrics::page_read(
                r.source.as_str(),
                ocr.then(|| started.elapsed().as_secs_f64()),
            );
        }
        // Only a page read is progress: a page that failed again must not
        // keep a task that dies every time alive for ever.
        if reading.is_some() {
            self.attempt.record_progress().map_err(Unread::Fault)?;
        }
        let name = &self.name;
        let pages = self.pages;
        match result {
            Ok(p) => {
                // -v: a line a page.
                log::info!(
                    target: "quire::pages",
                    "document {doc_id} {name:?} page {n}/{pages}: {}, {} chars{}, {} ms",
                    p.source,
                    detail.chars,
                    p.confidence
                        .map(|c| format!(", confidence {c:.0}"))
                        .unwrap_or_default(),
                    started.elapsed().as_millis()
                );
                if detail.poor {
                    log::warn!(
                        "document {doc_id} {name:?} page {n}: a poor reading (confidence {:.0}); \
                         the scan may be faint, blurred or not text",
                        detail.confidence.unwrap_or(0.0)
                    );
                }
                Ok(None)
            }
            Err(e) => {
                log::warn!("document {doc_id} {name:?}: {e}");
                Ok(Some(e))
            }
        }
    }
}
