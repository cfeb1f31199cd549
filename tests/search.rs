//! Indexing and search: stemming, re-indexing and an indexing task killed
//! mid-way, checked against the index as the store reads it back; all but
//! the raw query syntax (FTS5's or tsquery's) on both engines.

use crate::util::{Env, on_both_engines, text_pdf, wait_until};

on_both_engines!(
    stemming_is_configurable_and_changing_it_rebuilds_the_index,
    reindexing_leaves_exactly_one_copy_of_each_page,
    an_indexing_task_killed_mid_way_resumes_to_the_same_index,
    results_come_one_per_document_with_its_other_pages,
    or_and_exclusion_work_in_the_default_syntax,
);

/// Every document's indexed pages (document, page, text), for comparing
/// whole indexes.
fn index_rows(env: &Env) -> Vec<(i64, i64, String)> {
    let app = env.app();
    let mut docs: Vec<i64> = app.store.list(None).unwrap().iter().map(|d| d.id).collect();
    docs.sort();
    docs.into_iter()
        .flat_map(|id| {
            app.store
                .indexed_text(id)
                .unwrap()
                .into_iter()
                .map(move |(page, text)| (id, page, text))
        })
        .collect()
}

/// Pages of generated text: page `n` mentions `page{n}` and shared words.
fn book(pages: usize) -> Vec<String> {
    (1..=pages)
        .map(|n| format!("page{n} of the long ledger, entries for account {n} and more"))
        .collect()
}

fn stemming_is_configurable_and_changing_it_rebuilds_the_index(env: Env) {
    let pdf = env.dir.path().join("run.pdf");
    text_pdf(
        &pdf,
        &["The runners were running daily in the connected parks"],
    );
    env.ok(&["process", pdf.to_str().unwrap()]);
    assert_eq!(env.search(&["runs"]).as_array().unwrap().len(), 0);
    assert_eq!(env.search(&["running"])[0]["id"], 1);

    let porter = env.set("QUIRE_INDEX_STEMMING", "porter");
    let other = porter.dir.path().join("other.pdf");
    text_pdf(&other, &["Connection established after the run was over"]);
    // A one-off command with another setting than the index's only warns...
    let out = porter.run(&["process", other.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("quire serve rebuilds it"), "{err}");
    assert!(porter.search(&["runs"]).as_array().unwrap().is_empty());
    // ...the daemon rebuilds it.
    let daemon = porter.serve(&["--workers", "1"]);
    assert!(
        daemon.log_contains("rebuilt the search index"),
        "{}",
        daemon.log_text()
    );
    // Both documents, the one indexed before the switch too, are stemmed now.
    for (q, want) in [("runs", 2), ("connecting", 2), ("daily", 1)] {
        let hits = porter.search(&[q]);
        assert_eq!(hits.as_array().unwrap().len(), want, "{q}: {hits}");
    }
}

fn reindexing_leaves_exactly_one_copy_of_each_page(env: Env) {
    let pdf = env.dir.path().join("three.pdf");
    let pages = book(3);
    let pages: Vec<&str> = pages.iter().map(String::as_str).collect();
    text_pdf(&pdf, &pages);
    env.ok(&["process", pdf.to_str().unwrap()]);
    let first = index_rows(&env);
    assert_eq!(first.len(), 3);
    for _ in 0..2 {
        env.ok(&["enqueue", "--reprocess", "1", "--type", "indexing"]);
        env.ok(&["process", "1"]);
        assert_eq!(index_rows(&env), first);
    }
    // Re-OCR then re-index: still one copy.
    env.ok(&["enqueue", "--reprocess", "1"]);
    env.ok(&["process", "1"]);
    assert_eq!(index_rows(&env), first);
    let pages = env.search(&["ledger", "--pages"]);
    assert_eq!(pages.as_array().unwrap().len(), 3);
}

fn an_indexing_task_killed_mid_way_resumes_to_the_same_index(env: Env) {
    const PAGES: usize = 1500;
    let pages = book(PAGES);
    let pages: Vec<&str> = pages.iter().map(String::as_str).collect();

    // The reference: an uninterrupted run (on SQLite, whose index this
    // engine's must equal).
    let reference = Env::new();
    let pdf = reference.dir.path().join("ledger.pdf");
    text_pdf(&pdf, &pages);
    reference.ok(&["process", pdf.to_str().unwrap()]);
    let want = index_rows(&reference);
    assert_eq!(want.len(), PAGES);

    // One page per indexing transaction, so that a kill lands mid-way.
    let env = env
        .set("QUIRE_INDEX_BATCH_PAGES", "1")
        .set("QUIRE_QUEUE_STALE_TIMEOUT", "1h");
    let mut daemon = env.serve(&["--workers", "1"]);
    std::fs::copy(&pdf, env.inbox().join("ledger.pdf")).unwrap();
    let app = env.app();
    let phase = |_: &Env| -> (Option<String>, i64) {
        let Some(d) = app.store.document(1).unwrap() else {
            return (None, 0);
        };
        let details = &d.indexing_details;
        let phase = details["phase"].as_str().map(str::to_owned);
        (phase, details["staged"].as_i64().unwrap_or(0))
    };
    wait_until("indexing to be part-way", || {
        let (p, staged) = phase(&env);
        p.as_deref() == Some("stage") && staged > 10
    });
    daemon.kill();
    let (p, staged) = phase(&env);
    assert_eq!(p.as_deref(), Some("stage"), "the kill came too late");
    assert!(staged < PAGES as i64);
    // Search never sees half a document: nothing is published before the end.
    assert!(index_rows(&env).is_empty());

    let restarted = env.serve(&["--workers", "1"]);
    let docs = env.wait_settled(1);
    assert_eq!(docs[0]["status"], "indexed", "{}", restarted.log_text());
    assert_eq!(index_rows(&env), want);
    let details = env.json(&["show", "1"])["indexing_details"].clone();
    assert_eq!(details["phase"], "done", "{details}");
    assert_eq!(details["indexed_pages"], PAGES, "{details}");
}

/// Three documents: `a.pdf` mentions invoice on pages 1 and 3 (page 1 with
/// zebrafish too), `b.pdf` an invoice, `c.pdf` zebrafish.
fn three_documents(env: Env) -> Env {
    for (name, pages) in [
        (
            "a.pdf",
            &[
                "invoice for the zebrafish tank",
                "nothing to see",
                "a second invoice page",
            ][..],
        ),
        ("b.pdf", &["invoice from the bakery"][..]),
        ("c.pdf", &["zebrafish care guide"][..]),
    ] {
        let pdf = env.dir.path().join(name);
        text_pdf(&pdf, pages);
        env.ok(&["process", pdf.to_str().unwrap()]);
    }
    env
}

/// `(id, page)` of each hit.
fn ids_and_pages(hits: &serde_json::Value) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = hits
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["id"].as_i64().unwrap(), h["page"].as_i64().unwrap()))
        .collect();
    v.sort();
    v
}

