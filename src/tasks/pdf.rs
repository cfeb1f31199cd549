//! The PDF task: writes a read document's searchable PDF into `output.dir`
//! (what the file holds: [`crate::tasks::ocr::searchable`]).
//!
//! The OCR child writes it to a hidden partial file in `output.dir/.partial/`,
//! synced; only a complete file is then linked into place, so a crash or a
//! SIGKILL mid-write never leaves half a PDF where a user looks. The name
//! follows the original's, inbox subfolders kept, with `.pdf`: `scans/a.png`
//! gives `scans/a.pdf`. A name another file already has gets a number
//! (`a (2).pdf`), never an overwrite; writing a document's PDF again replaces
//! its own earlier one (found by its recorded path, or, when an attempt died
//! between placing and recording it, by its bytes: the writer's output is
//! the same for the same pages).

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::config::{Config, OcrConfig};
use crate::detect::Kind;
use crate::store::{Document, DocumentStatus, PageSource, Placement, Store, files};
use crate::tasks::ocr::searchable::PageOverlay;
use crate::tasks::ocr::with_child;
use crate::worker::{Processor, TaskContext, TaskError};

/// The hidden folder inside `output.dir` that holds PDFs being written.
const PARTIAL_DIR: &str = ".partial";

/// The PDF task's processor.
pub struct PdfProcessor {
    ocr: OcrConfig,
    dir: PathBuf,
    sidecar_text: bool,
}

impl PdfProcessor {
    pub fn new(config: &Config) -> PdfProcessor {
        PdfProcessor {
            ocr: config.ocr.clone(),
            dir: config.output_dir(),
            sidecar_text: config.output.sidecar_text,
        }
    }
}

impl Processor for PdfProcessor {
    fn run(&self, ctx: &TaskContext<'_>) -> Result<(), TaskError> {
        let store = &ctx.app.store;
        let id = ctx.claim.document_id;
        let doc = store
            .document(id)
            .map_err(TaskError::database)?
            .ok_or_else(|| TaskError::permanent("the document was deleted"))?;
        if Kind::from_stored(&doc.kind) == Kind::Text {
            log::debug!(
                "document {id} {:?} is plain text: no searchable PDF to make",
                doc.name
            );
            return Ok(());
        }
        if matches!(doc.status, DocumentStatus::Queued | DocumentStatus::Ocr) {
            // Being read again: its OCR completion enqueues a fresh PDF task.
            log::debug!("document {id} is being read again; its PDF comes after");
            return Ok(());
        }
        let partial_dir = self.dir.join(PARTIAL_DIR);
        std::fs::create_dir_all(&partial_dir).map_err(|e| {
            TaskError::transient(format!(
                "cannot create {}: {e}; check output.dir and its permissions",
                partial_dir.display()
            ))
        })?;
        // One name per attempt: an attempt that lost its claim and has not
        // stopped yet never shares a file with the one that took over.
        let claim = ctx.claim;
        let partial = partial_dir.join(format!("{id}-{}-{}.pdf", claim.task_id, claim.attempt));
        // What earlier attempts left (killed while writing) is of no use to
        // anyone: this attempt holds the document's only live PDF task.
        remove_partials_of(&partial_dir, id);
        if let Err(e) = write(store, &self.ocr, &doc, &partial, ctx.stop_flag()) {
            let _ = std::fs::remove_file(&partial);
            if ctx.should_stop() {
                return Err(TaskError::Interrupted);
            }
            return Err(match e {
                WriteError::Cannot(e) => TaskError::permanent(e),
                WriteError::Db(e) => TaskError::database(e),
                // Disk full, a crash on an odd file, a timeout: all worth
                // retrying with backoff, up to queue.max_attempts.
                WriteError::Writer(e) => TaskError::transient(e),
            });
        }
        if ctx.should_stop() {
            let _ = std::fs::remove_file(&partial);
            return Err(TaskError::Interrupted);
        }
        // Its earlier PDF is replaced only where it is still this
        // document's: under today's output.dir, and recorded by no other
        // document (a user may have deleted it and another taken its name).
        let previous = match doc.searchable_pdf.as_deref().map(Path::new) {
            Some(p)
                if p.starts_with(&self.dir)
                    && !store
                        .pdf_taken_by_other(id, p)
                        .map_err(TaskError::database)? =>
            {
                Some(p)
            }
            _ => None,
        };
        let placed = place(&partial, &self.dir.join(output_name(&doc)), previous);
        let _ = std::fs::remove_file(&partial);
        let path = placed.map_err(|e| {
            TaskError::transient(format!(
                "cannot put the PDF into {}: {e}; check output.dir and free space",
                self.dir.display()
            ))
        })?;
        if self.sidecar_text {
            let text: Vec<String> = store
                .pages(id)
                .map_err(TaskError::database)?
                .into_iter()
                .map(|p| p.text)
                .collect();
            // Pages separated by a form feed, as pdftotext and OCRmyPDF's
            // sidecar do.
            write_replacing(&path.with_extension("txt"), text.join("\u{c}").as_bytes())
                .map_err(|e| TaskError::transient(format!("cannot write the text file: {e}")))?;
        }
        store
            .set_searchable_pdf(id, &path)
            .map_err(TaskError::database)?;
        log::info!(
            "document {id} {:?}: searchable PDF {}",
            doc.name,
            path.display()
        );
        Ok(())
    }
}

