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

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Read;

use pdf_extract::{Dictionary, Document, Object, ObjectId, Stream};

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

// ---------------------------------------------------------------------------
// Dictionary access (values may be indirect references)

fn deref<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Object> {
    doc.dereference(object).ok().map(|(_, o)| o)
}

fn get<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    dict.get(key).ok().and_then(|o| deref(doc, o))
}

fn get_dict<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Dictionary> {
    match get(doc, dict, key)? {
        Object::Dictionary(d) => Some(d),
        _ => None,
    }
}

fn get_name<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a [u8]> {
    match get(doc, dict, key)? {
        Object::Name(n) => Some(n),
        _ => None,
    }
}

fn get_bool(doc: &Document, dict: &Dictionary, key: &[u8]) -> Option<bool> {
    match get(doc, dict, key)? {
        Object::Boolean(b) => Some(*b),
        _ => None,
    }
}

/// An integer, also when written as a whole real (`2550.0`).
fn as_int(object: &Object) -> Option<i64> {
    match object {
        Object::Integer(i) => Some(*i),
        Object::Real(r) if r.fract() == 0.0 && r.abs() < 1e15 => Some(*r as i64),
        _ => None,
    }
}

fn get_int(doc: &Document, dict: &Dictionary, key: &[u8]) -> Option<i64> {
    as_int(get(doc, dict, key)?)
}

fn as_number(object: &Object) -> Option<f32> {
    match object {
        Object::Integer(i) => Some(*i as f32),
        Object::Real(r) if r.is_finite() => Some(*r),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Filters

/// One stage of a stream's filter chain.
struct Filter<'a> {
    name: &'a [u8],
    params: Option<&'a Dictionary>,
}

/// The stream's filters in decoding order, each with its `/DecodeParms`.
fn filters<'a>(doc: &'a Document, dict: &'a Dictionary) -> Decoded<Vec<Filter<'a>>> {
    let names: Vec<&[u8]> = match get(doc, dict, b"Filter") {
        None | Some(Object::Null) => return Ok(Vec::new()),
        Some(Object::Name(name)) => vec![name.as_slice()],
        Some(Object::Array(items)) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match deref(doc, item) {
                    Some(Object::Name(name)) => names.push(name.as_slice()),
                    _ => return undecodable("/Filter holds something other than names"),
                }
            }
            names
        }
        Some(_) => return undecodable("/Filter is neither a name nor an array"),
    };
    let mut params: Vec<Option<&Dictionary>> = vec![None; names.len()];
    match get(doc, dict, b"DecodeParms") {
        Some(Object::Array(items)) => {
            for (slot, item) in params.iter_mut().zip(items) {
                if let Some(Object::Dictionary(d)) = deref(doc, item) {
                    *slot = Some(d);
                }
            }
        }
        // A lone dictionary belongs to a lone filter; with a chain, producers
        // mean the last stage (the predictor or fax parameters).
        Some(Object::Dictionary(d)) => {
            if let Some(last) = params.last_mut() {
                *last = Some(d);
            }
        }
        _ => {}
    }
    Ok(names
        .into_iter()
        .zip(params)
        .map(|(name, params)| Filter {
            name: canonical_filter(name),
            params,
        })
        .collect())
}

/// The full name of a filter given by its inline-image abbreviation.
fn canonical_filter(name: &[u8]) -> &[u8] {
    match name {
        b"AHx" => b"ASCIIHexDecode",
        b"A85" => b"ASCII85Decode",
        b"LZW" => b"LZWDecode",
        b"Fl" => b"FlateDecode",
        b"RL" => b"RunLengthDecode",
        b"CCF" => b"CCITTFaxDecode",
        b"DCT" => b"DCTDecode",
        other => other,
    }
}

/// Decodes a whole stream whose filters are all general-purpose ones,
/// keeping at most `cap` bytes.
fn decode_bytes(doc: &Document, stream: &Stream, cap: usize) -> Decoded<Vec<u8>> {
    let filters = filters(doc, &stream.dict)?;
    run_filters(doc, &stream.content, &filters, cap)
}

/// Runs `input` through general-purpose filters. The last stage stops after
/// `cap` bytes of output (the bytes the caller needs); earlier stages, whose
/// output is compressed data, get a generous multiple of it.
fn run_filters(doc: &Document, input: &[u8], filters: &[Filter], cap: usize) -> Decoded<Vec<u8>> {
    let mut data = Cow::Borrowed(input);
    let stages = filters.len();
    for (i, filter) in filters.iter().enumerate() {
        let stage_cap = if i + 1 == stages {
            cap
        } else {
            cap.saturating_mul(2).saturating_add(1 << 20)
        };
        data = Cow::Owned(run_filter(doc, &data, filter, stage_cap)?);
    }
    let mut data = data.into_owned();
    data.truncate(cap);
    Ok(data)
}

fn run_filter(doc: &Document, input: &[u8], filter: &Filter, cap: usize) -> Decoded<Vec<u8>> {
    match filter.name {
        b"FlateDecode" => {
            let predictor = Predictor::new(doc, filter.params)?;
            let raw = inflate(input, predictor.encoded_cap(cap)?);
            predictor.apply(raw, cap)
        }
        b"LZWDecode" => {
            let predictor = Predictor::new(doc, filter.params)?;
            let early_change = filter
                .params
                .and_then(|p| get_int(doc, p, b"EarlyChange"))
                .is_none_or(|v| v != 0);
            let raw = lzw(input, early_change, predictor.encoded_cap(cap)?)?;
            predictor.apply(raw, cap)
        }
        b"ASCIIHexDecode" => ascii_hex(input, cap),
        b"ASCII85Decode" => ascii85(input, cap),
        b"RunLengthDecode" => Ok(run_length(input, cap)),
        other => undecodable(format!(
            "unsupported filter /{}",
            String::from_utf8_lossy(other)
        )),
    }
}

/// Inflates zlib data, stopping after `cap` bytes. Damaged data gives what
/// was decoded before the damage; the image's size check decides whether
/// that is enough.
fn inflate(input: &[u8], cap: usize) -> Vec<u8> {
    use flate2::read::{DeflateDecoder, ZlibDecoder};
    let limit = u64::try_from(cap).unwrap_or(u64::MAX);
    let mut out = Vec::new();
    // Stopping at `cap` means the Adler-32 trailer is usually never checked,
    // which also accepts the streams some encrypting producers damage there.
    if ZlibDecoder::new(input)
        .take(limit)
        .read_to_end(&mut out)
        .is_err()
        && out.is_empty()
    {
        // A bad zlib header: some producers write raw deflate after it.
        if let Some(body) = input.get(2..) {
            let _ = DeflateDecoder::new(body).take(limit).read_to_end(&mut out);
        }
    }
    out
}

