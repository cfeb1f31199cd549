//! The searchable PDF handed back for every document: checked with the
//! tools a user would open it with (qpdf's structure check, poppler's text
//! extraction with word positions, poppler's rendering, `pdfimages`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::scans::{LINES, converted};
use crate::util::{Env, PdfPage, cer, scan, scanned_pdf, text_png, tiff_pages, wait_until};

/// Runs `program ARGS`, asserts success, returns stdout.
fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The searchable PDF recorded for document `id`, checked by `qpdf --check`.
fn output_of(env: &Env, id: u32) -> PathBuf {
    let shown = env.json(&["show", &id.to_string()]);
    let path = PathBuf::from(shown["searchable_pdf"].as_str().expect("a searchable PDF"));
    assert!(path.starts_with(env.data().join("output")), "{path:?}");
    tool("qpdf", &["--check", path.to_str().unwrap()]);
    path
}

fn pdf_text(pdf: &Path) -> String {
    tool("pdftotext", &[pdf.to_str().unwrap(), "-"])
}

fn page_count(pdf: &Path) -> usize {
    let info = tool("pdfinfo", &[pdf.to_str().unwrap()]);
    let line = info.lines().find(|l| l.starts_with("Pages:")).unwrap();
    line[6..].trim().parse().unwrap()
}

/// The box of `word` on the first page as `pdftotext -bbox` reports it (in
/// points from the top left of the page as displayed).
fn word_box(pdf: &Path, word: &str) -> [f64; 4] {
    let html = tool(
        "pdftotext",
        &["-bbox", "-f", "1", "-l", "1", pdf.to_str().unwrap(), "-"],
    );
    let line = html
        .lines()
        .find(|l| l.contains(&format!(">{word}</word>")))
        .unwrap_or_else(|| panic!("{word} is not in the text layer: {html}"));
    let attr = |name: &str| -> f64 {
        let at = line.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        line[at..].split('"').next().unwrap().parse().unwrap()
    };
    [attr("xMin"), attr("yMin"), attr("xMax"), attr("yMax")]
}