/// Why a searchable PDF could not be written.
#[derive(Debug)]
pub enum WriteError {
    /// The document cannot have one: not read yet, or plain text.
    Cannot(String),
    Db(crate::db::DbError),
    /// The writer failed (it says why) or died.
    Writer(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Cannot(e) | WriteError::Writer(e) => f.write_str(e),
            WriteError::Db(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for WriteError {}

/// Writes the searchable PDF of `doc` to `out` (created or truncated, then
/// synced) through this thread's OCR child; returns its page count. The PDF
/// task and `quire export --searchable` both write through here. Setting
/// `stop` (the task was cancelled) kills the child within a tenth of a
/// second: the file is then incomplete, for the caller to remove.
pub fn write(
    store: &Store,
    ocr: &OcrConfig,
    doc: &Document,
    out: &Path,
    stop: &AtomicBool,
) -> Result<usize, WriteError> {
    let id = doc.id;
    if Kind::from_stored(&doc.kind) == Kind::Text {
        return Err(WriteError::Cannot(format!(
            "document {id} is plain text: it has no pages to lay a text layer over; export it \
             without --searchable"
        )));
    }
    if matches!(doc.status, DocumentStatus::Queued | DocumentStatus::Ocr) || doc.pages.is_none() {
        return Err(WriteError::Cannot(format!(
            "document {id} has not been read yet (it is {}); its searchable PDF can be written \
             once its OCR task completes",
            doc.status
        )));
    }
    let mut pages = vec![];
    for (n, source, layout) in store.layouts(id).map_err(WriteError::Db)? {
        if layout.is_none() && source == PageSource::Ocr {
            return Err(WriteError::Cannot(format!(
                "document {id} was read before quire kept where the words are (page {n}); \
                 read it again with `quire enqueue --reprocess {id}`, and its searchable PDF \
                 follows"
            )));
        }
        let detail = store.page_detail(id, n).map_err(WriteError::Db)?;
        pages.push(PageOverlay {
            number: n as usize,
            layout,
            turned: detail.map_or(0, |d| d.turned),
        });
    }
    let file = store.file_of(doc);
    let kind = Kind::from_stored(&doc.kind);
    let page_timeout = ocr.page_timeout.0;
    // Writing is mostly copying: a second a page is generous.
    let timeout = page_timeout + Duration::from_secs(pages.len() as u64);
    with_child(ocr, |child| {
        if !child.has_open(&file) {
            child.open(&file, kind, page_timeout)?;
        }
        child.write_pdf(pages, out, timeout, stop)
    })
    .map_err(|f| WriteError::Writer(f.message("writing the searchable PDF")))
}

/// Where a document's PDF goes, relative to `output.dir`: its name (the path
/// under the inbox) with `.pdf` for its extension. A name that is absolute or
/// climbs out (`..`), as `quire enqueue` may record, keeps its file name only.
pub fn output_name(doc: &Document) -> PathBuf {
    let name = Path::new(&doc.name);
    let plain = name.components().all(|c| matches!(c, Component::Normal(_)));
    let rel = if plain {
        name.to_path_buf()
    } else {
        name.file_name().map(PathBuf::from).unwrap_or_default()
    };
    if rel.as_os_str().is_empty() {
        return PathBuf::from(format!("document-{}.pdf", doc.id));
    }
    rel.with_extension("pdf")
}

/// Removes every partial file of document `id` in `dir` (named `ID-...`).
fn remove_partials_of(dir: &Path, id: i64) {
    let prefix = format!("{id}-");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Links the finished file `partial` in at `wanted`, or the first of
/// `wanted (2).pdf`, `wanted (3).pdf`, ... that is free. When `previous` (this
/// document's earlier PDF) is still there, it is replaced instead.
fn place(partial: &Path, wanted: &Path, previous: Option<&Path>) -> std::io::Result<PathBuf> {
    if let Some(previous) = previous.filter(|p| p.is_file()) {
        std::fs::rename(partial, previous)?;
        files::sync_dir(previous);
        return Ok(previous.to_path_buf());
    }
    if let Some(parent) = wanted.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let stem = wanted
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for n in 1..10_000 {
        let candidate = match n {
            1 => wanted.to_path_buf(),
            n => wanted.with_file_name(format!("{stem} ({n}).pdf")),
        };
        // A file with the same bytes is this PDF, placed by an attempt that
        // died before it could record it.
        if files::place(partial, &candidate, Placement::Move)? || same_bytes(partial, &candidate) {
            return Ok(candidate);
        }
    }
    Err(std::io::Error::other(format!(
        "{} and 9,999 numbered names beside it are taken",
        wanted.display()
    )))
}

/// True when the files at `a` and `b` hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> bool {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    size(a).is_some() && size(a) == size(b) && std::fs::read(a).ok() == std::fs::read(b).ok()
}

/// Writes `data` to `path` through a synced temporary file and a rename.
fn write_replacing(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    files::sync_dir(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str) -> Document {
        Document {
            id: 7,
            name: name.into(),
            stored_path: String::new(),
            size: 0,
            sha256: String::new(),
            kind: "png".into(),
            pages: Some(1),
            status: DocumentStatus::Indexed,
            error: None,
            ocr_details: serde_json::Value::Null,
            indexing_details: serde_json::Value::Null,
            created_at: 0,
            updated_at: 0,
            searchable_pdf: None,
            poor_pages: 0,
        }
    }

    #[test]
    fn output_names_follow_the_inbox() {
        assert_eq!(output_name(&doc("scans/a.png")), Path::new("scans/a.pdf"));
        assert_eq!(output_name(&doc("b.pdf")), Path::new("b.pdf"));
        assert_eq!(output_name(&doc("noext")), Path::new("noext.pdf"));
        assert_eq!(output_name(&doc("/home/x/c.tiff")), Path::new("c.pdf"));
        assert_eq!(output_name(&doc("../d.jpg")), Path::new("d.pdf"));
        assert_eq!(output_name(&doc("..")), Path::new("document-7.pdf"));
    }

    #[test]
    fn a_taken_name_gets_a_number_and_a_documents_own_pdf_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("partial");
        let wanted = dir.path().join("sub/a.pdf");
        // As the task does: a fresh partial file each time, unlinked after.
        let put = |data: &str, previous: Option<&Path>| {
            std::fs::write(&partial, data).unwrap();
            let placed = place(&partial, &wanted, previous).unwrap();
            let _ = std::fs::remove_file(&partial);
            placed
        };
        assert_eq!(put("one", None), wanted);
        let second = put("two", None);
        assert_eq!(second, dir.path().join("sub/a (2).pdf"));
        assert_eq!(put("three", Some(&second)), second);
        assert_eq!(std::fs::read_to_string(&wanted).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(&second).unwrap(), "three");
        // The same PDF placed before, unrecorded: found, not numbered again.
        assert_eq!(put("one", None), wanted);
    }
}