/// Decodes LZW data (PDF 32000-1 7.4.4), stopping after `cap` bytes.
fn lzw(input: &[u8], early_change: bool, cap: usize) -> Decoded<Vec<u8>> {
    const CLEAR: usize = 256;
    const EOD: usize = 257;
    const TABLE: usize = 4096;
    // Each entry is its prefix entry plus one byte; strings are rebuilt
    // backwards, so the table stays 4096 small records.
    let mut prefix = vec![0u16; TABLE];
    let mut suffix = vec![0u8; TABLE];
    let mut first = vec![0u8; TABLE];
    let mut length = vec![0u16; TABLE];
    for code in 0..256 {
        suffix[code] = code as u8;
        first[code] = code as u8;
        length[code] = 1;
    }
    let mut next = 258;
    let mut width = 9u32;
    let mut prev: Option<usize> = None;
    let (mut bits, mut nbits) = (0u32, 0u32);
    let mut bytes = input.iter();
    let mut out = Vec::new();
    let mut string = Vec::with_capacity(TABLE);
    while out.len() < cap {
        while nbits < width {
            let Some(&b) = bytes.next() else {
                return Ok(out);
            };
            bits = (bits << 8) | u32::from(b);
            nbits += 8;
        }
        nbits -= width;
        let code = ((bits >> nbits) & ((1 << width) - 1)) as usize;
        bits &= (1 << nbits) - 1;
        if code == CLEAR {
            next = 258;
            width = 9;
            prev = None;
            continue;
        }
        if code == EOD {
            break;
        }
        let Some(p) = prev else {
            if code > 255 {
                return undecodable("LZW data starts with an undefined code");
            }
            out.push(code as u8);
            prev = Some(code);
            continue;
        };
        let head = if code < next {
            first[code]
        } else if code == next {
            first[p]
        } else {
            return undecodable("LZW data uses an undefined code");
        };
        if next < TABLE {
            prefix[next] = p as u16;
            suffix[next] = head;
            first[next] = first[p];
            length[next] = length[p].saturating_add(1);
            next += 1;
        }
        string.clear();
        let mut c = code;
        loop {
            string.push(suffix[c]);
            if length[c] <= 1 {
                break;
            }
            c = usize::from(prefix[c]);
        }
        out.extend(string.iter().rev());
        prev = Some(code);
        // The code width grows one code early unless /EarlyChange is 0.
        if next + usize::from(early_change) >= (1 << width) && width < 12 {
            width += 1;
        }
    }
    out.truncate(cap);
    Ok(out)
}

fn ascii_hex(input: &[u8], cap: usize) -> Decoded<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len().min(cap) / 2);
    let mut high: Option<u8> = None;
    for &c in input {
        if c == b'>' || out.len() >= cap {
            break;
        }
        if is_white(c) {
            continue;
        }
        let Some(v) = (c as char).to_digit(16) else {
            return undecodable("bad character in ASCIIHex data");
        };
        let v = v as u8;
        match high.take() {
            Some(h) => out.push(h << 4 | v),
            None => high = Some(v),
        }
    }
    // An odd final digit is followed by an implicit 0.
    if let Some(h) = high {
        out.push(h << 4);
    }
    out.truncate(cap);
    Ok(out)
}

fn ascii85(input: &[u8], cap: usize) -> Decoded<Vec<u8>> {
    let input = input.strip_prefix(b"<~").unwrap_or(input);
    let mut out = Vec::with_capacity(input.len().min(cap));
    let mut group = 0u64;
    let mut n = 0;
    for &c in input {
        if c == b'~' || out.len() >= cap {
            break;
        }
        match c {
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group = group * 85 + u64::from(c - b'!');
                n += 1;
                if n == 5 {
                    let Ok(word) = u32::try_from(group) else {
                        return undecodable("ASCII85 group out of range");
                    };
                    out.extend_from_slice(&word.to_be_bytes());
                    (group, n) = (0, 0);
                }
            }
            _ if is_white(c) => {}
            _ => return undecodable("bad character in ASCII85 data"),
        }
    }
    // A final group of n characters is padded with 'u' and gives n - 1 bytes.
    if n > 1 {
        for _ in n..5 {
            group = group * 85 + 84;
        }
        let word = u32::try_from(group).unwrap_or(u32::MAX).to_be_bytes();
        out.extend_from_slice(word.get(..n - 1).unwrap_or_default());
    }
    out.truncate(cap);
    Ok(out)
}

fn run_length(input: &[u8], cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&len) = input.get(i) {
        if len == 128 || out.len() >= cap {
            break;
        }
        if len < 128 {
            let end = (i + 2 + usize::from(len)).min(input.len());
            out.extend_from_slice(input.get(i + 1..end).unwrap_or_default());
            i = end;
        } else {
            let Some(&byte) = input.get(i + 1) else { break };
            out.resize(out.len() + 257 - usize::from(len), byte);
            i += 2;
        }
    }
    out.truncate(cap);
    out
}

/// A Flate/LZW predictor (`/DecodeParms /Predictor`). lopdf's own predictor
/// code is not used: it is skipped when `/DecodeParms` is an array or a
/// reference, and it gets the row length wrong below 8 bits per component.
enum Predictor {
    None,
    /// TIFF predictor 2, 8 or 16 bits per component.
    Tiff {
        row_bytes: usize,
        colors: usize,
        bytes_per_sample: usize,
    },
    /// PNG predictors (10-15): a filter-type byte before every row.
    Png {
        row_bytes: usize,
        bytes_per_pixel: usize,
    },
}

impl Predictor {
    fn new(doc: &Document, params: Option<&Dictionary>) -> Decoded<Predictor> {
        let Some(params) = params else {
            return Ok(Predictor::None);
        };
        let int = |key: &[u8], default: i64| get_int(doc, params, key).unwrap_or(default);
        let predictor = int(b"Predictor", 1);
        if predictor <= 1 {
            return Ok(Predictor::None);
        }
        let (colors, bpc, columns) = (
            int(b"Colors", 1),
            int(b"BitsPerComponent", 8),
            int(b"Columns", 1),
        );
        if !(1..=32).contains(&colors)
            || ![1, 2, 4, 8, 16].contains(&bpc)
            || !(1..=1 << 24).contains(&columns)
        {
            return undecodable("predictor parameters out of range");
        }
        // In range, so none of these products overflow.
        let (colors, bpc, columns) = (colors as usize, bpc as usize, columns as usize);
        let row_bytes = (columns * colors * bpc).div_ceil(8);
        match predictor {
            2 if bpc >= 8 => Ok(Predictor::Tiff {
                row_bytes,
                colors,
                bytes_per_sample: bpc / 8,
            }),
            10..=15 => Ok(Predictor::Png {
                row_bytes,
                bytes_per_pixel: (colors * bpc).div_ceil(8),
            }),
            _ => undecodable(format!("unsupported predictor {predictor} at {bpc} bits")),
        }
    }

    /// The bytes of predicted data needed for `cap` bytes of output.
    fn encoded_cap(&self, cap: usize) -> Decoded<usize> {
        match self {
            Predictor::Png { row_bytes, .. } => cap
                .div_ceil(*row_bytes)
                .checked_mul(row_bytes + 1)
                .ok_or_else(|| Skip::Undecodable("predicted data size overflows".into())),
            _ => Ok(cap),
        }
    }

