//! Page images for the web page: images browsers show (PNG, JPEG, GIF,
//! WebP, BMP) as stored; PDF pages rendered by poppler's `pdftoppm`, and
//! TIFF and PNM pages converted by an OCR child, on first view and kept in
//! [`crate::store::Store::page_cache_dir`] by content hash, whose size is
//! bounded ([`CACHE_LIMIT`]: the oldest renders go first; `quire rm`
//! deletes a document's). Where the OCR recorded word boxes, the
//! document page draws a box over each found word ([`hit_boxes`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::api::parse_id;
use super::{ApiError, Web, blocking};
use crate::config::OcrConfig;
use crate::detect::Kind;
use crate::store::Layout;
use crate::tasks::ocr::child::Child;

/// Bytes of rendered pages kept on disk.
const CACHE_LIMIT: u64 = 256 * 1024 * 1024;
/// Resolution of a page view and of a search result's thumbnail.
const PAGE_DPI: u32 = 110;
const THUMB_DPI: u32 = 24;
/// A render taking longer than this is given up (well within the
/// connection's idle timeout, see `conn.rs`).
const RENDER_TIMEOUT: Duration = Duration::from_secs(20);

/// Document kinds a browser shows as stored.
fn browser_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "png" => "image/png",
        "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        _ => return None,
    })
}

/// Image kinds browsers cannot show: converted to PNG by an OCR child
/// (leptonica, under the child's memory limit).
fn converted(kind: &str) -> bool {
    matches!(kind, "tiff" | "pnm")
}

/// Whether the web page can show pages of this kind as images.
pub(super) fn has_images(kind: &str) -> bool {
    kind == "pdf" || converted(kind) || browser_type(kind).is_some()
}

/// The width in pixels of a converted image at `dpi` (a page view or a
/// thumbnail), for a Letter or A4 page.
fn width_at(dpi: u32) -> u32 {
    dpi * 17 / 2
}

/// `GET /doc/ID/page/N`: the page as an image.
pub(super) async fn page(
    State(web): State<Web>,
    UrlPath((id, n)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    image(web, &id, &n, PAGE_DPI, &headers).await
}

/// `GET /doc/ID/thumb/N`: a small image of the page.
pub(super) async fn thumb(
    State(web): State<Web>,
    UrlPath((id, n)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    image(web, &id, &n, THUMB_DPI, &headers).await
}

/// Renders at once, so that a results page asking for twenty thumbnails
/// does not start twenty pdftoppm.
static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

async fn image(
    web: Web,
    id: &str,
    n: &str,
    dpi: u32,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    let n = parse_id(n)?;
    let app = web.app.clone();
    let doc = blocking(move || app.document(id)).await?;
    let no_page = |why: String| ApiError::new(StatusCode::NOT_FOUND, why);
    let mime = match browser_type(&doc.kind) {
        Some(_) if n != 1 => {
            return Err(no_page(format!(
                "document {id} is one image: it has no page {n}"
            )));
        }
        Some(mime) => mime,
        None if doc.kind != "pdf" && !converted(&doc.kind) => {
            return Err(no_page(format!(
                "pages of {} documents are not shown as images; the text is on the page",
                doc.kind
            )));
        }
        None => match doc.pages {
            None => return Err(no_page(format!("document {id} is not read yet"))),
            Some(pages) if n > pages => {
                return Err(no_page(format!(
                    "document {id} has {pages} page(s), not {n}"
                )));
            }
            Some(_) => "image/png",
        },
    };
    // The content decides the image, not the id (ids are reused after rm):
    // browsers ask again each time and get 304 while it is the same.
    let tag = format!("\"{}-{n}-{dpi}\"", &doc.sha256[..16.min(doc.sha256.len())]);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == tag.as_bytes())
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let original = web.app.store.file_of(&doc);
    let bytes = if browser_type(&doc.kind).is_none() {
        let cache = web.app.store.page_cache_dir();
        let out = cache.join(format!("{}-{n}-{dpi}.png", doc.sha256));
        let read = out.clone();
        match blocking(move || cached(&read)).await? {
            Some(bytes) => bytes,
            None => {
                // Only renders wait for a turn, not pages already cached.
                let _turn = RENDERS
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                let how = match doc.kind.as_str() {
                    "pdf" => Render::Pdf,
                    kind => Render::Child(web.app.config.ocr.clone(), Kind::from_stored(kind)),
                };
                blocking(move || cached_render(&how, &original, n, dpi, &cache, &out)).await?
            }
        }
    } else {
        blocking(move || Ok(std::fs::read(&original)?)).await?
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CACHE_CONTROL, "private, no-cache".to_owned()),
            (header::ETAG, tag),
        ],
        bytes,
    )
        .into_response())
}

/// The rendered page from the cache, rendering it first if need be.
fn cached_render(
    how: &Render,
    original: &Path,
    n: i64,
    dpi: u32,
    cache: &Path,
    out: &Path,
) -> anyhow::Result<Vec<u8>> {
    // Rendered meanwhile by a request that had the turn before this one.
    if let Some(bytes) = cached(out)? {
        return Ok(bytes);
    }
    std::fs::create_dir_all(cache)?;
    let bytes = match how {
        Render::Pdf => render_pdf_page(original, n, dpi, out)?,
        Render::Child(config, kind) => render_image_page(config, *kind, original, n, dpi, out)?,
    };
    prune(cache, CACHE_LIMIT);
    Ok(bytes)
}

