//! CCITT G3/G4 fax data, wrapped in a one-page TIFF that leptonica reads.

use pdf_extract::{Dictionary, Document};

use super::dict::{get, get_bool, get_int};
use super::raster::check_pixels;
use super::samples::{Colours, colour_space, inverted_decode};
use super::{Decoded, PageImage, undecodable};

/// CCITT fax data wrapped in a single-strip little-endian TIFF.
#[allow(clippy::too_many_arguments)]
pub(super) fn ccitt_image(
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