    fn apply(&self, mut data: Vec<u8>, cap: usize) -> Decoded<Vec<u8>> {
        match *self {
            Predictor::None => Ok(data),
            Predictor::Tiff {
                row_bytes,
                colors,
                bytes_per_sample,
            } => {
                let step = colors * bytes_per_sample;
                for row in data.chunks_mut(row_bytes) {
                    if bytes_per_sample == 1 {
                        for i in step..row.len() {
                            row[i] = row[i].wrapping_add(row[i - step]);
                        }
                    } else {
                        // 16-bit samples, big-endian.
                        let mut i = step;
                        while i + 1 < row.len() {
                            let left = u16::from_be_bytes([row[i - step], row[i - step + 1]]);
                            let here = u16::from_be_bytes([row[i], row[i + 1]]);
                            let sum = here.wrapping_add(left).to_be_bytes();
                            row[i] = sum[0];
                            row[i + 1] = sum[1];
                            i += 2;
                        }
                    }
                }
                Ok(data)
            }
            Predictor::Png {
                row_bytes,
                bytes_per_pixel,
            } => png_unpredict(&data, row_bytes, bytes_per_pixel, cap),
        }
    }
}

/// Undoes PNG row filters. A partial last row is dropped.
fn png_unpredict(data: &[u8], row_bytes: usize, bpp: usize, cap: usize) -> Decoded<Vec<u8>> {
    let stride = row_bytes + 1;
    let mut out = Vec::new();
    if out
        .try_reserve((data.len() / stride * row_bytes).min(cap))
        .is_err()
    {
        return undecodable("out of memory");
    }
    let mut prev = vec![0u8; row_bytes];
    let mut cur = vec![0u8; row_bytes];
    for chunk in data.chunks_exact(stride) {
        if out.len() >= cap {
            break;
        }
        let Some((&kind, src)) = chunk.split_first() else {
            break;
        };
        cur.copy_from_slice(src);
        match kind {
            0 => {}
            1 => {
                for i in bpp..row_bytes {
                    cur[i] = cur[i].wrapping_add(cur[i - bpp]);
                }
            }
            2 => {
                for (c, p) in cur.iter_mut().zip(&prev) {
                    *c = c.wrapping_add(*p);
                }
            }
            3 => {
                for i in 0..row_bytes {
                    let left = if i >= bpp { u16::from(cur[i - bpp]) } else { 0 };
                    cur[i] = cur[i].wrapping_add(((left + u16::from(prev[i])) / 2) as u8);
                }
            }
            4 => {
                for i in 0..row_bytes {
                    let (left, up_left) = if i >= bpp {
                        (cur[i - bpp], prev[i - bpp])
                    } else {
                        (0, 0)
                    };
                    cur[i] = cur[i].wrapping_add(paeth(left, prev[i], up_left));
                }
            }
            _ => return undecodable(format!("bad PNG predictor row type {kind}")),
        }
        out.extend_from_slice(&cur);
        std::mem::swap(&mut prev, &mut cur);
    }
    out.truncate(cap);
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let (ia, ib, ic) = (i16::from(a), i16::from(b), i16::from(c));
    let p = ia + ib - ic;
    let (pa, pb, pc) = ((p - ia).abs(), (p - ib).abs(), (p - ic).abs());
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

// ---------------------------------------------------------------------------
// Images

fn decode_image(doc: &Document, stream: &Stream, max_pixels: u64) -> Decoded<PageImage> {
    let dict = &stream.dict;
    let dimension = |key: &[u8]| {
        get_int(doc, dict, key)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v > 0)
    };
    let (Some(width), Some(height)) = (dimension(b"Width"), dimension(b"Height")) else {
        return undecodable("missing or bad /Width or /Height");
    };
    check_pixels(width, height, max_pixels)?;

    let filters = filters(doc, dict)?;
    let (codec, pre) = match filters.split_last() {
        Some((last, pre)) if is_codec(last.name) => (Some(last), pre),
        _ => (None, filters.as_slice()),
    };
    if let Some(f) = pre.iter().find(|f| is_codec(f.name)) {
        return undecodable(format!(
            "/{} is not the last filter",
            String::from_utf8_lossy(f.name)
        ));
    }
    let mask = get_bool(doc, dict, b"ImageMask").unwrap_or(false);
    // Encoded image data should be smaller than its pixels; this only stops
    // an absurd stream in front of a JPEG or fax decoder.
    let encoded_cap = usize::try_from(
        u64::from(width)
            .saturating_mul(u64::from(height))
            .saturating_mul(4)
            .saturating_add(1 << 20),
    )
    .unwrap_or(usize::MAX);
    match codec.map(|f| f.name) {
        None => samples_image(doc, stream, &filters, width, height, mask),
        Some(b"DCTDecode") => {
            if mask {
                return undecodable("a JPEG image mask");
            }
            if let Some(cs) = get(doc, dict, b"ColorSpace") {
                // Lab, Separation, DeviceN...: leptonica would read the
                // samples as gray, RGB or CMYK.
                colour_space(doc, cs, false).map_err(Skip::Undecodable)?;
            }
            let data = run_filters(doc, &stream.content, pre, encoded_cap)?;
            let info = jpeg_info(&data)?;
            // The JPEG is returned as is, so leptonica must see the colours
            // the PDF means without help from /Decode. Leptonica reads a
            // 4-component JPEG with an Adobe marker as Adobe's inverted CMYK
            // (and one without as something else), which is what the PDF
            // means only when /Decode inverts every component; otherwise it
            // reads a negative (checked on the corpus's cmyk.pdf).
            let decode_ok = match info.components {
                1 | 3 => default_decode(doc, dict, usize::from(info.components)),
                4 => {
                    info.adobe
                        && decode_pairs(doc, dict, 4)
                            .is_some_and(|p| p.iter().all(|&(lo, hi)| lo == 1.0 && hi == 0.0))
                }
                n => return undecodable(format!("{n}-component JPEG")),
            };
            if !decode_ok {
                return undecodable(format!(
                    "{}-component JPEG (Adobe marker: {}) that leptonica would read in other colours",
                    info.components, info.adobe
                ));
            }
            let (w, h) = (info.width, info.height);
            check_pixels(w, h, max_pixels)?;
            Ok(PageImage {
                data,
                width: w,
                height: h,
                format: "jpeg",
            })
        }
        Some(b"CCITTFaxDecode") => {
            let data = run_filters(doc, &stream.content, pre, encoded_cap)?;
            ccitt_image(
                doc,
                dict,
                codec.and_then(|f| f.params),
                data,
                width,
                height,
                mask,
                max_pixels,
            )
        }
        Some(other) => undecodable(format!("/{} image", String::from_utf8_lossy(other))),
    }
}

