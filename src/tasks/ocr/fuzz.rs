//! Property tests (a bounded fuzz run in the normal suite) for what reads
//! untrusted bytes in-process: file-type detection and completeness, the TIFF
//! page walker, and per-page PDF handling (parse, text layer, page size and
//! rotation, embedded-image extraction). None may panic or hang on any input;
//! the OCR child would survive it, but a panic here is a bug. Failing inputs
//! are kept by proptest under proptest-regressions/ and replayed first.

use std::io::Cursor;

use proptest::prelude::*;

use super::{embedded, image, pdf};
// The tests' PDF writer, shared rather than copied.
#[path = "../../../tests/util/pdf.rs"]
mod pdfgen;
use crate::detect::{Kind, detect, looks_complete};
use pdfgen::{raw_pdf, stream};

/// A small valid PDF: a text page, a page with a raw grey image and one with
/// a Flate-compressed image, so mutations reach every code path.
fn sample_pdf() -> Vec<u8> {
    use std::io::Write;
    let raw: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
    let mut z = flate2::write::ZlibEncoder::new(vec![], flate2::Compression::fast());
    z.write_all(&raw).unwrap();
    let flate = z.finish().unwrap();
    let text = b"BT /F1 12 Tf 72 720 Td (Hello fuzzing world, twenty letters) Tj ET".to_vec();
    let draw = b"q 612 0 0 792 0 0 cm /Im0 Do Q".to_vec();
    let image = "/Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray /BitsPerComponent 8";
    raw_pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R 5 0 R 8 0 R] /Count 3 /MediaBox [0 0 612 792] >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> /Contents 4 0 R >>".to_vec(),
        stream("", &text),
        b"<< /Type /Page /Parent 2 0 R /Rotate 90 /Resources << /XObject << /Im0 7 0 R >> >> /Contents 6 0 R >>".to_vec(),
        stream("", &draw),
        stream(image, &raw),
        b"<< /Type /Page /Parent 2 0 R /Resources << /XObject << /Im0 9 0 R >> >> /Contents 6 0 R >>".to_vec(),
        stream(&format!("{image} /Filter /FlateDecode"), &flate),
    ])
}

/// Reads every page of `data` the way the OCR child does, short of OCR.
fn read_all_pages(data: &[u8]) {
    let Ok(doc) = pdf::Pdf::load(data) else {
        return;
    };
    for n in 1..=doc.page_count().min(16) as u32 {
        let _ = doc.text(n);
        let _ = pdf::render_dpi(doc.page_size(n), 300, 100_000_000);
        let _ = doc.rotation(n);
        if let Some(id) = doc.page_id(n) {
            let _ = embedded::page_images(doc.inner(), id, 100_000_000);
        }
    }
}

#[test]
fn the_sample_pdf_is_read_in_full() {
    let data = sample_pdf();
    let doc = pdf::Pdf::load(&data).unwrap();
    assert_eq!(doc.page_count(), 3);
    assert!(pdf::usable_text(&doc.text(1).unwrap()));
    assert_eq!(doc.rotation(2), 90);
    for n in [2, 3] {
        let (images, undecodable) =
            embedded::page_images(doc.inner(), doc.page_id(n).unwrap(), 100_000_000).unwrap();
        assert_eq!((images.len(), undecodable), (1, 0), "page {n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn detection_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let kind = detect(&bytes);
        let _ = looks_complete(kind, &mut Cursor::new(&bytes));
        if kind.is_image() {
            let _ = image::page_sizes(kind, &bytes);
        }
    }

    #[test]
    fn known_signatures_are_detected_whatever_follows(
        which in 0usize..5,
        tail in proptest::collection::vec(any::<u8>(), 16..256),
    ) {
        let (magic, kind): (&[u8], Kind) = [
            (&b"%PDF-1.7\n"[..], Kind::Pdf),
            (&b"\x89PNG\r\n\x1a\n"[..], Kind::Png),
            (&b"\xff\xd8\xff"[..], Kind::Jpeg),
            (&b"II*\0"[..], Kind::Tiff),
            (&b"MM\0*"[..], Kind::Tiff),
        ][which];
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&tail);
        prop_assert_eq!(detect(&bytes), kind);
        if kind == Kind::Tiff {
            // The IFD walker on garbage: an error or sizes, never a panic or a loop.
            let _ = image::page_sizes(kind, &bytes);
        }
    }

    #[test]
    fn damaged_pdfs_fail_per_page_without_panicking(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut data = sample_pdf();
        for (at, byte) in flips {
            let i = at.index(data.len());
            data[i] = byte;
        }
        if let Some(cut) = cut {
            data.truncate(cut.index(data.len()));
        }
        read_all_pages(&data);
    }
}
