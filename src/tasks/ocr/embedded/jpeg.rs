//! JPEG header info (size, components, Adobe inversion), to tell when a
//! JPEG may pass to leptonica as it is.

use super::{Decoded, undecodable};

/// What leptonica will make of a JPEG: its frame size, its number of
/// components, and whether it has an Adobe (APP14) marker.
pub(super) struct JpegInfo {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) components: u8,
    pub(super) adobe: bool,
}

/// Reads the JPEG's markers up to its first scan.
pub(super) fn jpeg_info(data: &[u8]) -> Decoded<JpegInfo> {
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
