//! PDF pages: the text layer, and page rendering through poppler's
//! `pdftoppm` for OCR.
//!
//! The text layer is read two ways and the more complete reading of each
//! page wins: pdf-extract (loaded once, extracted page by page, each page
//! inside `catch_unwind` since pdf-extract panics on some real files), and
//! poppler's `pdftotext` (the whole document in one run, when first needed).
//! pdf-extract 0.12 loses every line drawn with the `'` operator after a long
//! first one (Ghostscript's `ps2pdf` output); poppler reads them.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::OnceLock;

use lopdf::{Document, Object, ObjectId};

/// A loaded PDF.
pub struct Pdf {
    doc: Document,
    /// Page numbers (1-based) to page object ids, in order.
    pages: Vec<(u32, (u32, u16))>,
    /// Each page's text as `pdftotext` reads it, once asked for; `None` when
    /// poppler could not read the file (pdf-extract's reading is used alone).
    poppler: OnceLock<Option<Vec<String>>>,
}

impl Pdf {
    /// Parses a PDF. Encrypted files that need a password fail with a message saying so.
    pub fn load(data: &[u8]) -> Result<Pdf, String> {
        let doc = catch_unwind(|| Document::load_mem(data))
            .map_err(|_| "the PDF cannot be parsed (the parser crashed on it)".to_string())?
            .map_err(|e| {
                let msg = e.to_string();
                if msg.to_lowercase().contains("decrypt") || msg.to_lowercase().contains("password") {
                    "the PDF is encrypted: password required; decrypt it (e.g. qpdf --decrypt) and drop it again".to_string()
                } else {
                    format!("the PDF is damaged or not a PDF: {msg}")
                }
            })?;
        if doc.is_encrypted() && doc.encryption_state.is_none() {
            return Err("the PDF is encrypted: password required; decrypt it (e.g. qpdf --decrypt) and drop it again".into());
        }
        let pages: Vec<_> = doc.get_pages().into_iter().collect();
        if pages.is_empty() {
            return Err("the PDF has no pages (damaged or empty page tree)".into());
        }
        Ok(Pdf {
            doc,
            pages,
            poppler: OnceLock::new(),
        })
    }

    /// [`Pdf::load`], and when the file is damaged (a broken cross-reference
    /// table, a wrong `startxref`: files that poppler and qpdf open), a
    /// second try on the copy `qpdf` rebuilds from the file at `path`.
    /// Encrypted files are not repaired.
    pub fn load_or_repair(path: &Path, data: &[u8]) -> Result<Pdf, String> {
        let err = match Pdf::load(data) {
            Ok(pdf) => return Ok(pdf),
            Err(e) if e.contains("encrypted") => return Err(e),
            Err(e) => e,
        };
        let repaired = repair(path).map_err(|why| format!("{err}; repairing it failed: {why}"))?;
        let pdf = Pdf::load(&repaired).map_err(|e| format!("{err}; even repaired: {e}"))?;
        log::info!(
            "{}: damaged PDF read from a copy repaired by qpdf",
            path.display()
        );
        Ok(pdf)
    }

    /// Number of pages.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// The text layer of page `n` (1-based) of this PDF, stored at `path`:
    /// pdf-extract's or poppler's reading, whichever has more letters and
    /// digits. An error (for that page alone) only when neither can read it.
    /// Poppler runs once per document, within `timeout`.
    pub fn text_layer(&self, path: &Path, n: u32, timeout: Duration) -> Result<String, String> {
        let poppler = self
            .poppler
            .get_or_init(|| {
                pdftotext(path, self.page_count(), timeout)
                    .inspect_err(|e| {
                        log::debug!("{}: {e}; using pdf-extract alone", path.display())
                    })
                    .ok()
            })
            .as_ref()
            .and_then(|pages| pages.get(n as usize - 1));
        let ours = self.text(n);
        match (ours, poppler) {
            (Ok(t), Some(p)) if alphanumerics(p) > alphanumerics(&t) => Ok(p.clone()),
            (Ok(t), _) => Ok(t),
            (Err(_), Some(p)) => Ok(p.clone()),
            (Err(e), None) => Err(e),
        }
    }

