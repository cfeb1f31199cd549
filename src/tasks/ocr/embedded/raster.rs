//! Image XObjects to leptonica-readable bytes: which decoder an image needs
//! (samples to PNM in [`super::samples`], JPEG passed through after
//! [`super::jpeg`] checks it, CCITT wrapped in a TIFF by [`super::ccitt`]),
//! and the pixel bound every decoder keeps.

use pdf_extract::{Document, Stream};

use super::ccitt::ccitt_image;
use super::dict::{get, get_bool, get_int};
use super::filters::{filters, run_filters};
use super::jpeg::jpeg_info;
use super::samples::{colour_space, decode_pairs, default_decode, samples_image};
use super::{Decoded, PageImage, Skip, undecodable};

pub(super) fn decode_image(doc: &Document, stream: &Stream, max_pixels: u64) -> Decoded<PageImage> {
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

pub(super) fn check_pixels(width: u32, height: u32, max_pixels: u64) -> Decoded<()> {
    // u32 x u32 always fits in u64.
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(Skip::OverLimit(format!(
            "an embedded image is {width}x{height} pixels, over the limit of {max_pixels} (ocr.max_pixels)"
        )));
    }
    Ok(())
}
