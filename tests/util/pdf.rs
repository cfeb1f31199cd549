//! Writing small PDFs with known content: text-layer pages, full-page scans
//! (JPEG or Flate samples), or raw objects. Plain Rust with no other
//! dependency, so that the integration tests, the benchmarks and the unit
//! tests' fuzzing all use this one writer (`#[path]`-included there).

#![allow(dead_code)] // each includer uses a part

use std::path::Path;

/// Writes a PDF with a text layer: one page per entry, Helvetica.
pub fn text_pdf(path: &Path, pages: &[&str]) {
    std::fs::write(path, text_pdf_bytes(pages)).unwrap();
}

/// A PDF with a text layer: one page per entry, Helvetica.
pub fn text_pdf_bytes(pages: &[&str]) -> Vec<u8> {
    let pages: Vec<PdfPage> = pages.iter().map(|t| PdfPage::Text(t)).collect();
    pdf_bytes(&pages)
}

/// What one page of a generated PDF shows.
pub enum PdfPage<'a> {
    /// Lines of text in a text layer (Helvetica, US Letter).
    Text(&'a str),
    /// A 300-DPI scan drawn over the whole page, as a JPEG (DCTDecode) or as
    /// raw 8-bit grey samples (FlateDecode).
    Scan(Scan),
}

/// A 300-DPI scan of known text.
pub struct Scan {
    pub width: u32,
    pub height: u32,
    /// `/DCTDecode` or `/FlateDecode`.
    pub filter: &'static str,
    pub data: Vec<u8>,
}

/// Writes a PDF with the given pages.
pub fn write_pdf(path: &Path, pages: &[PdfPage]) {
    std::fs::write(path, pdf_bytes(pages)).unwrap();
}

/// A PDF with the given pages.
pub fn pdf_bytes(pages: &[PdfPage]) -> Vec<u8> {
    let mut objects: Vec<Vec<u8>> = vec![];
    let n = pages.len();
    // 1: catalog, 2: pages, 3: font, then (page, content, image) triples.
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 3 * i)).collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes());
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    for (i, page) in pages.iter().enumerate() {
        let (content, image, w_pt, h_pt) = match page {
            PdfPage::Text(text) => {
                let mut c = String::from("BT /F1 12 Tf 72 720 Td 14 TL\n");
                for line in text.lines() {
                    // Tj then T* rather than the ' operator, which pdf-extract does not read.
                    c.push_str(&format!("({}) Tj T*\n", pdf_string(line)));
                }
                c.push_str("ET");
                (c, b"null".to_vec(), 612.0, 792.0)
            }
            PdfPage::Scan(s) => {
                let (w, h) = (s.width as f64 * 0.24, s.height as f64 * 0.24);
                let dict = format!(
                    "/Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter {}",
                    s.width, s.height, s.filter
                );
                (
                    format!("q {w} 0 0 {h} 0 0 cm /Im0 Do Q"),
                    stream(&dict, &s.data),
                    w,
                    h,
                )
            }
        };
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w_pt} {h_pt}] /Resources << /Font << /F1 3 0 R >> /XObject << /Im0 {} 0 R >> >> /Contents {} 0 R >>",
            6 + 3 * i,
            5 + 3 * i
        ).into_bytes());
        objects.push(stream("", content.as_bytes()));
        objects.push(image);
    }
    raw_pdf(&objects)
}

/// Escapes a line for a PDF string in WinAnsi (Latin-1 for the letters used here).
fn pdf_string(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '(' | ')' | '\\' => format!("\\{c}"),
            c if c.is_ascii() => c.to_string(),
            c if (c as u32) < 256 => format!("\\{:03o}", c as u32),
            _ => "?".into(),
        })
        .collect()
}

/// A PDF of the given objects, numbered from 1 (object 1 the catalog), with
/// a correct cross-reference table.
pub fn raw_pdf(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = vec![];
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for off in offsets {
        tail.push_str(&format!("{off:010} 00000 n \n"));
    }
    tail.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.extend_from_slice(tail.as_bytes());
    out
}

/// A stream object: `dict` entries plus /Length, then `data`.
pub fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut o = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    o.extend_from_slice(data);
    o.extend_from_slice(b"\nendstream");
    o
}