    /// pdf-extract's reading of page `n` (1-based), or an error for that page alone.
    pub fn text(&self, n: u32) -> Result<String, String> {
        let mut out = String::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut dev = pdf_extract::PlainTextOutput::new(&mut out);
            pdf_extract::output_doc_page(&self.doc, &mut dev, n)
        }));
        match result {
            Ok(Ok(())) => Ok(out),
            Ok(Err(e)) => Err(format!("text layer unreadable: {e}")),
            Err(_) => Err("text layer unreadable (the PDF parser crashed on this page)".into()),
        }
    }

    /// The underlying lopdf document.
    pub fn inner(&self) -> &Document {
        &self.doc
    }

    /// The object id of page `n` (1-based).
    pub fn page_id(&self, n: u32) -> Option<(u32, u16)> {
        self.pages.iter().find(|(p, _)| *p == n).map(|(_, id)| *id)
    }

    /// The page's /Rotate, inherited if need be (0 when absent or odd).
    pub fn rotation(&self, n: u32) -> i64 {
        self.page_id(n).map_or(0, |p| rotation(&self.doc, p))
    }

    /// The page's size in points (from its MediaBox, inherited if need be).
    pub fn page_size(&self, n: u32) -> Option<(f64, f64)> {
        let [x0, y0, x1, y1] = media_box(&self.doc, self.page_id(n)?)?;
        Some((x1 - x0, y1 - y0))
    }
}

/// A page attribute of `page`, looked up through the page tree (/Parent
/// links), a reference followed.
pub fn inherited(doc: &Document, page: ObjectId, key: &[u8]) -> Option<Object> {
    let mut dict = doc.get_dictionary(page).ok()?;
    for _ in 0..32 {
        if let Ok(obj) = dict.get(key) {
            return match obj {
                Object::Reference(r) => doc.get_object(*r).ok().cloned(),
                o => Some(o.clone()),
            };
        }
        let parent = dict.get(b"Parent").ok()?.as_reference().ok()?;
        dict = doc.get_dictionary(parent).ok()?;
    }
    None
}

/// The /Rotate of `page`, inherited if need be (0 when absent or odd).
pub fn rotation(doc: &Document, page: ObjectId) -> i64 {
    inherited(doc, page, b"Rotate")
        .and_then(|o| o.as_i64().ok())
        .unwrap_or(0)
        .rem_euclid(360)
}

/// The MediaBox of `page` (inherited if need be), normalized so that
/// `x0 < x1` and `y0 < y1`: the area `pdftoppm` renders. `None` when it is
/// missing or empty.
pub fn media_box(doc: &Document, page: ObjectId) -> Option<[f64; 4]> {
    let Object::Array(arr) = inherited(doc, page, b"MediaBox")? else {
        return None;
    };
    let v: Vec<f64> = arr
        .iter()
        .filter_map(|o| {
            o.as_float()
                .ok()
                .map(f64::from)
                .or_else(|| o.as_i64().ok().map(|i| i as f64))
        })
        .collect();
    let &[x0, y0, x1, y1] = v.as_slice() else {
        return None;
    };
    (x0 != x1 && y0 != y1).then(|| [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)])
}

/// The PDF at `path` as `qpdf` rewrites it, which rebuilds a broken
/// cross-reference table. qpdf's exit code 3 (done, with warnings) is the
/// usual outcome for a damaged file.
fn repair(path: &Path) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let out = dir.path().join("repaired.pdf");
    let status = Command::new("qpdf")
        .arg(path)
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "qpdf is not installed (apt-get install qpdf)".to_string()
            }
            _ => format!("cannot run qpdf: {e}"),
        })?;
    if !matches!(status.code(), Some(0 | 3)) {
        return Err(format!("qpdf could not rebuild it ({status})"));
    }
    std::fs::read(&out).map_err(|e| format!("qpdf wrote no file: {e}"))
}

