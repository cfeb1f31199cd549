//! OCR quality and bad input, through `quire process` and the daemon.

use std::process::Command;

use serde_json::Value;

use crate::util::{
    Env, PdfPage, cer, corpus, processes_with_env, scan, text_pdf, text_png, wait_until,
    word_recall, write_pdf,
};

const LINES: &[&str] = &[
    "It was the best of times, it was the worst of times,",
    "it was the age of wisdom, it was the age of foolishness,",
    "it was the epoch of belief, it was the epoch of incredulity.",
];

#[test]
fn png_text_matches_closely() {
    let env = Env::new();
    let png = env.dir.path().join("dickens.png");
    text_png(&png, LINES);
    env.ok(&["process", png.to_str().unwrap()]);
    let text = env.ok(&["text", "1"]);
    let rate = cer(&LINES.join(" "), &text);
    assert!(rate < 0.01, "CER {rate}: {text}");
    let show = env.json(&["show", "1"]);
    assert_eq!(show["page_list"][0]["source"], "ocr");
}

#[test]
fn text_layer_pdf_is_read_without_ocr_and_searchable_by_every_word() {
    let env = Env::new();
    let pdf = env.dir.path().join("tale.pdf");
    text_pdf(&pdf, &[&LINES.join("\n"), "second page with café au lait"]);
    env.ok(&["process", pdf.to_str().unwrap()]);
    let show = env.json(&["show", "1"]);
    assert_eq!(show["pages"], 2);
    assert_eq!(show["page_list"][0]["source"], "text", "{show}");
    for word in LINES
        .join(" ")
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let hits = env.json(&["search", word]);
        assert_eq!(hits[0]["id"], 1, "{word}");
    }
    assert_eq!(env.json(&["search", "cafe"])[0]["page"], 2);
    assert_eq!(env.json(&["search", "\"age of wisdom\""])[0]["page"], 1);
    assert_eq!(env.json(&["search", "incredul*"])[0]["page"], 1);
    for odd in [
        "\"unbalanced",
        "AND",
        "NOT or",
        "e-mail: don't",
        "***",
        "(",
        "col:on",
    ] {
        // Found or not (exit 0 or 1), or nothing to search for (2); never
        // the search engine's own error.
        let out = env.run(&["search", odd]);
        let err = String::from_utf8_lossy(&out.stderr);
        let want = if matches!(odd, "***" | "(" | "NOT or") {
            2
        } else {
            1
        };
        assert!(
            out.status.code() == Some(0) || out.status.code() == Some(want),
            "{odd}: {:?} {err}",
            out.status
        );
        assert!(
            !err.contains("fts5") && !err.contains("syntax"),
            "{odd}: {err}"
        );
    }
}

#[test]
fn scanned_pdf_matches_its_ground_truth() {
    let env = Env::new();
    env.ok(&["process", corpus("linn.pdf").to_str().unwrap()]);
    let text = env.ok(&["text", "1"]);
    let truth = std::fs::read_to_string(corpus("linn.txt")).unwrap();
    let recall = word_recall(&truth, &text);
    assert!(
        recall > 0.9,
        "only {recall:.2} of the ground truth's words were read:\n{text}"
    );
}