/// The first page of `pdf` rendered to gray pixels at 30 DPI.
fn render(pdf: &Path) -> Vec<u8> {
    let out = Command::new("pdftoppm")
        .args(["-r", "30", "-gray", "-f", "1", "-l", "1"])
        .arg(pdf)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn an_image_comes_back_as_a_pdf_whose_words_lie_on_the_page() {
    let env = Env::new();
    let upright = env.dir.path().join("upright.png");
    text_png(&upright, LINES);
    env.ok(&["process", upright.to_str().unwrap()]);
    let pdf = output_of(&env, 1);
    assert_eq!(pdf, env.data().join("output/upright.pdf"));
    assert_eq!(page_count(&pdf), 1);
    let rate = cer(&LINES.join(" "), &pdf_text(&pdf));
    assert!(rate < 0.01, "CER {rate}: {}", pdf_text(&pdf));
    // The page is the image's size at its 300 DPI: 2550 pixels = 612 points.
    let info = tool("pdfinfo", &[pdf.to_str().unwrap()]);
    assert!(info.contains("612 x "), "{info}");
    // "surplus" was drawn on the second line: text_png puts line n's
    // baseline at 150 + 110 n pixels, 36 + 26.4 n points.
    let [_, _, _, bottom] = word_box(&pdf, "surplus");
    assert!(
        (bottom - (36.0 + 26.4)).abs() < 4.0,
        "surplus ends at {bottom}"
    );
}

#[test]
fn turned_and_skewed_pages_get_their_words_where_the_reader_sees_them() {
    let env = Env::new();
    let upright = env.dir.path().join("upright.png");
    text_png(&upright, LINES);
    let sideways = converted(&upright, &["-rotate", "90"], "sideways.png");
    let turn = ["-background", "white", "-rotate", "3", "+repage"];
    let skewed = converted(&upright, &turn, "skewed.png");
    for file in [&upright, &sideways, &skewed] {
        env.ok(&["process", file.to_str().unwrap()]);
    }
    let straight = word_box(&output_of(&env, 1), "surplus");

    // Fed sideways: shown upright (/Rotate), the words exactly where the
    // upright page has them.
    let turned = output_of(&env, 2);
    let info = tool("pdfinfo", &[turned.to_str().unwrap()]);
    assert!(info.contains("Page rot:        270"), "{info}");
    assert_eq!(render(&turned).len(), render(&output_of(&env, 1)).len());
    let rate = cer(&LINES.join(" "), &pdf_text(&turned));
    assert!(rate < 0.01, "CER {rate}: {}", pdf_text(&turned));
    let got = word_box(&turned, "surplus");
    for i in 0..4 {
        assert!(
            (got[i] - straight[i]).abs() < 3.0,
            "{got:?} vs {straight:?}"
        );
    }

    // Skewed 3 degrees clockwise (the canvas grown to hold it): the word is
    // where the same turn about the page's centre takes it.
    let size = tool("identify", &["-format", "%w %h", skewed.to_str().unwrap()]);
    let (w, h) = size.trim().split_once(' ').unwrap();
    let (w, h) = (
        w.parse::<f64>().unwrap() * 0.24,
        h.parse::<f64>().unwrap() * 0.24,
    );
    let (cx, cy) = (
        (straight[0] + straight[2]) / 2.0,
        (straight[1] + straight[3]) / 2.0,
    );
    let page_height = 200.0 + 110.0 * LINES.len() as f64;
    let (dx, dy) = (cx - 306.0, cy - 0.24 * page_height / 2.0);
    let (sin, cos) = 3f64.to_radians().sin_cos();
    let want = (w / 2.0 + dx * cos - dy * sin, h / 2.0 + dx * sin + dy * cos);
    let got = word_box(&output_of(&env, 3), "surplus");
    let centre = ((got[0] + got[2]) / 2.0, (got[1] + got[3]) / 2.0);
    assert!(
        (centre.0 - want.0).abs() < 4.0 && (centre.1 - want.1).abs() < 4.0,
        "surplus at {centre:?}, expected {want:?}"
    );
}

#[test]
fn a_scanned_pdf_keeps_its_pages_and_images_and_gains_text() {
    let env = Env::new();
    let src = env.dir.path().join("scan.pdf");
    scanned_pdf(&src, 3);
    env.ok(&["process", src.to_str().unwrap()]);
    let pdf = output_of(&env, 1);
    assert_eq!(page_count(&pdf), 3);
    let text = pdf_text(&pdf);
    for n in 1..=3 {
        assert!(
            text.contains(&format!("scanned page number {n:03}")),
            "{text}"
        );
    }
    // The same images, byte for byte the same size (not re-encoded), and
    // the pages render the same: the text is invisible.
    let images = |p: &Path| tool("pdfimages", &["-list", p.to_str().unwrap()]);
    let strip = |list: String| -> Vec<String> {
        // Object numbers differ; keep page, size, colour, encoding, bytes.
        list.lines()
            .skip(2)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                [&f[..2], &f[3..10], &f[14..15]].concat().join(" ")
            })
            .collect()
    };
    assert_eq!(strip(images(&pdf)), strip(images(&src)));
    assert_eq!(render(&pdf), render(&src));
}

#[test]
fn pages_with_a_text_layer_are_left_as_they_are() {
    let env = Env::new();
    let src = env.dir.path().join("typed.pdf");
    let page = scan(env.dir.path(), &["one scanned page among typed ones"], true);
    crate::util::write_pdf(
        &src,
        &[
            PdfPage::Text("A typed page about invoices."),
            PdfPage::Scan(page),
        ],
    );
    env.ok(&["process", src.to_str().unwrap()]);
    let pdf = output_of(&env, 1);
    let text = pdf_text(&pdf);
    // The typed page's words once (no second text layer over them), the
    // scanned page's words read by OCR.
    assert_eq!(text.matches("invoices").count(), 1, "{text}");
    assert!(text.contains("one scanned page among typed ones"), "{text}");
    assert_eq!(render(&pdf), render(&src));
}

