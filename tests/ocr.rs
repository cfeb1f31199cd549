//! OCR quality and bad input, through `quire process` and the daemon.

use crate::util::{Env, cer, corpus, text_pdf, text_png, word_recall};

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
        let out = env.run(&["search", odd]);
        assert!(
            out.status.success(),
            "{odd}: {}",
            String::from_utf8_lossy(&out.stderr)
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
            b"just some words, not a pdf at all",
            "unsupported file type: the content is text",
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
