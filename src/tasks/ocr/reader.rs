//! Reading pages in this process: an opened document (image file or PDF) and
//! the text of one page of it. This is what the OCR child process runs (see
//! [`super::child`]); the daemon itself never calls into tesseract, leptonica
//! or pdf-extract, so a crash or a hang in them costs one page, not the daemon.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{embedded, engine, image, pdf, upright};
use crate::config::{OcrConfig, OcrMode};
use crate::detect::Kind;
use crate::store::{Affine, Layout, PageSource};

/// Below this mean confidence a reading is checked for a page that is not
/// upright. Upright pages of print score 80-95, even noisy ones mostly over
/// 60; pages read sideways scored 35-46.
const CHECK_ORIENTATION_BELOW: f64 = 65.0;

/// Text whose lines (ascender to descender) are shorter than this many
/// pixels is read again scaled up 2x, and the better reading kept. Measured
/// with tesseract 5.3 on DejaVu Sans (x-height about 0.55 of the line): 11 pt
/// at 75 DPI (lines of 12 px) reads at CER 0.008 as it is and 0.000 doubled;
/// at 60 DPI 0.024 and 0.000; 8 pt at 75 DPI 0.060 and 0.000, at 60 DPI
/// nothing at all as it is; at 100 DPI and above both read alike.
const SMALL_LINE_HEIGHT: i32 = 16;

/// The text of one page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PageText {
    pub text: String,
    pub source: PageSource,
    /// Tesseract's mean confidence (0-100); none for a text layer.
    pub confidence: Option<f64>,
    /// Raster images the page holds (1 for a page of an image file).
    pub images: usize,
    /// True when the page was rendered (pdftoppm) for OCR.
    pub rendered: bool,
    /// Degrees the page was turned clockwise to read it upright (0, 90, 180, 270).
    #[serde(default)]
    pub turned: u32,
    /// The skew straightened before reading, in degrees (counter-clockwise positive).
    #[serde(default)]
    pub deskewed: Option<f32>,
    /// Where the words are (OCR only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<Layout>,
}

impl PageText {
    /// A page's text that did not come from OCR (a text layer, a plain text
    /// file, or nothing at all with `ocr.mode = text-only`); `images` on it.
    fn not_ocr(text: String, images: usize) -> PageText {
        PageText {
            text,
            source: PageSource::Text,
            confidence: None,
            images,
            rendered: false,
            turned: 0,
            deskewed: None,
            layout: None,
        }
    }
}

/// A document opened for reading (in the OCR child).
pub struct OpenDocument {
    path: PathBuf,
    kind: Kind,
    data: Vec<u8>,
    source: Source,
}

enum Source {
    /// Each page's (width, height), read from the headers.
    Image(Vec<(u64, u64)>),
    Pdf(Box<pdf::Pdf>),
    /// A plain text file's pages (split at form feeds).
    Text(Vec<String>),
}

