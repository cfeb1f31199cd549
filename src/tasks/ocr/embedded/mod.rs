//! The raster images a PDF page draws, re-wrapped in file formats leptonica's
//! `pixReadMem` reads, so that a scanned page can be OCR'd from its own pixels
//! instead of from a `pdftoppm` rendering.
//!
//! Images are passed through or re-wrapped, never rasterised: a JPEG
//! (`DCTDecode`) stream is returned as it is, CCITT fax data is wrapped in a
//! one-strip TIFF, and raw, Flate, LZW, RunLength or ASCII-encoded samples
//! become a PNM. Anything else (JBIG2, JPEG 2000, Lab, Separation, DeviceN,
//! ...) is only counted, so the caller knows to render the page instead.
//!
//! PDF data is untrusted: image sizes are checked against the pixel limit
//! before anything is decoded, every decoder stops at the number of bytes the
//! image needs (a small stream cannot inflate into gigabytes), arithmetic on
//! sizes is checked, and malformed input yields "undecodable", never a panic.
//!
//! This module finds the images a page draws (its resources, inherited
//! resources, the `Do` operators in its content streams, and forms);
//! `filters` decodes streams, `raster` turns an image XObject into
//! leptonica-readable bytes, and `dict` reads dictionary values.

mod ccitt;
mod dict;
mod filters;
mod jpeg;
mod raster;
mod samples;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use pdf_extract::{Dictionary, Document, Object, ObjectId, Stream};

use dict::{get_dict, get_name};
use filters::decode_bytes;
use raster::decode_image;

/// One image drawn on a page, encoded in a format leptonica's `pixReadMem`
/// reads.
///
/// `width` and `height` are the pixel size leptonica will decode (for a JPEG,
/// the size in its frame header). `format` is `"jpeg"` (the PDF's own JPEG
/// stream), `"pnm"` (a binary PBM, PGM or PPM built from the samples) or
/// `"tiff-ccitt"` (the PDF's CCITT G3/G4 data in a single-strip TIFF).
#[derive(Clone)]
pub struct PageImage {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub format: &'static str,
}

impl std::fmt::Debug for PageImage {
    // The bytes are megabytes of pixels; their length is what is useful.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageImage")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// The raster images drawn by page `page_id` that could be turned into a
/// leptonica-readable file, in drawing order, plus how many image XObjects
/// were drawn that could not be (JBIG2, JPEG 2000, unusual colour spaces,
/// damaged or truncated data, forms nested too deep to follow).
///
/// The images are those named by `Do` operators in the page's content
/// streams, looked up in the page's `/Resources` (inherited from the page
/// tree when the page has none) and followed into form XObjects up to two
/// levels deep. An image drawn several times is returned once. If the content
/// streams cannot be read, every image in the resources is taken instead.
/// Inline images (`BI ... EI`), images in patterns and annotations, and soft
/// masks are not returned, and drawing transforms (rotation, clipping, scale)
/// are not applied: the images are the pixels as stored.
///
/// Returns `Err` only when the page is not a dictionary or when an image's
/// pixel count (its `/Width` x `/Height`, or a JPEG's own frame size) is over
/// `max_pixels`; this is checked before the image is decoded.
pub fn page_images(
    doc: &Document,
    page_id: ObjectId,
    max_pixels: u64,
) -> Result<(Vec<PageImage>, usize), String> {
    let page = doc.get_dictionary(page_id).map_err(|e| {
        format!(
            "page object {} {} is not readable: {e}",
            page_id.0, page_id.1
        )
    })?;
    let resources = page_resources(doc, page);
    let content = page_content(doc, page_id, page);
    let mut walk = Walk {
        doc,
        max_pixels,
        seen: HashSet::new(),
        images: Vec::new(),
        undecodable: 0,
    };
    walk.draw(resources, content.as_deref(), 0)?;
    Ok((walk.images, walk.undecodable))
}

/// How many form XObjects deep images are looked for (page -> form -> form).
/// Deeper forms are counted as undecodable: they may hold images not seen.
const MAX_FORM_DEPTH: usize = 2;
/// How many page-tree levels are searched for inherited `/Resources`; this
/// also ends a `/Parent` cycle.
const MAX_TREE_DEPTH: usize = 32;
/// Decoded content streams over this size are not scanned for `Do`.
const MAX_CONTENT_BYTES: usize = 64 << 20;

/// Why an image is not returned.
enum Skip {
    /// Over the pixel limit: fails the whole call.
    OverLimit(String),
    /// Counted as undecodable; the reason is logged.
    Undecodable(String),
}

type Decoded<T> = Result<T, Skip>;

fn undecodable<T>(why: impl Into<String>) -> Decoded<T> {
    Err(Skip::Undecodable(why.into()))
}

/// The state of one `page_images` call.
struct Walk<'a> {
    doc: &'a Document,
    max_pixels: u64,
    /// XObjects already handled: an image drawn twice is returned once, and a
    /// form cannot be entered again (which also ends reference cycles).
    seen: HashSet<ObjectId>,
    images: Vec<PageImage>,
    undecodable: usize,
}