/// Filters that decode to pixels rather than to bytes.
fn is_codec(name: &[u8]) -> bool {
    matches!(
        name,
        b"DCTDecode" | b"CCITTFaxDecode" | b"JBIG2Decode" | b"JPXDecode" | b"Crypt"
    )
}

fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Decoded<()> {
    // u32 x u32 always fits in u64.
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(Skip::OverLimit(format!(
            "an embedded image is {width}x{height} pixels, over the limit of {max_pixels} (ocr.max_pixels)"
        )));
    }
    Ok(())
}

/// The colour model of an image's samples.
enum Colours {
    Gray,
    Rgb,
    Cmyk,
    /// A palette already converted to gray (1 byte per entry) or RGB (3).
    Indexed {
        gray: bool,
        hival: u8,
        palette: Vec<u8>,
    },
}

impl Colours {
    fn components(&self) -> usize {
        match self {
            Colours::Gray | Colours::Indexed { .. } => 1,
            Colours::Rgb => 3,
            Colours::Cmyk => 4,
        }
    }
}

/// Reads a `/ColorSpace`; the error names what is not supported.
fn colour_space(doc: &Document, cs: &Object, allow_indexed: bool) -> Result<Colours, String> {
    let family = |name: &[u8]| match name {
        b"DeviceGray" | b"G" | b"CalGray" => Ok(Colours::Gray),
        b"DeviceRGB" | b"RGB" | b"CalRGB" => Ok(Colours::Rgb),
        b"DeviceCMYK" | b"CMYK" => Ok(Colours::Cmyk),
        other => Err(format!("/{} colour space", String::from_utf8_lossy(other))),
    };
    let array = match deref(doc, cs) {
        Some(Object::Name(name)) => return family(name),
        Some(Object::Array(array)) => array,
        _ => return Err("malformed /ColorSpace".into()),
    };
    let Some(Object::Name(kind)) = array.first().and_then(|o| deref(doc, o)) else {
        return Err("malformed /ColorSpace".into());
    };
    let arg = |i: usize| array.get(i).and_then(|o| deref(doc, o));
    match kind.as_slice() {
        b"ICCBased" => {
            let Some(Object::Stream(profile)) = arg(1) else {
                return Err("ICCBased colour space without a profile".into());
            };
            match get_int(doc, &profile.dict, b"N") {
                Some(1) => Ok(Colours::Gray),
                Some(3) => Ok(Colours::Rgb),
                Some(4) => Ok(Colours::Cmyk),
                // Only a device space is taken as /Alternate: a profile
                // naming itself must not recurse forever.
                _ => match get_name(doc, &profile.dict, b"Alternate") {
                    Some(alternate) => family(alternate),
                    None => Err("ICCBased colour space with a bad /N".into()),
                },
            }
        }
        b"Indexed" | b"I" if allow_indexed => {
            let base = colour_space(doc, arg(1).unwrap_or(&Object::Null), false)?;
            let hival = arg(2)
                .and_then(as_int)
                .and_then(|v| u8::try_from(v).ok())
                .ok_or("Indexed colour space with a bad hival")?;
            let entries = usize::from(hival) + 1;
            let needed = entries * base.components();
            let mut lookup = match arg(3) {
                Some(Object::String(bytes, _)) => bytes.clone(),
                Some(Object::Stream(s)) => decode_bytes(doc, s, needed)
                    .map_err(|_| String::from("Indexed palette stream cannot be decoded"))?,
                _ => return Err("Indexed colour space without a palette".into()),
            };
            // A short palette is padded with black, as renderers do.
            lookup.resize(needed, 0);
            let (gray, palette) = match base {
                Colours::Gray => (true, lookup),
                Colours::Rgb => (false, lookup),
                Colours::Cmyk => (
                    false,
                    lookup.chunks_exact(4).flat_map(cmyk_to_rgb).collect(),
                ),
                Colours::Indexed { .. } => return Err("nested Indexed colour space".into()),
            };
            Ok(Colours::Indexed {
                gray,
                hival,
                palette,
            })
        }
        // [/DeviceGray] and the like.
        other if array.len() == 1 => family(other),
        // CalGray and CalRGB are arrays with a parameter dictionary.
        other @ (b"CalGray" | b"CalRGB") => family(other),
        other => Err(format!("/{} colour space", String::from_utf8_lossy(other))),
    }
}

/// A naive conversion: no colour management, which OCR does not need.
fn cmyk_to_rgb(cmyk: &[u8]) -> [u8; 3] {
    let [c, m, y, k] = [0, 1, 2, 3].map(|i| u16::from(cmyk.get(i).copied().unwrap_or(0)));
    let ink = |v: u16| ((255 - v) * (255 - k) / 255) as u8;
    [ink(c), ink(m), ink(y)]
}