impl OpenDocument {
    /// Reads and parses the file at `path` of type `kind`. Fails, with a
    /// message for the user, on files that can't be read at all.
    pub fn open(path: &Path, kind: Kind) -> Result<OpenDocument, String> {
        let data = std::fs::read(path).map_err(|e| {
            format!(
                "cannot read the stored file {}: {e}; restore it from a backup and `quire retry` this task",
                path.display()
            )
        })?;
        let source = match kind {
            Kind::Unsupported("empty") => return Err("the file is empty (0 bytes)".into()),
            Kind::Unsupported(what) => {
                return Err(format!(
                    "unsupported file type: the content is {what}; quire reads PDF, PNG, JPEG, TIFF, BMP, GIF, WebP and PNM"
                ));
            }
            Kind::Pdf => Source::Pdf(Box::new(pdf::Pdf::load_or_repair(path, &data)?)),
            Kind::Text => Source::Text(text_pages(&data)),
            k => Source::Image(image::page_sizes(k, &data)?),
        };
        Ok(OpenDocument {
            path: path.to_owned(),
            kind,
            data,
            source,
        })
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The type of file it is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The file's bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The parsed PDF, for a PDF.
    pub fn pdf(&self) -> Option<&pdf::Pdf> {
        match &self.source {
            Source::Pdf(p) => Some(p),
            Source::Image(_) | Source::Text(_) => None,
        }
    }

    /// Number of pages.
    pub fn pages(&self) -> usize {
        match &self.source {
            Source::Image(sizes) => sizes.len(),
            Source::Pdf(p) => p.page_count(),
            Source::Text(pages) => pages.len(),
        }
    }

    /// Reads page `n` (1-based). A panic inside a library becomes this page's error.
    pub fn read_page(&self, config: &OcrConfig, n: usize) -> Result<PageText, String> {
        let started = std::time::Instant::now();
        catch_unwind(AssertUnwindSafe(|| match &self.source {
            Source::Image(sizes) => {
                let &(w, h) = sizes
                    .get(n.wrapping_sub(1))
                    .ok_or_else(|| format!("there is no page {n}"))?;
                if config.mode == OcrMode::TextOnly {
                    // Never OCR: an image has no text layer, so the page stays empty.
                    return Ok(PageText::not_ocr(String::new(), 1));
                }
                check_pixels(w, h, config.max_pixels)?;
                let pix = image::read_page(self.kind, &self.data, n - 1)?;
                ocr_image(config, &pix, None)
            }
            Source::Pdf(p) => self.pdf_page(config, p, n as u32, started),
            Source::Text(pages) => {
                let text = pages.get(n.wrapping_sub(1));
                let text = text.ok_or_else(|| format!("there is no page {n}"))?;
                Ok(PageText::not_ocr(text.clone(), 0))
            }
        }))
        .unwrap_or_else(|_| Err("reading the page crashed the reader".into()))
    }

    /// One PDF page: its text layer when usable, else OCR of its images, else
    /// OCR of a rendering of the page.
    fn pdf_page(
        &self,
        config: &OcrConfig,
        doc: &pdf::Pdf,
        n: u32,
        started: std::time::Instant,
    ) -> Result<PageText, String> {
        if config.mode != OcrMode::Force {
            let left = config.page_timeout.0.saturating_sub(started.elapsed());
            match doc.text_layer(&self.path, n, left.mul_f64(0.8)) {
                Ok(t) if pdf::usable_text(&t) || config.mode == OcrMode::TextOnly => {
                    // Extractors pad a page with blank lines before and after
                    // its text.
                    let text = t.trim_start_matches(['\n', '\r']).trim_end();
                    return Ok(PageText::not_ocr(text.to_owned(), 0));
                }
                Err(e) if config.mode == OcrMode::TextOnly => return Err(e),
                Err(e) => log::debug!("page {n}: {e}; reading it with OCR instead"),
                Ok(_) => {}
            }
        }
        let size = doc.page_size(n);
        let mut seen = 0;
        // A read of the embedded image that is not convincing is kept, in
        // case the rendering does no better or cannot be made.
        let mut unsure = None;
        match self.embedded_images(config, doc, n, size, &mut seen) {
            Ok(Some(page)) if convincing(&page) => return Ok(page),
            Ok(Some(page)) => {
                log::debug!("page {n}: embedded image read with low confidence; rendering it too");
                unsure = Some(page);
            }
            Ok(None) => {}
            Err(e) => log::debug!("page {n}: {e}; rendering it instead"),
        }
        if !config.pdftoppm {
            return unsure.ok_or_else(|| {
                "the page's images cannot be decoded and rendering is off (ocr.pdftoppm = false)"
                    .into()
            });
        }
        let rendered = (|| {
            let dpi = pdf::render_dpi(size, 300, config.max_pixels);
            // What is left of the page's time, with a margin, so that a slow
            // render fails here (keeping an unsure reading) before the
            // daemon's deadline kills this process.
            let left = config.page_timeout.0.saturating_sub(started.elapsed());
            let pgm = pdf::render(&self.path, n, dpi, left.mul_f64(0.8))?;
            let pix = image::read_page(Kind::Pnm, &pgm, 0)?;
            Ok::<_, String>(PageText {
                images: seen,
                rendered: true,
                ..ocr_image(config, &pix, None)?
            })
        })();
        match (rendered, unsure) {
            (Ok(r), Some(u)) if u.confidence > r.confidence => Ok(u),
            (Ok(r), _) => Ok(r),
            (Err(e), Some(u)) => {
                log::debug!("page {n}: {e}; keeping the embedded image's reading");
                Ok(u)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// OCR of a page that is one scanned image: decoded straight from the
    /// PDF, without a rendering pass. `None` when the page is anything else
    /// (several images, images we can't decode, rotated), which is rendered.
    /// `seen` gets the number of images on the page.
    fn embedded_images(
        &self,
        config: &OcrConfig,
        doc: &pdf::Pdf,
        n: u32,
        size: Option<(f64, f64)>,
        seen: &mut usize,
    ) -> Result<Option<PageText>, String> {
        let Some(page_id) = doc.page_id(n) else {
            return Ok(None);
        };
        let (images, undecodable) = embedded::page_images(doc.inner(), page_id, config.max_pixels)?;
        *seen = images.len() + undecodable;
        if doc.rotation(n) != 0 {
            return Ok(None);
        }
        let [img] = images.as_slice() else {
            return Ok(None);
        };
        if undecodable > 0 {
            return Ok(None);
        }
        // The scan's resolution is its pixels over the page's inches; only a
        // full-page image makes that meaningful, so small images are rendered.
        let Some((w_pt, h_pt)) = size else {
            return Ok(None);
        };
        let (dpi_x, dpi_y) = (
            f64::from(img.width) * 72.0 / w_pt,
            f64::from(img.height) * 72.0 / h_pt,
        );
        if !(50.0..=1200.0).contains(&dpi_x) || (dpi_x - dpi_y).abs() > dpi_x * 0.1 {
            return Ok(None);
        }
        let pix = if img.format == "pnm" {
            image::read_page(Kind::Pnm, &img.data, 0)?
        } else {
            tesseract::plumbing::leptonica_plumbing::Pix::read_mem(&img.data)
                .map_err(|_| format!("embedded {} image cannot be decoded", img.format))?
        };
        ocr_image(config, &pix, Some(dpi_x.round() as i32)).map(Some)
    }
}

/// True when a reading of an embedded image can be trusted without a
/// rendering to compare: a fair confidence. A low score (or a blank
/// reading) suggests the page draws the image rotated, mirrored or
/// inverted, or draws its text as vector outlines over it; the rendering
/// shows the page as a reader sees it.
fn convincing(page: &PageText) -> bool {
    page.confidence.is_some_and(|c| c >= 40.0)
}

/// A plain text file's pages: its text decoded (UTF-8, a byte-order mark
/// dropped; else Windows-1252, which covers Latin-1's printable range) and
/// split at form feeds, as `pdftotext` separates pages. Never empty.
fn text_pages(data: &[u8]) -> Vec<String> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let text = match std::str::from_utf8(data) {
        Ok(t) => t.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(data)
            .0
            .into_owned(),
    };
    let mut pages: Vec<String> = text.split('\x0c').map(str::to_owned).collect();
    // A trailing form feed ends the last page; it does not start another.
    if pages.len() > 1 && pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    pages
}

/// Refuses a page over the pixel limit before it is decoded.
fn check_pixels(w: u64, h: u64, max: u64) -> Result<(), String> {
    if w.saturating_mul(h) > max {
        return Err(format!(
            "the page is {w}x{h} pixels, over the limit of {max} (ocr.max_pixels)"
        ));
    }
    Ok(())
}

/// OCRs a decoded image with this thread's engine.
fn ocr_image(
    config: &OcrConfig,
    pix: &tesseract::plumbing::leptonica_plumbing::Pix,
    dpi: Option<i32>,
) -> Result<PageText, String> {
    let languages = config.languages.join("+");
    let threshold = if upright::unevenly_lit(pix) {
        engine::Threshold::Local
    } else {
        engine::Threshold::Global
    };
    // `scale`: how much the image read was enlarged from the page.
    let read = |pix: &tesseract::plumbing::leptonica_plumbing::Pix, scale: i32| {
        engine::recognize(
            pix,
            &languages,
            dpi.map(|d| d * scale),
            threshold,
            config.default_dpi,
            config.engine_recycle_pages,
        )
    };
    let straightened = upright::deskew(pix);
    let skew = straightened.as_ref().map(|(_, angle)| *angle);
    let page = straightened.as_ref().map_or(pix, |(p, _)| &**p);
    let mut best = read(page, 1)?;
    let mut turned = 0;
    let mut upright_page = None;
    // A page fed upside down reads as garbage with a poor confidence; one
    // fed sideways often reads well, tesseract finding its lines vertical.
    // Only then is its orientation worth detecting (turned upright, its text
    // layer lies along the lines and viewers show it upright). Without the
    // orientation model the page is still read, as it is.
    if (best.confidence < CHECK_ORIENTATION_BELOW || best.layout.mostly_vertical())
        && let Some(degrees) = upright::orientation(page, dpi)
            .inspect_err(|e| log::warn!("{e}"))
            .ok()
            .flatten()
            .filter(|d| *d != 0)
        && let Some(turned_page) = upright::turn(page, degrees)
    {
        let again = read(&turned_page, 1)?;
        // Upright lines beat sideways ones read about as well (tesseract
        // reads vertical lines of print nearly as surely).
        let straightened_lines = best.layout.mostly_vertical()
            && !again.layout.mostly_vertical()
            && again.confidence + 5.0 >= best.confidence;
        // A picture with no text can look "upside down" to the detector:
        // a turn must be borne out by words read.
        let read_words = again.layout.words() > 0;
        if read_words && (again.confidence > best.confidence || straightened_lines) {
            best = again;
            turned = degrees;
            upright_page = Some(turned_page);
        }
    }
    // Small text (a low-resolution scan, a phone photo, fine print) reads
    // better scaled up; tesseract does not do it itself.
    let mut scale = 1;
    let current = upright_page.as_deref().unwrap_or(page);
    let (w, h) = upright::size(current);
    if best
        .layout
        .median_line_height()
        .is_some_and(|lh| lh < SMALL_LINE_HEIGHT)
        && u64::from(w) * u64::from(h) * 4 <= config.max_pixels
        && let Some(bigger) = upright::enlarge(current, 2)
    {
        let again = read(&bigger, 2)?;
        if again.confidence > best.confidence {
            best = again;
            scale = 2;
        }
    }
    let (w, h) = upright::size(pix);
    let layout =
        Layout {
            to_page: Affine::scale(1.0 / f64::from(scale), 1.0 / f64::from(scale))
                .then(&read_to_page(f64::from(w), f64::from(h), skew, turned)),
            ..best.layout
        };
    Ok(PageText {
        text: best.text,
        source: PageSource::Ocr,
        confidence: Some(best.confidence),
        images: 1,
        rendered: false,
        turned,
        deskewed: skew,
        layout: Some(layout),
    })
}

/// The map from pixels of the image read back to the page as a fraction of
/// its width and height, for a page of `w`x`h` pixels that was straightened
/// by `skew` degrees (rotated clockwise by that much about its centre, as
/// leptonica's deskew does) and then turned clockwise by `turned` degrees.
fn read_to_page(w: f64, h: f64, skew: Option<f32>, turned: u32) -> Affine {
    // Undo the turn: from the turned image to the straightened one (w x h).
    let unturn = match turned {
        90 => Affine::new([0.0, -1.0, 1.0, 0.0, 0.0, h]), // (x, y) <- (y', h - x')
        180 => Affine::new([-1.0, 0.0, 0.0, -1.0, w, h]),
        270 => Affine::new([0.0, 1.0, -1.0, 0.0, w, 0.0]), // (x, y) <- (w - y', x')
        _ => Affine::IDENTITY,
    };
    // Undo the deskew: the same rotation backwards, about the same centre.
    let unskew = Affine::translate(-w / 2.0, -h / 2.0)
        .then(&Affine::rotate(-f64::from(skew.unwrap_or(0.0))))
        .then(&Affine::translate(w / 2.0, h / 2.0));
    unturn.then(&unskew).then(&Affine::scale(1.0 / w, 1.0 / h))
}