impl<'a> Walk<'a> {
    /// Collects the images drawn by `content` (or, when it is unknown, every
    /// image in `resources`), following forms.
    fn draw(
        &mut self,
        resources: Option<&'a Dictionary>,
        content: Option<&[u8]>,
        depth: usize,
    ) -> Result<(), String> {
        let doc = self.doc;
        let Some(xobjects) = resources.and_then(|r| get_dict(doc, r, b"XObject")) else {
            return Ok(());
        };
        let names: Vec<Vec<u8>> = match content {
            Some(content) => drawn_names(content),
            None => xobjects.iter().map(|(name, _)| name.clone()).collect(),
        };
        for name in names {
            // A `Do` of a name not in the resources draws nothing.
            let Ok(object) = xobjects.get(&name) else {
                continue;
            };
            let Ok((id, object)) = doc.dereference(object) else {
                continue;
            };
            let Object::Stream(stream) = object else {
                continue;
            };
            if let Some(id) = id
                && !self.seen.insert(id)
            {
                continue;
            }
            match get_name(doc, &stream.dict, b"Subtype") {
                Some(b"Image") => self.image(id, stream)?,
                Some(b"Form") if depth >= MAX_FORM_DEPTH => {
                    log::debug!("form XObject {id:?} is nested too deep to look for images in");
                    self.undecodable += 1;
                }
                Some(b"Form") => {
                    // A form without resources uses those of its parent (PDF 1.1).
                    let form_resources = get_dict(doc, &stream.dict, b"Resources").or(resources);
                    let form_content = decode_bytes(doc, stream, MAX_CONTENT_BYTES)
                        .ok()
                        .filter(|c| c.len() < MAX_CONTENT_BYTES);
                    self.draw(form_resources, form_content.as_deref(), depth + 1)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn image(&mut self, id: Option<ObjectId>, stream: &Stream) -> Result<(), String> {
        match decode_image(self.doc, stream, self.max_pixels) {
            Ok(image) => self.images.push(image),
            Err(Skip::OverLimit(e)) => return Err(e),
            Err(Skip::Undecodable(why)) => {
                log::debug!("image XObject {id:?} cannot be extracted: {why}");
                self.undecodable += 1;
            }
        }
        Ok(())
    }
}

/// The page's `/Resources`, or the nearest ancestor's when the page has none.
fn page_resources<'a>(doc: &'a Document, page: &'a Dictionary) -> Option<&'a Dictionary> {
    let mut node = page;
    for _ in 0..MAX_TREE_DEPTH {
        if let Some(resources) = get_dict(doc, node, b"Resources") {
            return Some(resources);
        }
        node = get_dict(doc, node, b"Parent")?;
    }
    None
}

/// The page's content streams, decoded and joined; `None` when they exist but
/// cannot be decoded (or are huge), so that the resources are used instead.
fn page_content(doc: &Document, page_id: ObjectId, page: &Dictionary) -> Option<Vec<u8>> {
    let ids = doc.get_page_contents(page_id);
    if ids.is_empty() && page.has(b"Contents") {
        return None;
    }
    let mut content = Vec::new();
    for id in ids {
        let stream = doc.get_object(id).ok()?.as_stream().ok()?;
        let left = MAX_CONTENT_BYTES.checked_sub(content.len())?;
        let part = decode_bytes(doc, stream, left).ok()?;
        if part.len() >= left {
            return None;
        }
        content.extend_from_slice(&part);
        // Streams of one page are joined at token boundaries.
        content.push(b'\n');
    }
    Some(content)
}

// ---------------------------------------------------------------------------
// Content-stream scanning

fn is_white(b: u8) -> bool {
    matches!(b, b'\0' | b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// The names given to `Do` in a content stream, first use first.
///
/// A tokenizer just good enough to find `/Name Do`: strings, comments and
/// inline image data are skipped so that their bytes are not read as
/// operators. (lopdf's content parser is not used: it can panic on a
/// malformed inline image.)
fn drawn_names(content: &[u8]) -> Vec<Vec<u8>> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut last_name: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(&b) = content.get(i) {
        if is_white(b) {
            i += 1;
            continue;
        }
        match b {
            b'%' => {
                while content.get(i).is_some_and(|&c| c != b'\n' && c != b'\r') {
                    i += 1;
                }
            }
            b'/' => {
                i += 1;
                let start = i;
                while content
                    .get(i)
                    .is_some_and(|&c| !is_white(c) && !is_delimiter(c))
                {
                    i += 1;
                }
                last_name = Some(unescape_name(content.get(start..i).unwrap_or_default()));
                continue;
            }
            b'(' => i = skip_literal_string(content, i),
            b'<' if content.get(i + 1) == Some(&b'<') => i += 2,
            b'<' => {
                while content.get(i).is_some_and(|&c| c != b'>') {
                    i += 1;
                }
                i += 1;
            }
            _ if is_delimiter(b) => i += 1,
            _ => {
                let start = i;
                while content
                    .get(i)
                    .is_some_and(|&c| !is_white(c) && !is_delimiter(c))
                {
                    i += 1;
                }
                match content.get(start..i) {
                    Some(b"Do") => {
                        if let Some(name) = last_name.take()
                            && !names.contains(&name)
                        {
                            names.push(name);
                        }
                    }
                    Some(b"ID") => i = skip_inline_image_data(content, i),
                    _ => {}
                }
            }
        }
        last_name = None;
    }
    names
}

/// Decodes `#xx` escapes in a name token (PDF 1.2).
fn unescape_name(raw: &[u8]) -> Vec<u8> {
    let mut name = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (c, hex) {
            (b'#', Some(v)) => {
                name.push(v);
                i += 3;
            }
            _ => {
                name.push(c);
                i += 1;
            }
        }
    }
    name
}

/// The index after the literal string starting at `start` (an opening paren).
fn skip_literal_string(content: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while let Some(&c) = content.get(i) {
        match c {
            b'\\' => i += 1,
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    content.len()
}

/// The index after the `EI` ending the inline image data that starts after
/// the `ID` operator ending at `start`. The data's length is not known
/// without decoding it, so the end is the first `EI` between white space, as
/// other readers do.
fn skip_inline_image_data(content: &[u8], start: usize) -> usize {
    let data = start + 1; // one white-space byte follows ID
    let mut i = data;
    while let Some(window) = content.get(i..i + 2) {
        let before = i.checked_sub(1).and_then(|p| content.get(p)).copied();
        let after = content.get(i + 2).copied();
        if window == b"EI"
            && before.is_some_and(is_white)
            && after.is_none_or(|c| is_white(c) || is_delimiter(c))
        {
            return i + 2;
        }
        i += 1;
    }
    content.len()
}
