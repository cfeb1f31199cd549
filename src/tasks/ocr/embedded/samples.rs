//! Raw image samples to a PNM (PBM, PGM or PPM) that leptonica reads: colour
//! spaces (gray, RGB, CMYK, indexed, with /Decode arrays) and bit depths.

use pdf_extract::{Dictionary, Document, Object, Stream};

use super::dict::{as_int, as_number, deref, get, get_int, get_name};
use super::filters::{Filter, decode_bytes, run_filters};
use super::{Decoded, PageImage, Skip, undecodable};

/// The colour model of an image's samples.
pub(super) enum Colours {
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
pub(super) fn colour_space(
    doc: &Document,
    cs: &Object,
    allow_indexed: bool,
) -> Result<Colours, String> {
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
pub(super) fn cmyk_to_rgb(cmyk: &[u8]) -> [u8; 3] {
    let [c, m, y, k] = [0, 1, 2, 3].map(|i| u16::from(cmyk.get(i).copied().unwrap_or(0)));
    let ink = |v: u16| ((255 - v) * (255 - k) / 255) as u8;
    [ink(c), ink(m), ink(y)]
}

/// The `/Decode` array as (min, max) pairs, one per component, when it has
/// the right length.
pub(super) fn decode_pairs(
    doc: &Document,
    dict: &Dictionary,
    components: usize,
) -> Option<Vec<(f32, f32)>> {
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
pub(super) fn default_decode(doc: &Document, dict: &Dictionary, components: usize) -> bool {
    decode_pairs(doc, dict, components)
        .is_none_or(|pairs| pairs.iter().all(|&(lo, hi)| lo == 0.0 && hi == 1.0))
}

/// Whether `/Decode` maps the single component of a 1-bit image backwards
/// ([1 0]).
pub(super) fn inverted_decode(doc: &Document, dict: &Dictionary) -> bool {
    decode_pairs(doc, dict, 1).is_some_and(|p| p.first().is_some_and(|&(lo, hi)| lo > hi))
}

/// An image from raw (possibly Flate/LZW/...-compressed) samples, as a PNM.
pub(super) fn samples_image(
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
    // The common case, 8-bit gray or RGB read as it is: the rows are the
    // PNM's body already. (Sample by sample this loop was most of a scanned
    // PDF's decode time, and slower still in the tests' debug builds.)
    let as_is = bpc == 8
        && matches!(colours, Colours::Gray | Colours::Rgb)
        && luts
            .iter()
            .all(|lut| lut.iter().enumerate().all(|(i, &v)| usize::from(v) == i));
    let mut row_levels: Vec<u8> = Vec::with_capacity(samples_per_row);
    let mut pixel = [0u8; 4];
    for row in rows {
        if as_is {
            out.extend_from_slice(&row[..samples_per_row]);
            continue;
        }
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
pub(super) fn unpack_row(row: &[u8], bits: u32, step: usize, count: usize, out: &mut Vec<u8>) {
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
pub(super) fn pnm_buffer(magic: &str, width: u32, height: u32, body: usize) -> Decoded<Vec<u8>> {
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
