//! Raster images: page counts and sizes read from headers (before anything is
//! decoded, so that pixel bombs are refused cheaply), and decoding of one page.

use tesseract::plumbing::leptonica_plumbing::Pix;
use tesseract::plumbing::leptonica_plumbing::memory::RefCountedExclusive;
use tesseract::plumbing::leptonica_sys;

use std::path::Path;

use crate::detect::Kind;

/// The (width, height) of each page of an image file.
pub fn page_sizes(kind: Kind, data: &[u8]) -> Result<Vec<(u64, u64)>, String> {
    if kind == Kind::Tiff {
        return tiff_pages(data);
    }
    let (mut format, mut w, mut h, mut bps, mut spp, mut cmap) = (0, 0, 0, 0, 0, 0);
    // SAFETY: leptonica reads `data.len()` bytes and writes the out-parameters.
    let rc = unsafe {
        leptonica_sys::pixReadHeaderMem(
            data.as_ptr(),
            data.len(),
            &mut format,
            &mut w,
            &mut h,
            &mut bps,
            &mut spp,
            &mut cmap,
        )
    };
    if rc != 0 || w <= 0 || h <= 0 {
        // BITMAPINFOHEADER's compression field: leptonica reads only BI_RGB.
        let bmp_compression = data
            .get(30..34)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if kind == Kind::Bmp && bmp_compression.is_some_and(|c| c != 0) {
            return Err(
                "compressed BMP files (RLE or bitfields) cannot be read; convert it to PNG \
                 (e.g. `convert scan.bmp scan.png`) and drop that"
                    .into(),
            );
        }
        return Err(format!(
            "the {kind} image is damaged or truncated: its header cannot be read"
        ));
    }
    Ok(vec![(w as u64, h as u64)])
}

/// Decodes page `index` (0-based) of an image file.
pub fn read_page(
    kind: Kind,
    data: &[u8],
    index: usize,
) -> Result<RefCountedExclusive<Pix>, String> {
    if kind == Kind::Tiff {
        // pixReadMem reads only the first page of a TIFF.
        // SAFETY: leptonica reads `data.len()` bytes; a null result is checked.
        let ptr = unsafe { leptonica_sys::pixReadMemTiff(data.as_ptr(), data.len(), index as i32) };
        if ptr.is_null() {
            return Err(format!(
                "TIFF page {} cannot be decoded (damaged, or over the memory limit ocr.max_memory_mb)",
                index + 1
            ));
        }
        // SAFETY: a fresh Pix owned by nobody else.
        return Ok(unsafe { RefCountedExclusive::new(Pix::new_from_pointer(ptr)) });
    }
    if kind == Kind::Pnm
        && let Some(pix) = read_binary_pnm(data)
    {
        return pix;
    }
    Pix::read_mem(data)
        .map_err(|_| {
            format!(
                "the {kind} image cannot be decoded (damaged or truncated, or over the memory limit ocr.max_memory_mb)"
            )
        })
}

