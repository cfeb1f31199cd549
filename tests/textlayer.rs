//! Text layers read completely: PDFs drawing their lines with each of the
//! text operators (`Tj`, `TJ`, `'`, `"`, `T*`), and Ghostscript's `ps2pdf`
//! output, whose later lines pdf-extract alone loses. Checked against the
//! known lines and poppler's `pdftotext` on the same file.

use std::path::Path;
use std::process::Command;

use crate::util::{Env, cer, corpus, raw_pdf, stream};

/// A one-page PDF (Helvetica, US Letter) whose content stream is `ops`.
fn pdf_with_content(path: &Path, ops: &str) {
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
           /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_vec(),
        stream("", ops.as_bytes()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ];
    std::fs::write(path, raw_pdf(&objects)).unwrap();
}

/// poppler's reading of a whole PDF.
fn pdftotext(path: &Path) -> String {
    let out = Command::new("pdftotext")
        .arg(path)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// `quire process`, then the document's text, read from its text layer.
fn text_layer(env: &Env, pdf: &Path) -> String {
    env.ok(&["process", pdf.to_str().unwrap()]);
    let show = env.json(&["show", "1"]);
    assert_eq!(show["page_list"][0]["source"], "text", "{show}");
    env.ok(&["text", "1"])
}

const FIRST: &str = "This first line is long enough to run most of the way across the page";

#[test]
fn every_text_operator_is_read_like_poppler_reads_it() {
    let cases = [
        (
            "Tj and Td",
            format!(
                "BT /F1 11 Tf 72 700 Td ({FIRST}) Tj 0 -14 Td (second line by Tj) Tj 0 -14 Td (third line by Tj) Tj ET"
            ),
        ),
        (
            "TJ",
            format!(
                "BT /F1 11 Tf 72 700 Td [({FIRST})] TJ 0 -14 Td [(second line ) -250 (by TJ)] TJ 0 -14 Td [(third line by TJ)] TJ ET"
            ),
        ),
        (
            "quote",
            format!(
                "BT /F1 11 Tf 14 TL 72 700 Td ({FIRST}) Tj (second line by quote) ' (third line by quote) ' ET"
            ),
        ),
        (
            "double quote",
            format!(
                "BT /F1 11 Tf 14 TL 72 700 Td ({FIRST}) Tj 0 0 (second line by double quote) \" 0 0 (third line by double quote) \" ET"
            ),
        ),
        (
            "T*",
            format!(
                "BT /F1 11 Tf 14 TL 72 700 Td ({FIRST}) Tj T* (second line after T*) Tj T* (third line after T*) Tj ET"
            ),
        ),
    ];
    for (name, ops) in cases {
        let env = Env::new();
        let pdf = env.dir.path().join("ops.pdf");
        pdf_with_content(&pdf, &ops);
        let poppler = pdftotext(&pdf);
        assert!(
            poppler.contains("third line"),
            "{name}: poppler read {poppler:?}"
        );
        let ours = text_layer(&env, &pdf);
        let rate = cer(&poppler, &ours);
        assert!(
            rate < 0.02,
            "{name}: CER {rate} against pdftotext: {ours:?}"
        );
        assert!(ours.contains("third line"), "{name}: {ours:?}");
    }
}

#[test]
fn ghostscript_output_keeps_every_line() {
    let env = Env::new();
    let ps = env.dir.path().join("letter.ps");
    std::fs::write(
        &ps,
        format!(
            "%!PS\n/Helvetica findfont 11 scalefont setfont\n\
             72 700 moveto ({FIRST}) show\n\
             72 686 moveto (second line from ghostscript) show\n\
             72 672 moveto (third line from ghostscript) show\nshowpage\n"
        ),
    )
    .unwrap();
    let pdf = env.dir.path().join("letter.pdf");
    let ok = Command::new("ps2pdf").arg(&ps).arg(&pdf).status().unwrap();
    assert!(ok.success(), "ps2pdf (ghostscript) failed");
    let ours = text_layer(&env, &pdf);
    let want = format!("{FIRST} second line from ghostscript third line from ghostscript");
    let rate = cer(&want, &ours);
    assert!(rate < 0.01, "CER {rate}: {ours:?}");
}

/// `pdf` with its `startxref` offset pointing nowhere, as a file cut and
/// patched by some tool leaves it: lopdf refuses it; poppler and qpdf open it.
fn break_startxref(pdf: &[u8]) -> Vec<u8> {
    let at = pdf
        .windows(9)
        .rposition(|w| w == b"startxref")
        .expect("a startxref");
    let mut out = pdf[..at].to_vec();
    out.extend_from_slice(b"startxref\n999999\n%%EOF\n");
    out
}

#[test]
fn a_pdf_with_a_broken_cross_reference_is_repaired_and_read() {
    let env = Env::new();
    let good = env.dir.path().join("good.pdf");
    pdf_with_content(
        &good,
        &format!("BT /F1 11 Tf 72 700 Td ({FIRST}) Tj 0 -14 Td (the repaired line) Tj ET"),
    );
    let broken = env.dir.path().join("broken.pdf");
    std::fs::write(&broken, break_startxref(&std::fs::read(&good).unwrap())).unwrap();
    let text = text_layer(&env, &broken);
    assert!(text.contains("the repaired line"), "{text:?}");
    assert_eq!(env.json(&["show", "1"])["status"], "indexed");
}

#[test]
fn text_layer_pages_start_with_their_text_not_blank_lines() {
    let env = Env::new();
    env.ok(&["process", corpus("tagged.pdf").to_str().unwrap()]);
    let text = env.ok(&["text", "1", "--page", "1"]);
    assert!(text.starts_with("Table of Contents"), "{text:?}");
}
