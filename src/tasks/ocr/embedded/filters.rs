//! Stream decoding: a stream's filter chain (`/Filter` with `/DecodeParms`),
//! Flate with its output cap, LZW, ASCIIHex, ASCII85 and RunLength, and the
//! PNG and TIFF predictors. Every decoder stops at the bytes its caller needs.

use std::borrow::Cow;
use std::io::Read;

use pdf_extract::{Dictionary, Document, Object, Stream};

use super::dict::{deref, get, get_int};
use super::{Decoded, Skip, is_white, undecodable};

/// One stage of a stream's filter chain.
pub(super) struct Filter<'a> {
    pub(super) name: &'a [u8],
    pub(super) params: Option<&'a Dictionary>,
}

/// The stream's filters in decoding order, each with its `/DecodeParms`.
pub(super) fn filters<'a>(doc: &'a Document, dict: &'a Dictionary) -> Decoded<Vec<Filter<'a>>> {
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
pub(super) fn decode_bytes(doc: &Document, stream: &Stream, cap: usize) -> Decoded<Vec<u8>> {
    let filters = filters(doc, &stream.dict)?;
    run_filters(doc, &stream.content, &filters, cap)
}

/// Runs `input` through general-purpose filters. The last stage stops after
/// `cap` bytes of output (the bytes the caller needs); earlier stages, whose
/// output is compressed data, get a generous multiple of it.
pub(super) fn run_filters(
    doc: &Document,
    input: &[u8],
    filters: &[Filter],
    cap: usize,
) -> Decoded<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
