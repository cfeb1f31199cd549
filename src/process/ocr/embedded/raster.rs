//! Image XObjects to leptonica-readable bytes: colour spaces, samples to a
//! PNM (PBM, PGM or PPM), JPEG header info and when a JPEG may pass through
//! as it is, and CCITT fax data wrapped in a TIFF.

use pdf_extract::{Dictionary, Document, Object, Stream};

use super::dict::{as_int, as_number, deref, get, get_bool, get_int, get_name};
use super::filters::{Filter, decode_bytes, filters, run_filters};
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
