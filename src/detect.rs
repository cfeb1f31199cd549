//! What a file is, by its first bytes, never by its name; and whether a file
//! of a format with a known ending looks complete.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};

use serde::Serialize;

/// A detected file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pdf,
    Png,
    Jpeg,
    Tiff,
    Bmp,
    Gif,
    Webp,
    Pnm,
    /// Plain text (UTF-8, or Latin-1/Windows-1252): `.txt`, `.md`, `.csv`...
    Text,
    /// Something quire does not read; the string says what it looks like.
    Unsupported(&'static str),
}

impl Kind {
    /// The name stored in `documents.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Png => "png",
            Kind::Jpeg => "jpeg",
            Kind::Tiff => "tiff",
            Kind::Bmp => "bmp",
            Kind::Gif => "gif",
            Kind::Webp => "webp",
            Kind::Pnm => "pnm",
            Kind::Text => "text",
            Kind::Unsupported(what) => what,
        }
    }

    /// Parses a stored name back.
    pub fn from_stored(s: &str) -> Kind {
        [
            Kind::Pdf,
            Kind::Png,
            Kind::Jpeg,
            Kind::Tiff,
            Kind::Bmp,
            Kind::Gif,
            Kind::Webp,
            Kind::Pnm,
            Kind::Text,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .unwrap_or(Kind::Unsupported(unsupported_name(s)))
    }

    /// A file extension for the stored copy.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Text => "txt",
            Kind::Unsupported(_) => "bin",
            k => k.as_str(),
        }
    }

    /// True for raster image formats that leptonica reads.
    pub fn is_image(self) -> bool {
        !matches!(self, Kind::Pdf | Kind::Text | Kind::Unsupported(_))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The static name for an unsupported kind read back from the database.
fn unsupported_name(s: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "empty",
        "zip",
        "gzip",
        "text",
        "html",
        "xml",
        "postscript",
        "rtf",
        "ole2",
        "jpeg2000",
        "jbig2",
        "unknown",
    ];
    NAMES.iter().copied().find(|n| *n == s).unwrap_or("unknown")
}

/// Detects the kind from the first bytes of a file (16 are enough for the
/// supported formats; more helps to tell text from binary).
pub fn detect(head: &[u8]) -> Kind {
    let starts = |m: &[u8]| head.starts_with(m);
    if head.is_empty() {
        return Kind::Unsupported("empty");
    }
    // A PDF header may be preceded by junk; readers accept it within the first KiB.
    if find(&head[..head.len().min(1024)], b"%PDF-").is_some() {
        return Kind::Pdf;
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        Kind::Png
    } else if starts(b"\xff\xd8\xff") {
        Kind::Jpeg
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Kind::Tiff
    } else if starts(b"BM") && head.len() >= 14 {
        Kind::Bmp
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Kind::Gif
    } else if starts(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        Kind::Webp
    } else if head.len() >= 3
        && head[0] == b'P'
        && (b'1'..=b'6').contains(&head[1])
        && head[2].is_ascii_whitespace()
    {
        Kind::Pnm
    } else if starts(b"\0\0\0\x0cjP  ") || starts(b"\xff\x4f\xff\x51") {
        Kind::Unsupported("jpeg2000")
    } else if starts(b"\x97JB2") {
        Kind::Unsupported("jbig2")
    } else if starts(b"PK\x03\x04") {
        Kind::Unsupported("zip")
    } else if starts(b"\x1f\x8b") {
        Kind::Unsupported("gzip")
    } else if starts(b"%!PS") {
        Kind::Unsupported("postscript")
    } else if starts(b"{\\rtf") {
        Kind::Unsupported("rtf")
    } else if starts(b"\xd0\xcf\x11\xe0") {
        Kind::Unsupported("ole2")
    } else if starts(b"<?xml") {
        Kind::Unsupported("xml")
    } else if head.len() > 5 && head[..5].eq_ignore_ascii_case(b"<!doc") || starts(b"<html") {
        Kind::Unsupported("html")
    } else if looks_like_text(head) {
        Kind::Text
    } else {
        Kind::Unsupported("unknown")
    }
}

/// True for the start of a plain text file: no NUL, and UTF-8 (a character
/// cut at the end of `head` aside) or, failing that, Windows-1252 with no
/// control characters but tab, line ends and form feed, and none of the five
/// bytes Windows-1252 leaves undefined.
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    let controls_ok = |b: &u8| *b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c);
    match std::str::from_utf8(head) {
        Ok(_) => head.iter().all(controls_ok),
        // Cut inside a character within the last 3 bytes: still UTF-8.
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => {
            head[..e.valid_up_to()].iter().all(controls_ok)
        }
        Err(_) => head
            .iter()
            .all(|b| controls_ok(b) && !matches!(b, 0x81 | 0x8d | 0x8f | 0x90 | 0x9d)),
    }
}