/// The render kept at `out`, if there is one.
fn cached(out: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(out) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// How a page that browsers cannot show as stored becomes a PNG.
enum Render {
    /// pdftoppm.
    Pdf,
    /// An OCR child with this configuration, for an image of this kind.
    Child(OcrConfig, Kind),
}

/// Converts page `n` of an image file to PNG in a fresh OCR child (see
/// [`crate::tasks::ocr::child::Request::Render`]), kept at `out`.
fn render_image_page(
    config: &OcrConfig,
    kind: Kind,
    image: &Path,
    n: i64,
    dpi: u32,
    out: &Path,
) -> anyhow::Result<Vec<u8>> {
    let temp = temp_name(out);
    let mut child = Child::spawn(config).map_err(anyhow::Error::msg)?;
    let rendered = child.render(
        image,
        kind,
        n as usize,
        width_at(dpi),
        &temp,
        RENDER_TIMEOUT,
    );
    if let Err(f) = rendered {
        let _ = std::fs::remove_file(&temp);
        anyhow::bail!("{}", f.message(&format!("page {n}")));
    }
    keep(&temp, out)
}

/// A temporary name beside `out`, unique to this render.
fn temp_name(out: &Path) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    out.with_extension(format!("tmp{}-{unique}.png", std::process::id()))
}

/// Reads the render at `temp` and keeps it at `out` (another request may
/// have rendered the same page meanwhile: same bytes).
fn keep(temp: &Path, out: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(temp);
    if bytes.is_err() || std::fs::rename(temp, out).is_err() {
        let _ = std::fs::remove_file(temp);
    }
    Ok(bytes?)
}

/// Renders page `n` of `pdf` at `dpi` as PNG, keeps it at `out` (through a
/// temporary name, so that a reader never sees half a file) and returns it.
fn render_pdf_page(pdf: &Path, n: i64, dpi: u32, out: &Path) -> anyhow::Result<Vec<u8>> {
    // pdftoppm -singlefile writes PREFIX.png.
    let rendered = temp_name(out);
    let prefix = rendered.with_extension("");
    // -q: a damaged file makes poppler print a line per bad object, which
    // nobody reads; the exit status says whether the page came out.
    let mut child = Command::new("pdftoppm")
        .args(["-q", "-png", "-singlefile", "-r", &dpi.to_string()])
        .args(["-f", &n.to_string(), "-l", &n.to_string()])
        .arg(pdf)
        .arg(&prefix)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!("cannot run pdftoppm to show the page ({e}); install poppler-utils")
        })?;
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > RENDER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&rendered);
            anyhow::bail!("pdftoppm took longer than {RENDER_TIMEOUT:?} on page {n}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if !status.success() {
        let _ = std::fs::remove_file(&rendered);
        anyhow::bail!(
            "pdftoppm cannot render page {n} of {} ({status})",
            pdf.display()
        );
    }
    keep(&rendered, out)
}

/// Removes the oldest files of `dir` until it holds at most `limit` bytes.
fn prune(dir: &Path, limit: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= limit {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

/// A box over a found word, in percent of the page's width and height.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HitBox {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// The boxes of the words of `layout` that `matches`, on the page as
/// shown (through [`Layout::to_page`]; a turned page's box is the bounding
/// box of its turned corners).
pub(super) fn hit_boxes(layout: &Layout, matches: impl Fn(&str) -> bool) -> Vec<HitBox> {
    let mut out = vec![];
    for word in layout.lines.iter().flat_map(|l| &l.words) {
        if !matches(&word.text) {
            continue;
        }
        let [l, t, r, b] = word.bbox.map(f64::from);
        let corners = [(l, t), (r, t), (l, b), (r, b)].map(|(x, y)| layout.to_page.apply(x, y));
        let xs = corners.map(|c| c.0);
        let ys = corners.map(|c| c.1);
        let (x0, x1) = (min(&xs), max(&xs));
        let (y0, y1) = (min(&ys), max(&ys));
        out.push(HitBox {
            left: x0 * 100.0,
            top: y0 * 100.0,
            width: (x1 - x0) * 100.0,
            height: (y1 - y0) * 100.0,
        });
    }
    out
}

fn min(v: &[f64; 4]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64; 4]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Affine, Line, Word};

    #[test]
    fn a_found_word_gets_its_box_in_percent_of_the_page() {
        // A 1000 x 2000 pixel reading of the page.
        let layout = Layout {
            to_page: Affine::scale(1.0 / 1000.0, 1.0 / 2000.0),
            lines: vec![Line {
                bbox: [100, 200, 900, 260],
                words: vec![
                    Word {
                        bbox: [100, 200, 400, 260],
                        text: "Invoice".into(),
                    },
                    Word {
                        bbox: [500, 200, 900, 260],
                        text: "total".into(),
                    },
                ],
            }],
        };
        let boxes = hit_boxes(&layout, |w| w.eq_ignore_ascii_case("total"));
        assert_eq!(boxes.len(), 1);
        let b = &boxes[0];
        assert!((b.left - 50.0).abs() < 1e-9 && (b.top - 10.0).abs() < 1e-9);
        assert!((b.width - 40.0).abs() < 1e-9 && (b.height - 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_cache_drops_its_oldest_renders_past_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let p = dir.path().join(name);
            std::fs::write(&p, vec![0u8; 100]).unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1000 + i as u64);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        prune(dir.path(), 250);
        assert!(!dir.path().join("a").exists());
        assert!(dir.path().join("b").exists() && dir.path().join("c").exists());
    }
}