/// The `/Decode` array as (min, max) pairs, one per component, when it has
/// the right length.
fn decode_pairs(doc: &Document, dict: &Dictionary, components: usize) -> Option<Vec<(f32, f32)>> {
    let Some(Object::Array(values)) = get(doc, dict, b"Decode") else {
        return None;
    };
    if values.len() != components * 2 {
        return None;
    }
    let numbers: Option<Vec<f32>> = values
        .iter()
        .map(|v| deref(doc, v).and_then(as_number))
        .collect();
    Some(numbers?.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}

/// Whether `/Decode` is absent or the identity [0 1 0 1 ...].
fn default_decode(doc: &Document, dict: &Dictionary, components: usize) -> bool {
    decode_pairs(doc, dict, components)
        .is_none_or(|pairs| pairs.iter().all(|&(lo, hi)| lo == 0.0 && hi == 1.0))
}

/// Whether `/Decode` maps the single component of a 1-bit image backwards
/// ([1 0]).
fn inverted_decode(doc: &Document, dict: &Dictionary) -> bool {
    decode_pairs(doc, dict, 1).is_some_and(|p| p.first().is_some_and(|&(lo, hi)| lo > hi))
}

/// An image from raw (possibly Flate/LZW/...-compressed) samples, as a PNM.
fn samples_image(
    doc: &Document,
    stream: &Stream,
    filters: &[Filter],
    width: u32,
    height: u32,
    mask: bool,
) -> Decoded<PageImage> {
    let dict = &stream.dict;
    let bpc = match get_int(doc, dict, b"BitsPerComponent") {
        None if mask => 1,
        Some(b @ (1 | 2 | 4 | 8 | 16)) if !mask || b == 1 => b as u32,
        _ => return undecodable("unsupported /BitsPerComponent"),
    };
    let colours = if mask {
        Colours::Gray
    } else {
        let Some(cs) = get(doc, dict, b"ColorSpace") else {
            return undecodable("an image without a /ColorSpace");
        };
        colour_space(doc, cs, true).map_err(Skip::Undecodable)?
    };
    let components = colours.components();
    // Rows are byte-aligned. Sizes in u64: width x 4 x 16 bits fits easily.
    let row_bits = u64::from(width) * components as u64 * u64::from(bpc);
    let row_bytes = row_bits.div_ceil(8);
    let expected = row_bytes
        .checked_mul(u64::from(height))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Skip::Undecodable("image size overflows".into()))?;
    let row_bytes = row_bytes as usize; // <= expected, so it fits
    let samples = run_filters(doc, &stream.content, filters, expected)?;
    if samples.len() < expected {
        return undecodable(format!(
            "the image data is {} bytes, {expected} expected",
            samples.len()
        ));
    }
    let rows = samples.chunks_exact(row_bytes);

    if bpc == 1 && matches!(colours, Colours::Gray) {
        // PBM P4 rows are byte-aligned like PDF ones; PBM's 1 is black. For a
        // gray image 0 is black unless /Decode is [1 0]; for a mask 0 paints
        // (in the fill colour, taken as black) unless /Decode is [1 0].
        let invert = !inverted_decode(doc, dict);
        let mut out = pnm_buffer("P4", width, height, expected)?;
        for row in rows {
            out.extend(row.iter().map(|&b| if invert { !b } else { b }));
        }
        return Ok(PageImage {
            data: out,
            width,
            height,
            format: "pnm",
        });
    }

    // 16-bit samples keep their high byte and are then handled as 8-bit.
    let (step, levels) = if bpc == 16 {
        (2, 256)
    } else {
        (1, 1usize << bpc)
    };
    let level_bits = if bpc == 16 { 8 } else { bpc };
    let max_level = (levels - 1) as f32;
    let pairs = decode_pairs(doc, dict, components);
    // Per component, sample level -> output byte (or palette index).
    let luts: Vec<Vec<u8>> = (0..components)
        .map(|c| {
            let (lo, hi) = match (&colours, pairs.as_ref().and_then(|p| p.get(c))) {
                (_, Some(&pair)) => pair,
                (Colours::Indexed { .. }, None) => (0.0, max_level),
                (_, None) => (0.0, 1.0),
            };
            (0..levels)
                .map(|level| {
                    let v = lo + level as f32 * (hi - lo) / max_level;
                    match &colours {
                        Colours::Indexed { hival, .. } => {
                            v.round().clamp(0.0, f32::from(*hival)) as u8
                        }
                        _ => (v.clamp(0.0, 1.0) * 255.0).round() as u8,
                    }
                })
                .collect()
        })
        .collect();
    let (magic, channels) = match &colours {
        Colours::Gray | Colours::Indexed { gray: true, .. } => ("P5", 1),
        _ => ("P6", 3),
    };
    let body = usize::try_from(u64::from(width) * u64::from(height) * channels)
        .map_err(|_| Skip::Undecodable("image size overflows".into()))?;
    let mut out = pnm_buffer(magic, width, height, body)?;
    let samples_per_row = width as usize * components;
    let mut row_levels: Vec<u8> = Vec::with_capacity(samples_per_row);
    let mut pixel = [0u8; 4];
    for row in rows {
        row_levels.clear();
        unpack_row(row, level_bits, step, samples_per_row, &mut row_levels);
        for samples in row_levels.chunks_exact(components) {
            for (c, &level) in samples.iter().enumerate() {
                pixel[c] = luts[c].get(usize::from(level)).copied().unwrap_or(0);
            }
            match &colours {
                Colours::Gray | Colours::Rgb => out.extend_from_slice(&pixel[..components]),
                Colours::Cmyk => out.extend_from_slice(&cmyk_to_rgb(&pixel)),
                Colours::Indexed { gray, palette, .. } => {
                    let size = if *gray { 1 } else { 3 };
                    let start = usize::from(pixel[0]) * size;
                    match palette.get(start..start + size) {
                        Some(entry) => out.extend_from_slice(entry),
                        None => out.extend(std::iter::repeat_n(0, size)),
                    }
                }
            }
        }
    }
    Ok(PageImage {
        data: out,
        width,
        height,
        format: "pnm",
    })
}

/// Appends the first `count` samples of a row, as levels, to `out`: `bits`
/// per sample below 8, otherwise every `step`-th byte (the high byte of
/// 16-bit samples).
fn unpack_row(row: &[u8], bits: u32, step: usize, count: usize, out: &mut Vec<u8>) {
    if bits == 8 {
        out.extend(row.iter().step_by(step).take(count));
        return;
    }
    let per_byte = (8 / bits) as usize;
    let mask = (1u8 << bits) - 1;
    for &byte in row {
        for k in 0..per_byte {
            if out.len() == count {
                return;
            }
            let shift = 8 - bits * (k as u32 + 1);
            out.push((byte >> shift) & mask);
        }
    }
}

/// A PNM header, with room for `body` bytes of pixels after it.
fn pnm_buffer(magic: &str, width: u32, height: u32, body: usize) -> Decoded<Vec<u8>> {
    let header = match magic {
        "P4" => format!("P4\n{width} {height}\n"),
        _ => format!("{magic}\n{width} {height}\n255\n"),
    };
    let mut out = Vec::new();
    if out
        .try_reserve_exact(header.len().saturating_add(body))
        .is_err()
    {
        return undecodable("out of memory");
    }
    out.extend_from_slice(header.as_bytes());
    Ok(out)
}

/// What leptonica will make of a JPEG: its frame size, its number of
/// components, and whether it has an Adobe (APP14) marker.
struct JpegInfo {
    width: u32,
    height: u32,
    components: u8,
    adobe: bool,
}

/// Reads the JPEG's markers up to its first scan.
fn jpeg_info(data: &[u8]) -> Decoded<JpegInfo> {
    if !data.starts_with(&[0xff, 0xd8]) {
        return undecodable("DCT data is not a JPEG file");
    }
    let mut frame: Option<(u32, u32, u8)> = None;
    let mut adobe = false;
    let mut i = 2;
    loop {
        // Markers may be preceded by any number of 0xff fill bytes.
        if data.get(i) != Some(&0xff) {
            return undecodable("JPEG markers are damaged");
        }
        while data.get(i) == Some(&0xff) {
            i += 1;
        }
        let Some(&marker) = data.get(i) else {
            return undecodable("JPEG ends before its first scan");
        };
        i += 1;
        match marker {
            // Markers without a length.
            0x01 | 0xd0..=0xd8 => continue,
            0xd9 => return undecodable("JPEG ends before its first scan"),
            0xda => break,
            _ => {}
        }
        let Some(&[hi, lo]) = data.get(i..i + 2) else {
            return undecodable("JPEG ends before its first scan");
        };
        let length = usize::from(u16::from_be_bytes([hi, lo]));
        if length < 2 {
            return undecodable("JPEG markers are damaged");
        }
        let body = data.get(i + 2..i + length).unwrap_or_default();
        // SOF0-SOF15, except DHT (c4), JPG (c8) and DAC (cc).
        let is_frame = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
        if is_frame && frame.is_none() {
            let Some(&[precision, h1, h0, w1, w0, components]) = body.get(..6) else {
                return undecodable("JPEG frame header is cut short");
            };
            if precision != 8 {
                return undecodable(format!("{precision}-bit JPEG"));
            }
            let height = u32::from(u16::from_be_bytes([h1, h0]));
            let width = u32::from(u16::from_be_bytes([w1, w0]));
            frame = Some((width, height, components));
        }
        // libjpeg's test: APP14 with at least 12 bytes starting "Adobe".
        if marker == 0xee && body.len() >= 12 && body.starts_with(b"Adobe") {
            adobe = true;
        }
        i += length;
    }
    let Some((width, height, components)) = frame else {
        return undecodable("JPEG has no frame header before its scan");
    };
    if width == 0 || height == 0 {
        // Height 0 means a DNL marker gives it, which libjpeg refuses.
        return undecodable("JPEG without a size in its frame header");
    }
    Ok(JpegInfo {
        width,
        height,
        components,
        adobe,
    })
}