/// Byte offset of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether a file of `kind` looks complete: a PDF ends with `%%EOF` (within its
/// last KiB, as readers allow), a PNG with its IEND chunk, a JPEG with an EOI
/// marker. Other formats carry no reliable trailer and count as complete.
/// Only meant to keep half-copied files out; a complete but broken file is the
/// OCR step's business.
pub fn looks_complete<R: Read + Seek>(kind: Kind, file: &mut R) -> std::io::Result<bool> {
    let len = file.seek(SeekFrom::End(0))?;
    let tail_len = len.min(1024);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0; tail_len as usize];
    file.read_exact(&mut tail)?;
    Ok(match kind {
        Kind::Pdf => find(&tail, b"%%EOF").is_some(),
        Kind::Png => tail.ends_with(b"IEND\xae\x42\x60\x82"),
        // Some writers pad after EOI; look in the last few bytes.
        Kind::Jpeg => find(&tail[tail.len().saturating_sub(32)..], b"\xff\xd9").is_some(),
        Kind::Unsupported("empty") => false,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn detects_by_content() {
        assert_eq!(detect(b"%PDF-1.7\n"), Kind::Pdf);
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n\0\0"), Kind::Png);
        assert_eq!(detect(b"\xff\xd8\xff\xe0"), Kind::Jpeg);
        assert_eq!(detect(b"II*\0\x08\0"), Kind::Tiff);
        assert_eq!(detect(b"MM\0*\0\0"), Kind::Tiff);
        assert_eq!(detect(b"GIF89a...."), Kind::Gif);
        assert_eq!(detect(b"RIFF\0\0\0\0WEBPVP8 "), Kind::Webp);
        assert_eq!(detect(b"P6\n12 12\n255\n"), Kind::Pnm);
        assert_eq!(detect(b"BM\0\0\0\0\0\0\0\0\0\0\0\0\0\0"), Kind::Bmp);
        assert_eq!(detect(b""), Kind::Unsupported("empty"));
        assert_eq!(detect(b"hello world"), Kind::Text);
        assert_eq!(
            detect("caf\u{e9}, na\u{ef}ve\n\x0cpage two".as_bytes()),
            Kind::Text
        );
        // Latin-1 / Windows-1252: not UTF-8, still text.
        assert_eq!(detect(b"caf\xe9 \x93quoted\x94\r\n"), Kind::Text);
        // A UTF-8 character cut at the end of the first KiB.
        let mut cut = "a".repeat(1023).into_bytes();
        cut.push(0xc3);
        assert_eq!(detect(&cut), Kind::Text);
        assert_eq!(detect(b"\x01\x02binary\x03"), Kind::Unsupported("unknown"));
        assert_eq!(detect(b"PK\x03\x04rest"), Kind::Unsupported("zip"));
        assert_eq!(detect(&[0u8, 1, 2, 3, 0xfe]), Kind::Unsupported("unknown"));
    }

    #[test]
    fn stored_names_round_trip() {
        for k in [
            Kind::Pdf,
            Kind::Tiff,
            Kind::Unsupported("zip"),
            Kind::Unsupported("empty"),
        ] {
            assert_eq!(Kind::from_stored(k.as_str()), k);
        }
    }

    #[test]
    fn half_written_files_are_not_complete() {
        let pdf = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n".to_vec();
        assert!(looks_complete(Kind::Pdf, &mut Cursor::new(&pdf)).unwrap());
        assert!(!looks_complete(Kind::Pdf, &mut Cursor::new(&pdf[..20])).unwrap());
        let png = b"\x89PNG\r\n\x1a\n....IEND\xae\x42\x60\x82".to_vec();
        assert!(looks_complete(Kind::Png, &mut Cursor::new(&png)).unwrap());
        assert!(!looks_complete(Kind::Png, &mut Cursor::new(&png[..10])).unwrap());
        let jpg = b"\xff\xd8\xff\xe0....\xff\xd9".to_vec();
        assert!(looks_complete(Kind::Jpeg, &mut Cursor::new(&jpg)).unwrap());
        assert!(!looks_complete(Kind::Jpeg, &mut Cursor::new(&jpg[..6])).unwrap());
    }
}