/// Decodes a binary PBM, PGM or PPM of 8-bit samples (P4, P5, P6 with a
/// maxval of 255: what pdftoppm and the PDF image decoder hand the OCR)
/// into a Pix, row by row; `None` for any other PNM, which leptonica reads.
///
/// leptonica's PNM reader takes every sample through a `fread` of its own:
/// a quarter of the OCR child's time on a scanned PDF whose pages are
/// Flate images, and as much on every page pdftoppm renders.
fn read_binary_pnm(data: &[u8]) -> Option<Result<RefCountedExclusive<Pix>, String>> {
    let (magic, w, h, maxval, body) = parse_pnm(data)?;
    let fits = |n: i64| (1..=i64::from(i32::MAX)).contains(&n);
    if (magic != b'4' && maxval != 255) || !fits(w) || !fits(h) {
        return None;
    }
    let (w, h) = (w as usize, h as usize);
    let (depth, row_bytes) = match magic {
        b'4' => (1, w.div_ceil(8)),
        b'5' => (8, w),
        _ => (32, w.checked_mul(3)?),
    };
    if body.len() / row_bytes.max(1) < h {
        return Some(Err("the PNM image is truncated".into()));
    }
    // SAFETY: pixCreate returns a zeroed w x h image (or null, checked) of
    // `wpl` 32-bit words per row; each row written here stays inside its
    // own `wpl` words, and the Pix is handed to its owner at the end.
    unsafe {
        let pix = leptonica_sys::pixCreate(w as i32, h as i32, depth);
        if pix.is_null() {
            return Some(Err(format!(
                "a {w}x{h} page cannot be allocated (over the memory limit ocr.max_memory_mb?)"
            )));
        }
        let wpl = leptonica_sys::pixGetWpl(pix) as usize;
        if leptonica_sys::pixGetHeight(pix) as usize != h {
            let mut pix = pix;
            leptonica_sys::pixDestroy(&mut pix);
            return Some(Err(format!("a {w}x{h} page cannot be made")));
        }
        let words = std::slice::from_raw_parts_mut(leptonica_sys::pixGetData(pix), wpl * h);
        for (line, row) in words
            .chunks_exact_mut(wpl)
            .zip(body.chunks_exact(row_bytes))
        {
            if depth == 32 {
                // leptonica's RGB pixel: red in the high byte, then green, blue.
                for (word, px) in line.iter_mut().zip(row.chunks_exact(3)) {
                    *word = u32::from_be_bytes([px[0], px[1], px[2], 0]);
                }
            } else {
                // 1- and 8-bit rows are packed as PNM packs them, the first
                // pixel in a word's high bits; PBM's 1 is black, as leptonica's.
                for (word, bytes) in line.iter_mut().zip(row.chunks(4)) {
                    let mut b = [0; 4];
                    b[..bytes.len()].copy_from_slice(bytes);
                    *word = u32::from_be_bytes(b);
                }
            }
        }
        Some(Ok(RefCountedExclusive::new(Pix::new_from_pointer(pix))))
    }
}

/// The samples of a 1-, 8- or 32-bit Pix as a binary PNM's body holds them
/// (rows byte-aligned; 1-bit packed, 1 black, the last byte's spare bits
/// as the Pix has them; 32-bit as RGB triplets), with
/// its depth, width and height; `None` for other depths. The inverse of
/// [`read_binary_pnm`], and for the same reason: leptonica's PNM writer
/// takes every sample through an `fwrite` of its own.
pub(super) fn pix_samples(pix: &Pix) -> Option<(i32, u32, u32, Vec<u8>)> {
    let raw = super::upright::raw(pix);
    // SAFETY: a valid Pix holds `wpl` words for each of its `h` rows.
    let (depth, w, h, wpl, words) = unsafe {
        let (w, h) = (
            leptonica_sys::pixGetWidth(raw),
            leptonica_sys::pixGetHeight(raw),
        );
        let wpl = leptonica_sys::pixGetWpl(raw);
        let data = leptonica_sys::pixGetData(raw);
        if data.is_null() || w <= 0 || h <= 0 || wpl <= 0 {
            return None;
        }
        let words = std::slice::from_raw_parts(data, wpl as usize * h as usize);
        (
            leptonica_sys::pixGetDepth(raw),
            w as usize,
            h as usize,
            wpl as usize,
            words,
        )
    };
    let row_bytes = match depth {
        1 => w.div_ceil(8),
        8 => w,
        32 => 3 * w,
        _ => return None,
    };
    let mut out = Vec::new();
    out.try_reserve_exact(row_bytes * h).ok()?;
    for line in words.chunks_exact(wpl) {
        if depth == 32 {
            for word in &line[..w] {
                out.extend_from_slice(&word.to_be_bytes()[..3]);
            }
        } else {
            // Whole words, then the row's last bytes: never past the
            // reservation, which would double the buffer.
            let (whole, rest) = (row_bytes / 4, row_bytes % 4);
            for word in &line[..whole] {
                out.extend_from_slice(&word.to_be_bytes());
            }
            if rest > 0 {
                out.extend_from_slice(&line[whole].to_be_bytes()[..rest]);
            }
        }
    }
    Some((depth, w as u32, h as u32, out))
}