/// CCITT fax data wrapped in a single-strip little-endian TIFF.
#[allow(clippy::too_many_arguments)]
fn ccitt_image(
    doc: &Document,
    dict: &Dictionary,
    params: Option<&Dictionary>,
    data: Vec<u8>,
    width: u32,
    height: u32,
    mask: bool,
    max_pixels: u64,
) -> Decoded<PageImage> {
    if !mask {
        let bpc = get_int(doc, dict, b"BitsPerComponent").unwrap_or(1);
        let gray = match get(doc, dict, b"ColorSpace") {
            None => true,
            Some(cs) => matches!(colour_space(doc, cs, false), Ok(Colours::Gray)),
        };
        if bpc != 1 || !gray {
            return undecodable("CCITT data that is not a 1-bit gray image");
        }
    }
    let param_int =
        |key: &[u8], default: i64| params.and_then(|p| get_int(doc, p, key)).unwrap_or(default);
    let param_bool = |key: &[u8]| params.and_then(|p| get_bool(doc, p, key)).unwrap_or(false);
    let k = param_int(b"K", 0);
    // The fax data is coded for /Columns (default 1728), which the image's
    // /Width should equal; leptonica decodes what the TIFF says.
    let Some(columns) = u32::try_from(param_int(b"Columns", 1728))
        .ok()
        .filter(|&c| c > 0)
    else {
        return undecodable("bad CCITT /Columns");
    };
    check_pixels(columns, height, max_pixels)?;
    if columns != width {
        // Renderers lay the rows out at /Width; no single TIFF is that image.
        return undecodable(format!(
            "CCITT /Columns {columns} differs from /Width {width}"
        ));
    }
    let byte_align = param_bool(b"EncodedByteAlign");
    // libtiff decodes black runs to 1 bits, which WhiteIsZero shows black.
    // The PDF shows black runs black when /BlackIs1 is false with the default
    // /Decode, or true with /Decode [1 0] (for masks: black runs are painted
    // under the same two conditions).
    let black_is_1 = param_bool(b"BlackIs1");
    let photometric: u32 = if black_is_1 == inverted_decode(doc, dict) {
        0
    } else {
        1
    };
    // libtiff's Group 3 decoder needs EOL codes (11 zero bits then a 1) to
    // find rows; data that starts with one has them, /EndOfLine or not.
    let leading_zeros = data
        .iter()
        .position(|&b| b != 0)
        .and_then(|i| data.get(i).map(|b| i * 8 + b.leading_zeros() as usize));
    let has_eol = leading_zeros.is_some_and(|z| z >= 11);
    // (compression, option tag, option value)
    let (compression, options): (u32, Option<(u16, u32)>) = if k < 0 {
        if byte_align {
            // TIFF cannot say that G4 rows are byte-aligned; libtiff would
            // read the fill bits as codes and produce garbage.
            return undecodable("byte-aligned CCITT G4");
        }
        (4, Some((293, 0)))
    } else if has_eol {
        // T4Options: bit 0 = 2-D coding, bit 2 = fill bits before EOLs.
        (
            3,
            Some((292, u32::from(k > 0) | if byte_align { 4 } else { 0 })),
        )
    } else if k == 0 && byte_align {
        // Modified Huffman with byte-aligned rows and no EOLs.
        (2, None)
    } else {
        return undecodable("CCITT G3 data without EOL codes");
    };
    let Ok(data_len) = u32::try_from(data.len()) else {
        return undecodable("CCITT data over 4 GB");
    };
    let mut entries: Vec<(u16, u16, u32)> = vec![
        (256, 4, columns), // ImageWidth, LONG
        (257, 4, height),  // ImageLength
        (258, 3, 1),       // BitsPerSample, SHORT
        (259, 3, compression),
        (262, 3, photometric),
        (266, 3, 1),        // FillOrder: most significant bit first
        (273, 4, 0),        // StripOffsets, set below
        (277, 3, 1),        // SamplesPerPixel
        (278, 4, height),   // RowsPerStrip
        (279, 4, data_len), // StripByteCounts
    ];
    if let Some((tag, value)) = options {
        entries.push((tag, 4, value));
    }
    // Header (8), entry count (2), entries (12 each), next-IFD offset (4).
    let ifd_len = 2 + entries.len() * 12 + 4;
    let data_offset = (8 + ifd_len) as u32;
    let mut tiff = Vec::new();
    if tiff.try_reserve_exact(8 + ifd_len + data.len()).is_err() {
        return undecodable("out of memory");
    }
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        let value = if tag == 273 { data_offset } else { value };
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&kind.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        // A SHORT value sits in the first two bytes of the value field, which
        // little-endian u32 bytes already do.
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&data);
    Ok(PageImage {
        data: tiff,
        width: columns,
        height,
        format: "tiff-ccitt",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pdf_extract::{Dictionary, Object, Stream};

    /// A document with one page tree node holding `resources`, one page with
    /// `contents`, and the given extra objects.
    fn doc_with(
        objects: Vec<(ObjectId, Object)>,
        resources: Dictionary,
        contents: &[u8],
    ) -> (Document, ObjectId) {
        let mut doc = Document::with_version("1.7");
        for (id, object) in objects {
            doc.objects.insert(id, object);
        }
        let content_id = doc.add_object(Stream::new(Dictionary::new(), contents.to_vec()));
        let pages_id = doc.new_object_id();
        let page_id = doc.add_object(Dictionary::from_iter([
            ("Type", Object::Name(b"Page".to_vec())),
            ("Parent", Object::Reference(pages_id)),
            ("Contents", Object::Reference(content_id)),
        ]));
        doc.objects.insert(
            pages_id,
            Object::Dictionary(Dictionary::from_iter([
                ("Type", Object::Name(b"Pages".to_vec())),
                ("Kids", Object::Array(vec![Object::Reference(page_id)])),
                ("Count", Object::Integer(1)),
                ("Resources", Object::Dictionary(resources)),
            ])),
        );
        (doc, page_id)
    }

    fn image(width: i64, height: i64, extra: Vec<(&str, Object)>, data: Vec<u8>) -> Object {
        let mut dict = Dictionary::from_iter([
            ("Type", Object::Name(b"XObject".to_vec())),
            ("Subtype", Object::Name(b"Image".to_vec())),
            ("Width", Object::Integer(width)),
            ("Height", Object::Integer(height)),
        ]);
        for (k, v) in extra {
            dict.set(k, v);
        }
        Object::Stream(Stream::new(dict, data))
    }

    fn name(n: &str) -> Object {
        Object::Name(n.as_bytes().to_vec())
    }

    fn xobjects(entries: &[(&str, ObjectId)]) -> Dictionary {
        let xobject: Dictionary = entries
            .iter()
            .map(|&(n, id)| (n, Object::Reference(id)))
            .collect();
        Dictionary::from_iter([("XObject", Object::Dictionary(xobject))])
    }

    #[test]
    fn lzw_example_from_the_pdf_spec() {
        let data = [0x80, 0x0b, 0x60, 0x50, 0x22, 0x0c, 0x0c, 0x85, 0x01];
        assert_eq!(lzw(&data, true, 100).ok().unwrap(), b"-----A---B");
        assert_eq!(lzw(&data, true, 3).ok().unwrap(), b"---");
    }

    #[test]
    fn png_predictors_are_undone() {
        // Two rows of 3 bytes, bpp 1: Sub then Up.
        let data = [1, 10, 1, 1, 2, 1, 1, 1];
        assert_eq!(
            png_unpredict(&data, 3, 1, 100).ok().unwrap(),
            [10, 11, 12, 11, 12, 13]
        );
    }

    #[test]
    fn ascii_filters() {
        assert_eq!(
            ascii_hex(b"48 65 6C6c6f7>", 100).ok().unwrap(),
            b"Hello\x70"
        );
        assert_eq!(
            ascii85(b"<~87cURD]i,\"Ebo7~>", 100).ok().unwrap(),
            b"Hello World"
        );
        assert_eq!(
            run_length(&[2, b'a', b'b', b'c', 254, b'x', 128], 100),
            b"abcxxx"
        );
    }

    #[test]
    fn do_names_skip_strings_and_inline_images() {
        let content =
            b"q (a /Fake Do) Tj /Im#31 Do BI /W 1 ID \x00Do EI Q /Fm0 Do /Im1 Do % /X Do\n";
        assert_eq!(drawn_names(content), vec![b"Im1".to_vec(), b"Fm0".to_vec()]);
    }

    #[test]
    fn gray_image_from_inherited_resources_with_predictor() {
        let img_id = (10, 0);
        let mut deflated = Vec::new();
        {
            use flate2::{Compression, write::ZlibEncoder};
            use std::io::Write;
            let mut e = ZlibEncoder::new(&mut deflated, Compression::default());
            // Two rows of 2 gray pixels with PNG Sub filters.
            e.write_all(&[1, 100, 5, 1, 200, 10]).unwrap();
            e.finish().unwrap();
        }
        let parms = Dictionary::from_iter([
            ("Predictor", Object::Integer(15)),
            ("Columns", Object::Integer(2)),
        ]);
        let img = image(
            2,
            2,
            vec![
                ("ColorSpace", name("DeviceGray")),
                ("BitsPerComponent", Object::Integer(8)),
                ("Filter", Object::Array(vec![name("FlateDecode")])),
                (
                    "DecodeParms",
                    Object::Array(vec![Object::Dictionary(parms)]),
                ),
            ],
            deflated,
        );
        let (doc, page) = doc_with(
            vec![(img_id, img)],
            xobjects(&[("Im0", img_id)]),
            b"/Im0 Do /Im0 Do",
        );
        let (images, bad) = page_images(&doc, page, 1000).unwrap();
        assert_eq!(bad, 0);
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].data, b"P5\n2 2\n255\n\x64\x69\xc8\xd2");
    }

    #[test]
    fn one_bit_gray_and_masks_become_pbm() {
        let (gray, mask, inverted) = ((10, 0), (11, 0), (12, 0));
        let objects = vec![
            (
                gray,
                image(
                    3,
                    1,
                    vec![
                        ("ColorSpace", name("DeviceGray")),
                        ("BitsPerComponent", Object::Integer(1)),
                    ],
                    vec![0b0100_0000],
                ),
            ),
            (
                mask,
                image(
                    3,
                    1,
                    vec![("ImageMask", Object::Boolean(true))],
                    vec![0b0100_0000],
                ),
            ),
            (
                inverted,
                image(
                    3,
                    1,
                    vec![
                        ("ImageMask", Object::Boolean(true)),
                        (
                            "Decode",
                            Object::Array(vec![Object::Integer(1), Object::Integer(0)]),
                        ),
                    ],
                    vec![0b0100_0000],
                ),
            ),
        ];
        let res = xobjects(&[("A", gray), ("B", mask), ("C", inverted)]);
        let (doc, page) = doc_with(objects, res, b"/A Do /B Do /C Do");
        let (images, bad) = page_images(&doc, page, 1000).unwrap();
        assert_eq!(bad, 0);
        let bodies: Vec<&[u8]> = images
            .iter()
            .map(|i| &i.data[b"P4\n3 1\n".len()..])
            .collect();
        assert_eq!(
            bodies,
            [&[0b1011_1111u8][..], &[0b1011_1111], &[0b0100_0000]]
        );
    }

    #[test]
    fn indexed_and_cmyk_become_rgb() {
        let (indexed, cmyk) = ((10, 0), (11, 0));
        let palette = Object::String(
            vec![255, 0, 0, 0, 0, 255],
            pdf_extract::StringFormat::Hexadecimal,
        );
        let cs = Object::Array(vec![
            name("Indexed"),
            name("DeviceRGB"),
            Object::Integer(1),
            palette,
        ]);
        let objects = vec![
            (
                indexed,
                image(
                    2,
                    1,
                    vec![("ColorSpace", cs), ("BitsPerComponent", Object::Integer(1))],
                    vec![0b0100_0000],
                ),
            ),
            (
                cmyk,
                image(
                    1,
                    1,
                    vec![
                        ("ColorSpace", name("DeviceCMYK")),
                        ("BitsPerComponent", Object::Integer(8)),
                    ],
                    vec![0, 255, 255, 0],
                ),
            ),
        ];
        let (doc, page) = doc_with(
            objects,
            xobjects(&[("I", indexed), ("C", cmyk)]),
            b"/I Do /C Do",
        );
        let (images, _) = page_images(&doc, page, 1000).unwrap();
        assert_eq!(images[0].data, b"P6\n2 1\n255\n\xff\x00\x00\x00\x00\xff");
        assert_eq!(images[1].data, b"P6\n1 1\n255\n\xff\x00\x00");
    }

    #[test]
    fn forms_are_followed_with_bounded_depth_and_cycles() {
        let (img, f1, f2, f3) = ((10, 0), (11, 0), (12, 0), (13, 0));
        let form = |res: Dictionary, content: &[u8]| {
            let dict = Dictionary::from_iter([
                ("Subtype", name("Form")),
                ("Resources", Object::Dictionary(res)),
            ]);
            Object::Stream(Stream::new(dict, content.to_vec()))
        };
        let objects = vec![
            (
                img,
                image(
                    1,
                    1,
                    vec![
                        ("ColorSpace", name("DeviceGray")),
                        ("BitsPerComponent", Object::Integer(8)),
                    ],
                    vec![7],
                ),
            ),
            // f1 draws the image and f2; f2 draws f1 again (a cycle) and f3,
            // which is one level too deep.
            (
                f1,
                form(xobjects(&[("Im", img), ("F", f2)]), b"/Im Do /F Do"),
            ),
            (
                f2,
                form(
                    xobjects(&[("Back", f1), ("Deep", f3)]),
                    b"/Back Do /Deep Do",
                ),
            ),
            (f3, form(xobjects(&[("Im", img)]), b"/Im Do")),
        ];
        let (doc, page) = doc_with(objects, xobjects(&[("F1", f1)]), b"/F1 Do");
        let (images, bad) = page_images(&doc, page, 1000).unwrap();
        assert_eq!((images.len(), bad), (1, 1));
    }

    #[test]
    fn pixel_limit_is_checked_before_decoding() {
        let img = (10, 0);
        // The data is garbage: the size check must come first.
        let objects = vec![(
            img,
            image(
                35000,
                35000,
                vec![("Filter", name("FlateDecode"))],
                vec![1, 2, 3],
            ),
        )];
        let (doc, page) = doc_with(objects, xobjects(&[("Im", img)]), b"/Im Do");
        let err = page_images(&doc, page, 100_000_000).unwrap_err();
        assert!(err.contains("35000x35000"), "{err}");
    }

    #[test]
    fn unsupported_and_damaged_images_are_counted() {
        let (jbig2, short, odd) = ((10, 0), (11, 0), (12, 0));
        let objects = vec![
            (
                jbig2,
                image(8, 8, vec![("Filter", name("JBIG2Decode"))], vec![0; 8]),
            ),
            (
                short,
                image(
                    8,
                    8,
                    vec![
                        ("ColorSpace", name("DeviceGray")),
                        ("BitsPerComponent", Object::Integer(8)),
                    ],
                    vec![0; 10],
                ),
            ),
            (
                odd,
                image(
                    8,
                    8,
                    vec![
                        ("ColorSpace", name("Lab")),
                        ("BitsPerComponent", Object::Integer(8)),
                    ],
                    vec![0; 192],
                ),
            ),
        ];
        let (doc, page) = doc_with(
            objects,
            xobjects(&[("A", jbig2), ("B", short), ("C", odd)]),
            b"/A Do /B Do /C Do",
        );
        assert_eq!(page_images(&doc, page, 1000).unwrap().1, 3);
    }

    #[test]
    fn ccitt_tiff_header() {
        let img = (10, 0);
        let parms =
            Dictionary::from_iter([("K", Object::Integer(-1)), ("Columns", Object::Integer(16))]);
        let objects = vec![(
            img,
            image(
                16,
                4,
                vec![
                    ("Filter", name("CCITTFaxDecode")),
                    ("DecodeParms", Object::Dictionary(parms)),
                    ("BitsPerComponent", Object::Integer(1)),
                    ("ColorSpace", name("DeviceGray")),
                ],
                vec![0xaa; 5],
            ),
        )];
        let (doc, page) = doc_with(objects, xobjects(&[("Im", img)]), b"/Im Do");
        let (images, _) = page_images(&doc, page, 1000).unwrap();
        let tiff = &images[0].data;
        assert_eq!(images[0].format, "tiff-ccitt");
        assert_eq!(&tiff[..4], b"II*\0");
        let entries = u16::from_le_bytes([tiff[8], tiff[9]]) as usize;
        let offset = 8 + 2 + entries * 12 + 4;
        assert_eq!(&tiff[offset..], &[0xaa; 5]);
        // Compression 4, WhiteIsZero.
        let value = |tag: u16| {
            (0..entries)
                .map(|i| &tiff[10 + i * 12..22 + i * 12])
                .find(|e| u16::from_le_bytes([e[0], e[1]]) == tag)
                .map(|e| u32::from_le_bytes([e[8], e[9], e[10], e[11]]))
        };
        assert_eq!(
            (value(259), value(262), value(273)),
            (Some(4), Some(0), Some(offset as u32))
        );
    }

    /// A JPEG header: SOI, optional APP14 Adobe, SOF0, SOS.
    fn jpeg_header(width: u16, height: u16, components: u8, adobe: bool) -> Vec<u8> {
        let mut j = vec![0xff, 0xd8];
        if adobe {
            j.extend_from_slice(&[0xff, 0xee, 0, 14]);
            j.extend_from_slice(b"Adobe\0\x64\0\0\0\0\x02");
        }
        let [w1, w0] = width.to_be_bytes();
        let [h1, h0] = height.to_be_bytes();
        j.extend_from_slice(&[
            0xff,
            0xc0,
            0,
            8 + 3 * components,
            8,
            h1,
            h0,
            w1,
            w0,
            components,
        ]);
        for c in 0..components {
            j.extend_from_slice(&[c + 1, 0x11, 0]);
        }
        j.extend_from_slice(&[0xff, 0xda, 0, 2]);
        j
    }

    #[test]
    fn jpegs_pass_through_unless_leptonica_would_misread_them() {
        let (gray, cmyk, cmyk_decode, big) = ((10, 0), (11, 0), (12, 0), (13, 0));
        let dct = || ("Filter", name("DCTDecode"));
        let inverted = Object::Array([1, 0, 1, 0, 1, 0, 1, 0].map(Object::Integer).to_vec());
        let objects = vec![
            (gray, image(8, 8, vec![dct()], jpeg_header(8, 8, 1, false))),
            (cmyk, image(8, 8, vec![dct()], jpeg_header(8, 8, 4, true))),
            (
                cmyk_decode,
                image(
                    8,
                    8,
                    vec![dct(), ("Decode", inverted)],
                    jpeg_header(8, 8, 4, true),
                ),
            ),
        ];
        let res = xobjects(&[("G", gray), ("C", cmyk), ("D", cmyk_decode)]);
        let (doc, page) = doc_with(objects, res, b"/G Do /C Do /D Do");
        let (images, bad) = page_images(&doc, page, 1000).unwrap();
        assert_eq!((images.len(), bad), (2, 1));
        assert!(images.iter().all(|i| i.format == "jpeg" && i.width == 8));

        // The JPEG's own size counts, not the one the PDF claims.
        let objects = vec![(
            big,
            image(8, 8, vec![dct()], jpeg_header(60000, 60000, 1, false)),
        )];
        let (doc, page) = doc_with(objects, xobjects(&[("B", big)]), b"/B Do");
        assert!(
            page_images(&doc, page, 1000)
                .unwrap_err()
                .contains("60000x60000")
        );
    }
}