/// Letters and digits in `text`: how much of a page a reading found.
fn alphanumerics(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphanumeric()).count()
}

/// Every page's text as poppler's `pdftotext` reads it (UTF-8, pages split
/// at its form feeds). Fails when poppler fails, times out, or finds another
/// number of pages than `pages`.
fn pdftotext(path: &Path, pages: usize, timeout: Duration) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let out = dir.path().join("text.txt");
    let mut cmd = Command::new("pdftotext");
    cmd.args(["-enc", "UTF-8", "-eol", "unix"])
        .arg(path)
        .arg(&out);
    run(cmd, "pdftotext", "read the text layer", timeout)?;
    let text = std::fs::read(&out).map_err(|e| format!("pdftotext wrote no text: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    // A form feed ends every page, the last included.
    let mut split: Vec<String> = text.split('\x0c').map(str::to_owned).collect();
    if split.last().is_some_and(|l| l.trim().is_empty()) {
        split.pop();
    }
    if split.len() != pages {
        return Err(format!(
            "pdftotext found {} pages, the parser {pages}",
            split.len()
        ));
    }
    Ok(split)
}

/// Runs a poppler tool that is to do `what` ("render the page"), killing it
/// after `timeout`; an error says what failed, and how to install poppler
/// when it is missing.
fn run(mut cmd: Command, tool: &str, what: &str, timeout: Duration) -> Result<(), String> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!(
                    "{tool} is not installed; install poppler-utils (apt-get install poppler-utils)"
                )
            }
            _ => format!("cannot run {tool}: {e}"),
        })?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let err = err.lines().next().unwrap_or("").to_string();
                return Err(format!("{tool} could not {what} ({status}): {err}"));
            }
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{tool} took longer than {}s; it was stopped",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("cannot wait for {tool}: {e}")),
        }
    }
}

/// True when a text layer is worth using instead of OCR: enough letters or
/// digits that it is more than a stray label on a scanned page.
pub fn usable_text(text: &str) -> bool {
    text.chars().filter(|c| c.is_alphanumeric()).count() >= 20
}

/// The resolution to render a page at: `dpi`, lowered so that the page stays
/// under `max_pixels`.
pub fn render_dpi(size_pt: Option<(f64, f64)>, dpi: u32, max_pixels: u64) -> u32 {
    let Some((w, h)) = size_pt else { return dpi };
    let (wi, hi) = (w / 72.0, h / 72.0);
    let pixels = wi * hi * f64::from(dpi) * f64::from(dpi);
    if pixels <= max_pixels as f64 || wi * hi <= 0.0 {
        return dpi;
    }
    ((max_pixels as f64 / (wi * hi)).sqrt().floor() as u32).max(10)
}

/// Renders page `n` of the PDF at `path` to 8-bit gray PGM bytes with
/// `pdftoppm`, killing it after `timeout`. Gray PGM, because tesseract reads
/// gray anyway and PNG compression was most of a render's cost: 1.5-5 s of
/// a colour PNG page against 0.1-0.3 s for the same page as PGM.
pub fn render(path: &Path, n: u32, dpi: u32, timeout: Duration) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    let prefix = dir.path().join("page");
    let mut cmd = Command::new("pdftoppm");
    cmd.args([
        "-r",
        &dpi.to_string(),
        "-f",
        &n.to_string(),
        "-l",
        &n.to_string(),
    ])
    .args(["-gray", "-singlefile"])
    .arg(path)
    .arg(&prefix);
    run(cmd, "pdftoppm", "render the page", timeout).map_err(|e| {
        if e.contains("took longer") {
            format!(
                "rendering the page took longer than {}s; it was stopped",
                timeout.as_secs()
            )
        } else {
            e
        }
    })?;
    std::fs::read(prefix.with_extension("pgm")).map_err(|e| format!("pdftoppm wrote no image: {e}"))
}