/// A binary PNM's type (`4`, `5` or `6`), width, height, maxval (1 for a
/// PBM) and samples; `None` when its header cannot be read.
pub(super) fn parse_pnm(data: &[u8]) -> Option<(u8, i64, i64, i64, &[u8])> {
    let (&[b'P', magic @ (b'4' | b'5' | b'6')], rest) = data.split_first_chunk::<2>()? else {
        return None;
    };
    let fields = if magic == b'4' { 2 } else { 3 };
    let mut values = vec![];
    let mut i = 0;
    while values.len() < fields {
        // Whitespace and comment lines (leptonica writes one) between fields.
        loop {
            match rest.get(i)? {
                b'#' => {
                    while *rest.get(i)? != b'\n' {
                        i += 1;
                    }
                }
                c if c.is_ascii_whitespace() => i += 1,
                _ => break,
            }
        }
        let start = i;
        while rest.get(i)?.is_ascii_digit() {
            i += 1;
        }
        values.push(
            std::str::from_utf8(&rest[start..i])
                .ok()?
                .parse::<i64>()
                .ok()?,
        );
    }
    let maxval = values.get(2).copied().unwrap_or(1);
    // One whitespace byte ends the header.
    Some((magic, values[0], values[1], maxval, rest.get(i + 1..)?))
}

/// Decodes page `page` (1-based) of the image file `path` and writes it to
/// `out` as PNG, scaled down to at most `width` pixels wide.
pub fn render_png(
    path: &Path,
    kind: Kind,
    page: usize,
    width: u32,
    out: &Path,
) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let pages = page_sizes(kind, &data)?.len();
    if page == 0 || page > pages {
        return Err(format!("the image has {pages} page(s), not {page}"));
    }
    let pix = read_page(kind, &data, page - 1)?;
    let cannot = || "the page cannot be converted to PNG".to_string();
    // SAFETY: each call reads a valid Pix; the Pix made here and the buffer
    // pixWriteMem allocates are freed here.
    let png = unsafe {
        let raw = super::upright::raw(&pix);
        let w = leptonica_sys::pixGetWidth(raw);
        let mut scaled = if w > width as i32 {
            leptonica_sys::pixScaleToSize(raw, width as i32, 0)
        } else {
            leptonica_sys::pixClone(raw)
        };
        if scaled.is_null() {
            return Err(cannot());
        }
        let (mut bytes, mut size) = (std::ptr::null_mut(), 0usize);
        let rc = leptonica_sys::pixWriteMem(
            &mut bytes,
            &mut size,
            scaled,
            leptonica_sys::IFF_PNG as i32,
        );
        leptonica_sys::pixDestroy(&mut scaled);
        if rc != 0 || bytes.is_null() {
            return Err(cannot());
        }
        let png = std::slice::from_raw_parts(bytes, size).to_vec();
        leptonica_sys::lept_free(bytes.cast());
        png
    };
    std::fs::write(out, png).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// Walks a TIFF's IFD chain for each page's ImageWidth and ImageLength.
