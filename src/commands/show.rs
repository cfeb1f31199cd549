//! `quire show`: one document, its pages and its tasks.

use std::process::ExitCode;

use serde::Serialize;

use crate::app::App;
use crate::cli::ShowArgs;
use crate::config::Config;
use crate::queue::Task;
use crate::store::{Document, Page, is_poor_reading};

/// `quire show --json`.
#[derive(Serialize)]
pub(crate) struct Shown<'a> {
    #[serde(flatten)]
    document: &'a Document,
    duplicates: i64,
    page_list: Vec<PageLine<'a>>,
    tasks: &'a [Task],
    /// The stored copy of the original, absolute.
    file: std::path::PathBuf,
}

/// A page without its text.
#[derive(Serialize)]
struct PageLine<'a> {
    page: i64,
    source: &'a str,
    chars: usize,
    confidence: Option<f64>,
    /// A poor OCR reading (see [`is_poor_reading`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    poor: bool,
}

/// The document `id`, its pages and its tasks.
pub(crate) fn gather(app: &App, id: i64) -> anyhow::Result<(Document, Vec<Page>, Vec<Task>)> {
    let doc = app.document(id)?;
    let pages = app.store.pages(doc.id)?;
    let tasks = app.queue.tasks_of(doc.id)?;
    Ok((doc, pages, tasks))
}

/// What `--json` prints (also the web API's).
pub(crate) fn shown<'a>(
    app: &App,
    doc: &'a Document,
    pages: &'a [Page],
    tasks: &'a [Task],
) -> anyhow::Result<Shown<'a>> {
    Ok(Shown {
        document: doc,
        duplicates: app.store.count_duplicates_of(doc.id)?,
        page_list: pages.iter().map(page_line).collect(),
        tasks,
        file: {
            let f = app.store.file_of(doc);
            std::path::absolute(&f).unwrap_or(f)
        },
    })
}

/// Runs `quire show`.
pub fn run(config: &Config, args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    let (doc, pages, tasks) = gather(&app, args.id)?;
    let shown = shown(&app, &doc, &pages, &tasks)?;
    if args.json {
        super::print_json(&shown)?;
    } else {
        print_human(&shown, &pages);
    }
    Ok(ExitCode::SUCCESS)
}

fn page_line(p: &Page) -> PageLine<'_> {
    PageLine {
        page: p.number,
        source: p.source.as_str(),
        chars: p.text.chars().count(),
        confidence: p.confidence,
        poor: is_poor_reading(p.confidence, &p.text),
    }
}

fn print_human(s: &Shown<'_>, pages: &[Page]) {
    let d = s.document;
    println!("document {}: {}", d.id, d.name);
    println!("  status:  {}", d.status);
    if let Some(e) = &d.error {
        println!("  error:   {e}");
    }
    println!(
        "  kind:    {} ({} bytes, sha256 {})",
        d.kind, d.size, d.sha256
    );
    println!("  stored:  {}", s.file.display());
    if let Some(pdf) = &d.searchable_pdf {
        println!("  output:  {pdf}");
    }
    println!("  added:   {}", super::format_time(d.created_at));
    if s.duplicates > 0 {
        println!(
            "  dropped again {} time(s) (kept under duplicates/)",
            s.duplicates
        );
    }
    let total = d.pages.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
    println!("  pages:   {} of {total} read", pages.len());
    for p in &s.page_list {
        let conf = match p.confidence {
            Some(c) if p.poor => format!(", confidence {c:.0} (a poor reading)"),
            Some(c) => format!(", confidence {c:.0}"),
            None => String::new(),
        };
        let detail = d
            .ocr_details
            .get("pages")
            .and_then(|ps| ps.get(p.page.to_string()));
        let number = |key| detail.and_then(|x| x.get(key)).and_then(|v| v.as_f64());
        let mut fixed = String::new();
        if let Some(t) = number("turned").filter(|t| *t != 0.0) {
            fixed += &format!(", turned {t:.0}°");
        }
        if let Some(a) = number("deskewed") {
            fixed += &format!(", straightened {a:.1}°");
        }
        println!(
            "    page {:>4}: {:<4} {} chars{conf}{fixed}",
            p.page, p.source, p.chars
        );
    }
    if let Some(failed) = d.ocr_details.get("pages").and_then(|p| p.as_object()) {
        for (n, detail) in failed {
            if detail.get("status").and_then(|s| s.as_str()) == Some("failed") {
                let err = detail.get("error").and_then(|e| e.as_str()).unwrap_or("");
                println!("    page {n:>4}: failed: {err}");
            }
        }
    }
    println!("  tasks:");
    for t in s.tasks {
        let err = t
            .last_error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        println!(
            "    task {:>6}: {:<8} {:<9} {:<6} attempt {}/{}{err}",
            t.id, t.task_type, t.status, t.priority, t.attempts, t.max_attempts
        );
    }
}
