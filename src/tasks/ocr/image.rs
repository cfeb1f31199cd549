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
    Pix::read_mem(data)
        .map_err(|_| {
            format!(
                "the {kind} image cannot be decoded (damaged or truncated, or over the memory limit ocr.max_memory_mb)"
            )
        })
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