fn results_come_one_per_document_with_its_other_pages(env: Env) {
    let env = three_documents(env);
    let hits = env.search(&["invoice"]);
    assert_eq!(hits.as_array().unwrap().len(), 2, "{hits}");
    let a = hits
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == 1)
        .unwrap();
    assert_eq!(a["matching_pages"], 2);
    let other = a["other_pages"][0].as_i64().unwrap();
    let best = a["page"].as_i64().unwrap();
    assert_eq!([best.min(other), best.max(other)], [1, 3]);
    // The original, by its absolute path.
    let path = std::path::Path::new(a["path"].as_str().unwrap());
    assert!(path.is_absolute() && path.is_file(), "{path:?}");
    assert!(a["name"].as_str().unwrap().ends_with("a.pdf"), "{a}");
    // The human form names the other pages.
    let out = env.ok(&["search", "invoice"]);
    assert!(
        out.contains(&format!("page {best}, also {other}:")),
        "{out}"
    );
    // --pages: today's one row per page.
    let pages = env.search(&["invoice", "--pages"]);
    assert_eq!(ids_and_pages(&pages), [(1, 1), (1, 3), (2, 1)]);
    // --limit says how many more there were.
    let limited = env.run(&["search", "invoice", "--limit", "1"]);
    assert!(limited.status.success());
    let err = String::from_utf8_lossy(&limited.stderr);
    assert!(err.contains("1 more matching document(s)"), "{err}");
    assert_eq!(String::from_utf8_lossy(&limited.stdout).lines().count(), 1);
}

fn or_and_exclusion_work_in_the_default_syntax(env: Env) {
    let env = three_documents(env);
    let either = env.search(&["invoice", "OR", "zebrafish"]);
    assert_eq!(either.as_array().unwrap().len(), 3, "{either}");
    // Exclusion is by page: a.pdf's third page has an invoice and no fish.
    for q in [
        &["invoice", "-zebrafish"][..],
        &["invoice", "NOT", "zebrafish"][..],
    ] {
        let hits = env.search(&[q, &["--pages"]].concat());
        assert_eq!(ids_and_pages(&hits), [(1, 3), (2, 1)], "{q:?}");
    }
    let fish_only = env.search(&["zebrafish -invoice"]);
    assert_eq!(ids_and_pages(&fish_only), [(3, 1)]);
    let phrase = env.search(&["invoice", "-\"the bakery\"", "--pages"]);
    assert_eq!(ids_and_pages(&phrase), [(1, 1), (1, 3)]);
}

#[test]
fn exit_codes_say_found_not_found_and_misuse() {
    let env = three_documents(Env::new());
    // Nothing found: 1, like grep.
    let none = env.run(&["search", "platypus"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no matches"));
    // Usage errors: 2, with quire's own words.
    for (args, says) in [
        (
            &["search", "--raw", "mail:foo"][..],
            "unknown column 'mail'",
        ),
        (
            &["search", "--raw", "\"unclosed"][..],
            "a quote is not closed",
        ),
        (&["search", "--since", "yesterday", "x"][..], "YYYY-MM-DD"),
        (&["search", "--status", "bogus", "x"][..], "unknown status"),
        (&["search", "-zebrafish"][..], "nothing to search for"),
        (&["list", "--status", "bogus"][..], "unknown status"),
        (&["search"][..], "QUERY"),
    ] {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.contains("no such column") && !err.contains("fts5"),
            "{args:?}: {err}"
        );
    }
}