#[test]
fn bad_input_fails_with_a_clear_error() {
    let env = Env::new();
    let dir = env.dir.path();
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty.pdf", b"", "empty"),
        ("random.png", &[7u8; 4000], "unsupported file type"),
        (
            "notes.pdf",
            b"PK\x03\x04 a zip archive, not a pdf at all",
            "unsupported file type: the content is zip",
        ),
        (
            "truncated.png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            "damaged or truncated",
        ),
        (
            "truncated.pdf",
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog",
            "damaged",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = env.run(&["process", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{name}: {err}");
    }
    let failed = env.json(&["list", "--status", "failed"]);
    assert_eq!(failed.as_array().unwrap().len(), cases.len());
    assert!(
        failed
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["error"].as_str().is_some_and(|e| !e.is_empty()))
    );
    // A mixed bag: valid files still go through afterwards.
    let ok = dir.join("fine.pdf");
    text_pdf(&ok, &["still working after bad input"]);
    env.ok(&["process", ok.to_str().unwrap()]);
}

/// Three pages of known text, for multi-page scans.
const PAGES: [&[&str]; 3] = [
    &[
        "The quick brown fox jumps over the lazy dog.",
        "Pack my box with five dozen liquor jugs.",
    ],
    &[
        "Sphinx of black quartz, judge my vow.",
        "How vexingly quick daft zebras jump!",
    ],
    &[
        "The five boxing wizards jump quickly.",
        "Jackdaws love my big sphinx of quartz.",
    ],
];

/// Asserts that page `n` of document `id` reads as `lines` (CER under 1%)
/// and came from `source`; returns its `ocr_details` entry.
fn assert_page(env: &Env, id: u32, n: usize, lines: &[&str], source: &str) -> Value {
    let text = env.ok(&["text", &id.to_string(), "--page", &n.to_string()]);
    let rate = cer(&lines.join(" "), &text);
    assert!(rate < 0.01, "document {id} page {n}: CER {rate}: {text}");
    let show = env.json(&["show", &id.to_string()]);
    let detail = show["ocr_details"]["pages"][n.to_string()].clone();
    assert_eq!(detail["source"], source, "document {id} page {n}: {show}");
    detail
}

/// True when ImageMagick lists `format` as writable (WebP comes with an
/// optional delegate).
fn imagemagick_writes(format: &str) -> bool {
    let out = Command::new("convert")
        .args(["-list", "format"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().any(|l| {
        let mut words = l.split_whitespace();
        words
            .next()
            .is_some_and(|w| w.trim_end_matches('*') == format)
            && words.nth(1).is_some_and(|mode| mode.contains('w'))
    })
}

fn convert(args: &[&str]) {
    let ok = Command::new("convert").args(args).status().unwrap();
    assert!(ok.success(), "convert {args:?}");
}

#[test]
fn jpeg_and_every_page_of_a_tiff_match_closely() {
    let env = Env::new();
    let dir = env.dir.path();
    let pngs: Vec<String> = PAGES
        .iter()
        .enumerate()
        .map(|(i, lines)| {
            let p = dir.join(format!("p{i}.png"));
            text_png(&p, lines);
            p.to_str().unwrap().to_string()
        })
        .collect();
    let jpg = dir.join("scan.jpg");
    convert(&[&pngs[0], "-quality", "90", jpg.to_str().unwrap()]);
    let tiff = dir.join("three.tiff");
    let mut args: Vec<&str> = pngs.iter().map(String::as_str).collect();
    args.extend(["-compress", "lzw", tiff.to_str().unwrap()]);
    convert(&args);

    env.ok(&["process", jpg.to_str().unwrap()]);
    assert_page(&env, 1, 1, PAGES[0], "ocr");
    env.ok(&["process", tiff.to_str().unwrap()]);
    assert_eq!(env.json(&["show", "2"])["pages"], 3);
    for (i, lines) in PAGES.iter().enumerate() {
        assert_page(&env, 2, i + 1, lines, "ocr");
    }
    // The other formats leptonica reads, detected by content whatever the name.
    // (leptonica reads uncompressed BMP only, hence BMP3 without compression.)
    for (id, ext, target) in [
        (3, "bmp", "BMP3:"),
        (4, "gif", ""),
        (5, "pnm", ""),
        (6, "webp", ""),
    ] {
        let out = dir.join(format!("page-{ext}.{ext}"));
        let target = format!("{target}{}", out.display());
        if ext == "webp" && !imagemagick_writes("WEBP") {
            eprintln!("this ImageMagick cannot write WebP; skipping that format");
            continue;
        }
        convert(&[&pngs[1], "-compress", "none", &target]);
        let renamed = dir.join(format!("{ext}-named.pdf"));
        std::fs::rename(&out, &renamed).unwrap();
        env.ok(&["process", renamed.to_str().unwrap()]);
        assert_eq!(env.json(&["show", &id.to_string()])["kind"], ext);
        assert_page(&env, id, 1, PAGES[1], "ocr");
    }
    let rle = dir.join("rle.bmp");
    convert(&[
        &pngs[1],
        "-type",
        "Palette",
        "-compress",
        "RLE",
        &format!("BMP3:{}", rle.display()),
    ]);
    let out = env.run(&["process", rle.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("compressed BMP files"), "{err}");
}

#[test]
fn ocr_mode_force_and_text_only() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = dir.path().join("mixed.pdf");
    let typed = PAGES[0].join("\n");
    write_pdf(
        &mixed,
        &[
            PdfPage::Text(&typed),
            PdfPage::Scan(scan(dir.path(), PAGES[1], true)),
        ],
    );
    // force: the text page is OCR'd too (rendered, as it has no image).
    let env = Env::new().set("QUIRE_OCR_MODE", "force");
    env.ok(&["process", mixed.to_str().unwrap()]);
    let d = assert_page(&env, 1, 1, PAGES[0], "ocr");
    assert_eq!(d["rendered"], true, "{d}");
    assert_page(&env, 1, 2, PAGES[1], "ocr");
    // text-only: no OCR at all; the scanned page is empty.
    let env = Env::new().set("QUIRE_OCR_MODE", "text-only");
    env.ok(&["process", mixed.to_str().unwrap()]);
    assert_page(&env, 1, 1, PAGES[0], "text");
    assert_eq!(env.ok(&["text", "1", "--page", "2"]).trim(), "");
    let show = env.json(&["show", "1"]);
    assert_eq!(
        show["ocr_details"]["pages"]["2"]["source"], "text",
        "{show}"
    );
}

#[test]
fn scanned_and_mixed_pdfs_are_read_from_their_images_and_text_layer() {
    let env = Env::new();
    let dir = env.dir.path();
    let scanned = dir.join("scanned.pdf");
    write_pdf(
        &scanned,
        &[
            PdfPage::Scan(scan(dir, PAGES[0], true)),
            PdfPage::Scan(scan(dir, PAGES[1], false)),
        ],
    );
    let mixed = dir.join("mixed.pdf");
    let typed = PAGES[1].join("\n");
    write_pdf(
        &mixed,
        &[
            PdfPage::Text(&typed),
            PdfPage::Scan(scan(dir, PAGES[2], true)),
        ],
    );
    env.ok(&["process", scanned.to_str().unwrap()]);
    env.ok(&["process", mixed.to_str().unwrap()]);
    // Scans are OCR'd from the embedded JPEG and Flate images, not re-rendered.
    for (id, n, lines) in [(1, 1, PAGES[0]), (1, 2, PAGES[1]), (2, 2, PAGES[2])] {
        let d = assert_page(&env, id, n, lines, "ocr");
        assert_eq!(d["images"], 1, "{d}");
        assert!(
            d.get("rendered").is_none(),
            "document {id} page {n} was rendered: {d}"
        );
    }
    assert_page(&env, 2, 1, PAGES[1], "text");
}

#[test]
fn a_task_killed_after_page_two_of_five_resumes_at_page_three() {
    let env = Env::new().set("QUIRE_QUEUE_STALE_TIMEOUT", "1h");
    let dir = env.dir.path();
    let texts: Vec<Vec<String>> = (1..=5)
        .map(|n| {
            (1..=6)
                .map(|l| format!("Page {n} line {l} of the resumable document."))
                .collect()
        })
        .collect();
    let pages: Vec<PdfPage> = texts
        .iter()
        .map(|lines| {
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            PdfPage::Scan(scan(dir, &lines, true))
        })
        .collect();
    let pdf = dir.join("five.pdf");
    write_pdf(&pdf, &pages);

    let mut daemon = env.serve(&["--workers", "1"]);
    std::fs::copy(&pdf, env.inbox().join("five.pdf")).unwrap();
    let done = |env: &Env| -> usize {
        let out = env.run(&["show", "1", "--json"]);
        if !out.status.success() {
            return 0;
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["page_list"].as_array().map_or(0, Vec::len)
    };
    wait_until("two pages to be checkpointed", || done(&env) >= 2);
    daemon.kill();
    let killed_after = done(&env);
    assert!(
        killed_after < 5,
        "the whole document finished before the kill"
    );
    // The OCR child died with the daemon.
    wait_until("the OCR child to exit", || {
        processes_with_env(&env.env_entry()).is_empty()
    });

    let _restarted = env.serve(&["--workers", "1"]);
    let docs = env.wait_settled(1);
    assert_eq!(docs[0]["status"], "indexed");
    let details = env.json(&["show", "1"])["ocr_details"]["pages"].clone();
    for n in 1..=5 {
        // Attempt 1 read the pages before the kill; attempt 2 only the rest.
        let want = if n <= killed_after { 1 } else { 2 };
        assert_eq!(
            details[n.to_string()]["attempts"],
            want,
            "page {n}: {details}"
        );
        let lines: Vec<&str> = texts[n - 1].iter().map(String::as_str).collect();
        assert_page(&env, 1, n, &lines, "ocr");
    }
}

/// A PNG whose header claims `w`x`h` pixels, with a valid IHDR checksum and
/// almost no data: refused from its header, never decoded.
fn pixel_bomb(w: u32, h: u32) -> Vec<u8> {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in bytes {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        c.extend_from_slice(&body);
        c.extend_from_slice(&crc(&body).to_be_bytes());
        c
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[test]
fn limits_and_locked_files_fail_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.png");
    std::fs::write(&bomb, pixel_bomb(40_000, 40_000)).unwrap();
    let plain = dir.path().join("plain.pdf");
    text_pdf(&plain, &["a perfectly ordinary text layer page, locked"]);
    let locked = dir.path().join("locked.pdf");
    let ok = Command::new("qpdf")
        .args(["--encrypt", "secret", "owner", "256", "--"])
        .arg(&plain)
        .arg(&locked)
        .status()
        .expect("qpdf is installed (scripts/setup.sh)");
    assert!(ok.success());
    let multipage = corpus("multipage.pdf");
    let png = dir.path().join("words.png");
    text_png(&png, PAGES[0]);

    // (file, QUIRE_* settings, expected error)
    type Case<'a> = (&'a std::path::Path, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&bomb, &[], "40000x40000 pixels, over the limit"),
        (&locked, &[], "encrypted: password required"),
        (
            &multipage,
            &[("QUIRE_OCR_MAX_PAGES", "3")],
            "6 pages, over the limit of 3",
        ),
        (
            &png,
            &[("QUIRE_OCR_MAX_MEMORY_MB", "40")],
            "ocr.max_memory_mb",
        ),
    ];
    for (file, vars, want) in cases {
        let mut env = Env::new();
        for (k, v) in *vars {
            env = env.set(k, v);
        }
        let out = env.run(&["process", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file:?} {vars:?}: {err}");
        assert!(err.contains(want), "{file:?} {vars:?}: {err}");
        let doc = &env.docs()[0];
        assert_eq!(doc["status"], "failed", "{doc}");
        eprintln!("{file:?} {vars:?}: {}", doc["error"]);
    }

    // A page over the time limit is stopped (its OCR child killed) and the
    // page fails with the reason; the next document gets a fresh child.
    let env = Env::new().set("QUIRE_OCR_PAGE_TIMEOUT", "250ms");
    let dense = dir.path().join("dense.png");
    let lines: Vec<String> = (0..60)
        .map(|i| format!("Line {i} of a page dense enough to take tesseract a while to read."))
        .collect();
    text_png(
        &dense,
        &lines.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let out = env.run(&["process", dense.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let doc = &env.docs()[0];
    assert_eq!(doc["status"], "failed");
    assert_eq!(
        doc["error"],
        "no page could be read: page 1 took longer than 250ms (ocr.page_timeout) and was stopped"
    );
    let fine = dir.path().join("fine.pdf");
    text_pdf(&fine, &["read in time, after a page that was not"]);
    env.ok(&["process", fine.to_str().unwrap()]);
    // With more time, a retry reads the page that failed.
    let patient = Env {
        dir: env.dir,
        extra: vec![("QUIRE_OCR_PAGE_TIMEOUT".into(), "5m".into())],
        postgres: None,
    };
    patient.ok(&["retry", "--all-failed"]);
    patient.ok(&["process", "1"]);
    let show = patient.json(&["show", "1"]);
    assert_eq!(show["status"], "indexed", "{show}");
    assert_eq!(
        show["ocr_details"]["pages"]["1"]["status"], "done",
        "{show}"
    );
}

#[test]
fn plain_text_files_are_documents_too() {
    let env = Env::new();
    let dir = env.dir.path();
    // UTF-8 with a byte-order mark, two pages split by a form feed.
    let txt = dir.join("notes.txt");
    std::fs::write(
        &txt,
        "\u{feff}Minutes of the caf\u{e9} committee\n\x0cPage two: the budget\n",
    )
    .unwrap();
    // Windows-1252, as a spreadsheet exports it.
    let csv = dir.join("prices.csv");
    std::fs::write(
        &csv,
        b"item;price\r\ncr\xe8me br\xfbl\xe9e;4\r\n\x93special\x94;5\r\n",
    )
    .unwrap();
    let md = dir.join("readme.md");
    std::fs::write(&md, "# Heading\n\nSome *markdown* about zeppelins.\n").unwrap();
    for f in [&txt, &csv, &md] {
        env.ok(&["process", f.to_str().unwrap()]);
    }
    let docs = env.docs();
    assert!(
        docs.iter()
            .all(|d| d["status"] == "indexed" && d["kind"] == "text"),
        "{docs:?}"
    );
    assert_eq!(
        env.ok(&["text", "1", "--page", "2"]).trim(),
        "Page two: the budget"
    );
    assert!(env.ok(&["text", "2"]).contains("crème brûlée;4"));
    assert!(env.ok(&["text", "2"]).contains("\u{201c}special\u{201d}"));
    for (word, id) in [("cafe", 1), ("budget", 1), ("creme", 2), ("zeppelins", 3)] {
        let hits = env.search(&[word]);
        assert_eq!(hits[0]["id"], id, "{word}: {hits}");
    }
    // Nothing to lay a text layer over: no searchable PDF, and no failure.
    let show = env.json(&["show", "1"]);
    assert!(show["searchable_pdf"].is_null());
    assert!(
        show["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["status"] == "completed"),
        "{show}"
    );
}