#[test]
fn every_page_of_a_tiff_becomes_a_page() {
    let env = Env::new();
    let tiff = env.dir.path().join("pages.tiff");
    tiff_pages(&tiff, 3);
    env.ok(&["process", tiff.to_str().unwrap()]);
    let pdf = output_of(&env, 1);
    assert_eq!(pdf.file_name().unwrap(), "pages.pdf");
    assert_eq!(page_count(&pdf), 3);
    for n in 1..=3 {
        let text = tool(
            "pdftotext",
            &[
                "-f",
                &n.to_string(),
                "-l",
                &n.to_string(),
                pdf.to_str().unwrap(),
                "-",
            ],
        );
        assert!(
            text.contains(&format!("tiff page number {n}")),
            "page {n}: {text}"
        );
    }
    // 1700 pixels at 200 DPI: 612 points.
    assert!(tool("pdfinfo", &[pdf.to_str().unwrap()]).contains("612 x 252"));
}

#[test]
fn names_never_clash_and_a_reprocessed_document_replaces_its_own_pdf() {
    let env = Env::new().set("QUIRE_OUTPUT_SIDECAR_TEXT", "true");
    let inbox_like = env.dir.path().join("in");
    std::fs::create_dir_all(&inbox_like).unwrap();
    let png = inbox_like.join("letter.png");
    text_png(&png, &["the first letter, written in spring"]);
    let other = inbox_like.join("other.png");
    text_png(&other, &["a second letter about the autumn"]);
    let jpg = converted(&other, &[], "letter.jpg");
    env.ok(&["process", png.to_str().unwrap()]);
    env.ok(&["process", jpg.to_str().unwrap()]);
    let first = output_of(&env, 1);
    let second = output_of(&env, 2);
    assert_eq!(first.file_name().unwrap(), "letter.pdf");
    assert_eq!(second.file_name().unwrap(), "letter (2).pdf");
    assert!(pdf_text(&second).contains("autumn"));
    let sidecar = std::fs::read_to_string(second.with_extension("txt")).unwrap();
    assert!(
        sidecar.contains("a second letter about the autumn"),
        "{sidecar}"
    );

    // Written again: the same file, no third name.
    env.ok(&["enqueue", "--reprocess", "1", "--type", "pdf"]);
    let daemon = env.serve(&["--workers", "1"]);
    wait_until("the PDF task to run again", || {
        env.app()
            .queue
            .tasks_of(1)
            .unwrap()
            .iter()
            .filter(|t| {
                t.task_type == quire::queue::TaskType::Pdf
                    && t.status == quire::queue::TaskStatus::Completed
            })
            .count()
            == 2
    });
    drop(daemon);
    assert_eq!(output_of(&env, 1), first);
    let mut names: Vec<_> = std::fs::read_dir(env.data().join("output"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".partial",
            "letter (2).pdf",
            "letter (2).txt",
            "letter.pdf",
            "letter.txt"
        ]
    );
}

#[test]
fn a_document_read_before_pdfs_gets_one_on_reprocess() {
    let env = Env::new().set("QUIRE_OUTPUT_SEARCHABLE_PDF", "false");
    let png = env.dir.path().join("old.png");
    text_png(&png, LINES);
    env.ok(&["process", png.to_str().unwrap()]);
    assert!(env.json(&["show", "1"])["searchable_pdf"].is_null());
    assert!(!env.data().join("output").exists());
    let tasks = env.app().queue.tasks_of(1).unwrap();
    assert!(
        tasks
            .iter()
            .all(|t| t.task_type != quire::queue::TaskType::Pdf)
    );

    let env = Env {
        extra: vec![],
        ..env
    };
    env.ok(&["enqueue", "--reprocess", "1", "--type", "pdf"]);
    let _daemon = env.serve(&["--workers", "1"]);
    wait_until("the PDF", || {
        env.json(&["show", "1"])["searchable_pdf"].is_string()
    });
    let pdf = output_of(&env, 1);
    let rate = cer(&LINES.join(" "), &pdf_text(&pdf));
    assert!(rate < 0.01, "CER {rate}");
    // The document stayed indexed throughout.
    assert_eq!(env.json(&["show", "1"])["status"], "indexed");
}