fn tiff_pages(data: &[u8]) -> Result<Vec<(u64, u64)>, String> {
    let bad = || "the TIFF file is damaged or truncated".to_string();
    let le = data.starts_with(b"II");
    let u16_at = |o: usize| {
        data.get(o..o + 2).map(|b| {
            if le {
                u16::from_le_bytes([b[0], b[1]])
            } else {
                u16::from_be_bytes([b[0], b[1]])
            }
        })
    };
    let u32_at = |o: usize| {
        data.get(o..o + 4).map(|b| {
            let a = [b[0], b[1], b[2], b[3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        })
    };
    let mut pages = vec![];
    let mut offset = u32_at(4).ok_or_else(bad)? as usize;
    let mut seen = std::collections::HashSet::new();
    while offset != 0 {
        if !seen.insert(offset) || pages.len() > 100_000 {
            return Err("the TIFF file's page chain loops".into());
        }
        let count = u16_at(offset).ok_or_else(bad)? as usize;
        let (mut w, mut h) = (0u64, 0u64);
        for i in 0..count {
            let e = offset + 2 + i * 12;
            let tag = u16_at(e).ok_or_else(bad)?;
            let ty = u16_at(e + 2).ok_or_else(bad)?;
            let value = if ty == 3 {
                u16_at(e + 8).map(u64::from)
            } else {
                u32_at(e + 8).map(u64::from)
            };
            match tag {
                256 => w = value.ok_or_else(bad)?,
                257 => h = value.ok_or_else(bad)?,
                _ => {}
            }
        }
        pages.push((w, h));
        offset = u32_at(offset + 2 + count * 12).ok_or_else(bad)? as usize;
    }
    if pages.is_empty() {
        return Err(bad());
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNM of pseudo-random samples: `P{magic}`, w x h, maxval 255.
    fn pnm(magic: u8, w: usize, h: usize, seed: u32) -> Vec<u8> {
        let row = match magic {
            b'4' => w.div_ceil(8),
            b'5' => w,
            _ => 3 * w,
        };
        let mut out = match magic {
            b'4' => format!("P4\n{w} {h}\n"),
            _ => format!("P{}\n{w} {h}\n255\n", magic as char),
        }
        .into_bytes();
        let mut x = seed;
        out.extend((0..row * h).map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        }));
        out
    }

    #[test]
    fn binary_pnms_decode_as_leptonica_decodes_them() {
        // Widths that end rows mid-word and mid-byte.
        for (magic, w, h) in [(b'4', 37, 5), (b'4', 64, 3), (b'5', 13, 7), (b'6', 9, 4)] {
            let data = pnm(magic, w, h, w as u32);
            let ours = read_binary_pnm(&data).expect("a plain binary PNM").unwrap();
            let theirs = Pix::read_mem(&data).unwrap();
            let mut same = 0;
            // SAFETY: both are valid images; pixEqual only reads them.
            let rc = unsafe {
                leptonica_sys::pixEqual(
                    super::super::upright::raw(&ours),
                    super::super::upright::raw(&theirs),
                    &mut same,
                )
            };
            assert_eq!((rc, same), (0, 1), "P{} {w}x{h}", magic as char);
        }
    }

    #[test]
    fn pnm_headers_parse() {
        assert_eq!(
            parse_pnm(b"P5\n3 2\n255\nabcdef"),
            Some((b'5', 3, 2, 255, &b"abcdef"[..]))
        );
        assert_eq!(
            parse_pnm(b"P4\n8 1\n\xff"),
            Some((b'4', 8, 1, 1, &b"\xff"[..]))
        );
        let commented = b"P6\n# written by leptonica\n1 1\n255\nRGB";
        assert_eq!(parse_pnm(commented), Some((b'6', 1, 1, 255, &b"RGB"[..])));
        assert_eq!(parse_pnm(b"P5\n3"), None);
    }

    #[test]
    fn samples_come_back_as_leptonicas_pnm_writer_writes_them() {
        for (magic, w, h) in [(b'4', 37, 5), (b'4', 64, 3), (b'5', 13, 7), (b'6', 9, 4)] {
            let pix = Pix::read_mem(&pnm(magic, w, h, 7)).unwrap();
            let (mut data, mut size) = (std::ptr::null_mut(), 0usize);
            // SAFETY: a valid Pix; the buffer leptonica allocates is freed here.
            let written = unsafe {
                let rc = leptonica_sys::pixWriteMemPnm(
                    &mut data,
                    &mut size,
                    super::super::upright::raw(&pix),
                );
                assert_eq!(rc, 0);
                let v = std::slice::from_raw_parts(data, size).to_vec();
                leptonica_sys::lept_free(data.cast());
                v
            };
            let (_, ww, wh, _, body) = parse_pnm(&written).unwrap();
            let (_, sw, sh, samples) = pix_samples(&pix).unwrap();
            assert_eq!((i64::from(sw), i64::from(sh)), (ww, wh));
            assert!(samples == body, "P{} {w}x{h}", magic as char);
            // Filled within its reservation, never regrown.
            assert_eq!(samples.capacity(), samples.len());
        }
    }

    #[test]
    fn other_pnms_are_left_to_leptonica_and_truncated_ones_refused() {
        assert!(read_binary_pnm(b"P5\n2 2\n65535\n").is_none());
        assert!(read_binary_pnm(b"P2\n2 2\n255\n0 0 0 0").is_none());
        assert!(read_binary_pnm(b"P5\n0 2\n255\n").is_none());
        // Either side past i32 is left to leptonica, never wrapped.
        assert!(read_binary_pnm(b"P5\n1 4294967297\n255\n\0").is_none());
        assert!(read_binary_pnm(b"P4\n4294967297 1\n\0").is_none());
        let mut cut = pnm(b'5', 10, 10, 1);
        cut.truncate(cut.len() - 1);
        assert!(read_binary_pnm(&cut).unwrap().is_err());
        // Read through read_page, a PNM leptonica cannot read is an error too.
        assert!(read_page(Kind::Pnm, &cut, 0).is_err());
    }
}