#[test]
fn a_daemon_killed_while_writing_leaves_no_partial_pdf_in_sight() {
    let env = Env::new();
    let src = env.dir.path().join("long.pdf");
    scanned_pdf(&src, 6);
    // Read it first, without PDFs, so that the daemon below only writes.
    let quiet = Env {
        extra: vec![("QUIRE_OUTPUT_SEARCHABLE_PDF".into(), "false".into())],
        ..env
    };
    quiet.ok(&["process", src.to_str().unwrap()]);
    let env = Env {
        extra: vec![],
        ..quiet
    };
    env.ok(&["enqueue", "--reprocess", "1", "--type", "pdf"]);
    let output = env.data().join("output");
    let partial = output.join(".partial");
    let mut daemon = env.serve(&["--workers", "1"]);
    // Kill it as soon as it has started writing (or, on a fast machine, as
    // soon as it is done): either way, nothing half-written may be visible.
    wait_until("the PDF task to start writing", || {
        std::fs::read_dir(&partial).is_ok_and(|mut d| d.next().is_some())
            || output.join("long.pdf").exists()
    });
    daemon.kill();
    for entry in std::fs::read_dir(&output).unwrap() {
        let path = entry.unwrap().path();
        if path != partial {
            tool("qpdf", &["--check", path.to_str().unwrap()]);
        }
    }
    // Restarted, it writes the PDF whole, once.
    let _daemon = env.serve(&["--workers", "1"]);
    wait_until("the PDF", || {
        env.json(&["show", "1"])["searchable_pdf"].is_string()
    });
    let pdf = output_of(&env, 1);
    assert_eq!(pdf, output.join("long.pdf"));
    assert_eq!(page_count(&pdf), 6);
    let visible: Vec<_> = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != ".partial")
        .collect();
    assert_eq!(visible, ["long.pdf"]);
    assert_eq!(std::fs::read_dir(&partial).unwrap().count(), 0);
}

#[test]
fn export_gives_the_original_or_the_searchable_pdf_made_on_demand() {
    let env = Env::new().set("QUIRE_OUTPUT_SEARCHABLE_PDF", "false");
    let png = env.dir.path().join("minutes.png");
    text_png(&png, LINES);
    env.ok(&["process", png.to_str().unwrap()]);
    let out = env.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let export = |args: &[&str]| {
        env.cmd()
            .current_dir(&out)
            .arg("export")
            .args(args)
            .output()
            .unwrap()
    };
    // The original, under its own name, byte for byte.
    assert!(export(&["1"]).status.success());
    assert_eq!(
        std::fs::read(out.join("minutes.png")).unwrap(),
        std::fs::read(&png).unwrap()
    );
    // Never over an existing file unless told.
    let again = export(&["1"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(export(&["1", "--force"]).status.success());
    // No PDF was made (output.searchable_pdf off): made now.
    assert!(export(&["1", "--searchable"]).status.success());
    let pdf = out.join("minutes.pdf");
    tool("qpdf", &["--check", pdf.to_str().unwrap()]);
    let rate = cer(&LINES.join(" "), &pdf_text(&pdf));
    assert!(rate < 0.01, "CER {rate}");
    // To standard output, for a pipe.
    let piped = export(&["1", "--searchable", "-o", "-"]);
    assert!(piped.status.success());
    assert!(piped.stdout.starts_with(b"%PDF-"));
    // A document OCR'd before quire kept word positions: read it again.
    let db = rusqlite::Connection::open(env.data().join("quire.db")).unwrap();
    db.execute("UPDATE pages SET layout = NULL WHERE document_id = 1", [])
        .unwrap();
    drop(db);
    let old = export(&["1", "--searchable", "-o", "old.pdf"]);
    assert_eq!(old.status.code(), Some(1));
    let err = String::from_utf8_lossy(&old.stderr);
    assert!(err.contains("quire enqueue --reprocess 1"), "{err}");
    assert!(!out.join("old.pdf").exists());
    // A document not read yet has nothing to lay over its pages.
    let other = png.with_file_name("other.png");
    text_png(&other, &["not read yet"]);
    env.ok(&["enqueue", other.to_str().unwrap()]);
    let unread = export(&["2", "--searchable"]);
    assert_eq!(unread.status.code(), Some(1));
    let err = String::from_utf8_lossy(&unread.stderr);
    assert!(err.contains("has not been read yet"), "{err}");
    assert!(!out.join("other.pdf").exists());
}
