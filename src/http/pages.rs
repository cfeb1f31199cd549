//! The HTML pages: home, search, one document, the queue. Rendered on the
//! server from the templates in `templates/` (checked when quire is
//! compiled); reading and searching work without JavaScript.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::api::parse_id;
use super::{ApiError, Web, blocking, images, live};
use crate::queue::{Task, TaskStatus};
use crate::store::SearchFilter;

/// Results per search page.
const PER_PAGE: usize = 20;
/// Result pages offered: the search API's most results.
const MAX_PAGES: usize = super::api::MAX_LIMIT / PER_PAGE;
/// Tasks shown per status on the queue page.
const QUEUE_LIMIT: usize = 100;

/// A piece of text, found words marked.
struct Seg {
    text: String,
    hit: bool,
}

/// Renders a template, or a 500 naming the template error.
fn render(t: &impl Template) -> Result<Response, ApiError> {
    t.render()
        .map(|html| Html(html).into_response())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    query: String,
    counts: Vec<(&'static str, i64)>,
    running: Vec<RunningLine>,
    recent: Vec<live::RecentDocument>,
}

struct RunningLine {
    task_id: i64,
    task_type: String,
    document_id: i64,
    name: String,
    progress: String,
    worker: String,
}

/// `GET /`.
pub(super) async fn home(State(web): State<Web>) -> Result<Response, ApiError> {
    let snapshot = blocking(move || live::read(&web.app)).await?;
    let stats = snapshot.stats;
    let d = &stats.documents;
    let count = |k: &str| d.get(k).copied().unwrap_or(0);
    render(&Home {
        query: String::new(),
        counts: vec![
            ("documents", count("total")),
            ("queued", count("queued")),
            ("reading", count("ocr")),
            ("indexing", count("indexing")),
            ("searchable", count("indexed")),
            ("failed", count("failed")),
            ("tasks pending", stats.tasks.pending),
        ],
        running: snapshot
            .running
            .into_iter()
            .map(|r| RunningLine {
                task_id: r.task_id,
                task_type: r.task_type.to_string(),
                document_id: r.document_id,
                name: r.name,
                progress: match r.pages_total {
                    Some(total) => format!("{} / {total} pages", r.pages_done),
                    None => String::new(),
                },
                worker: r.worker,
            })
            .collect(),
        recent: snapshot.recent,
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct SearchPage {
    #[serde(default)]
    q: String,
    /// The result page, from 1.
    p: Option<usize>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchResults {
    query: String,
    query_url: String,
    error: Option<String>,
    hits: Vec<HitLine>,
    total: usize,
    at_least: bool,
    first: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct HitLine {
    id: i64,
    name: String,
    page: i64,
    matching_pages: i64,
    snippet: Vec<Seg>,
}

/// `GET /search?q=...&p=N`: results by document, best page first; the same
/// query language as `quire search`.
pub(super) async fn search(
    State(web): State<Web>,
    Query(params): Query<SearchPage>,
) -> Result<Response, ApiError> {
    let page = params
        .p
        .unwrap_or(1)
        .clamp(1, super::api::MAX_LIMIT / PER_PAGE);
    let query = params.q.trim().to_owned();
    if query.is_empty() {
        return Ok(Redirect::to("/").into_response());
    }
    let text = query.clone();
    let found = blocking(move || {
        let parsed = match crate::commands::search::parse_query(&text, false) {
            Ok(q) => q,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let filter = SearchFilter::default();
        match crate::commands::search::find(
            &web.app,
            &parsed,
            &text,
            &filter,
            page * PER_PAGE,
            false,
        ) {
            Ok(found) => Ok(Ok(found)),
            Err(e) if e.downcast_ref::<crate::commands::UsageError>().is_some() => {
                Ok(Err(e.to_string()))
            }
            Err(e) => Err(e),
        }
    })
    .await?;
    let query_url = super::percent_encode(&query);
    let mut view = SearchResults {
        query,
        query_url,
        error: None,
        hits: vec![],
        total: 0,
        at_least: false,
        first: (page - 1) * PER_PAGE + 1,
        prev: (page > 1).then(|| page - 1),
        next: None,
    };
    match found {
        Err(why) => view.error = Some(why),
        Ok(found) => {
            view.total = found.total;
            view.at_least = found.at_least;
            if found.total > page * PER_PAGE && page < MAX_PAGES {
                view.next = Some(page + 1);
            }
            view.hits = found
                .results
                .into_iter()
                .skip((page - 1) * PER_PAGE)
                .map(|(h, matching, _)| HitLine {
                    id: h.id,
                    name: h.name,
                    page: h.page,
                    matching_pages: matching.unwrap_or(1),
                    snippet: marked(&h.snippet),
                })
                .collect();
        }
    }
    render(&view)
}

/// Splits a snippet at the search's own marks (`\x02` before a found
/// word, `\x03` after it).
fn marked(snippet: &str) -> Vec<Seg> {
    let mut out = vec![];
    let mut rest = snippet;
    while let Some(start) = rest.find('\x02') {
        if start > 0 {
            out.push(Seg {
                text: rest[..start].to_owned(),
                hit: false,
            });
        }
        let after = &rest[start + 1..];
        let end = after.find('\x03').unwrap_or(after.len());
        out.push(Seg {
            text: after[..end].to_owned(),
            hit: true,
        });
        rest = after.get(end + 1..).unwrap_or("");
    }
    if !rest.is_empty() {
        out.push(Seg {
            text: rest.to_owned(),
            hit: false,
        });
    }
    out
}

/// Marks in `text` every word that is one of `words` (lowercase), or
/// begins with one written as a prefix (`invoice*`), as the search matches.
fn highlight(text: &str, words: &[String]) -> Vec<Seg> {
    if words.is_empty() {
        return vec![Seg {
            text: text.to_owned(),
            hit: false,
        }];
    }
    let mut out: Vec<Seg> = vec![];
    let mut push = |s: &str, hit: bool| match out.last_mut() {
        Some(last) if last.hit == hit => last.text.push_str(s),
        _ => out.push(Seg {
            text: s.to_owned(),
            hit,
        }),
    };
    let mut start = 0;
    let mut in_word = false;
    let flush = |from: usize, to: usize, word: bool, push: &mut dyn FnMut(&str, bool)| {
        let piece = &text[from..to];
        let hit = word && matches_any(piece, words);
        push(piece, hit);
    };
    for (i, c) in text.char_indices() {
        let is_word = c.is_alphanumeric();
        if i > start && is_word != in_word {
            flush(start, i, in_word, &mut push);
            start = i;
        }
        in_word = is_word;
    }
    if start < text.len() {
        flush(start, text.len(), in_word, &mut push);
    }
    out
}

/// Whether `word` (as on the page, punctuation around it allowed) is one of
/// `words` (see [`query_words`]).
fn matches_any(word: &str, words: &[String]) -> bool {
    let lower = word
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    !lower.is_empty()
        && words.iter().any(|w| match w.strip_suffix('*') {
            Some(prefix) => lower.starts_with(prefix),
            None => lower == *w,
        })
}

/// The words of a query to mark on a page, lowercased, prefixes with their
/// `*`; without operators and exclusions.
fn query_words(q: &str) -> Vec<String> {
    q.split(|c: char| c.is_whitespace() || c == '"')
        .filter(|w| !w.starts_with('-') && !matches!(*w, "AND" | "OR" | "NOT"))
        .map(|w| {
            let word = w
                .trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            match w.ends_with('*') && !word.is_empty() {
                true => word + "*",
                false => word,
            }
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[derive(Debug, Deserialize)]
pub(super) struct DocParams {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "doc.html")]
struct DocPage {
    query: String,
    id: i64,
    name: String,
    status: String,
    error: Option<String>,
    kind: String,
    size: i64,
    pages_total: Option<i64>,
    has_pdf: bool,
    /// The pages can be shown as images.
    images: bool,
    pages: Vec<PageView>,
    tasks: Vec<Task>,
}

struct PageView {
    number: i64,
    source: String,
    confidence: Option<String>,
    text: Vec<Seg>,
    /// Boxes over the found words on the page image.
    boxes: Vec<BoxStyle>,
}

/// A [`images::HitBox`] as the CSS of the box drawn over the page image.
struct BoxStyle(String);

impl From<images::HitBox> for BoxStyle {
    fn from(b: images::HitBox) -> BoxStyle {
        BoxStyle(format!(
            "left:{:.3}%;top:{:.3}%;width:{:.3}%;height:{:.3}%",
            b.left, b.top, b.width, b.height
        ))
    }
}

/// `GET /doc/ID?q=...`: the document's pages (the words of `q` marked),
/// its tasks and its files.
pub(super) async fn document(
    State(web): State<Web>,
    Path(id): Path<String>,
    Query(params): Query<DocParams>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let ((doc, pages, tasks), layouts) = blocking(move || {
        let shown = crate::commands::show::gather(&web.app, id)?;
        let layouts = web.app.store.layouts(id)?;
        Ok((shown, layouts))
    })
    .await?;
    let words = query_words(&params.q);
    let boxes = |n: i64| -> Vec<BoxStyle> {
        let layout = layouts
            .iter()
            .find(|(p, ..)| *p == n)
            .and_then(|(.., l)| l.as_ref());
        match layout {
            Some(l) if !words.is_empty() => images::hit_boxes(l, |w| matches_any(w, &words))
                .into_iter()
                .map(BoxStyle::from)
                .collect(),
            _ => vec![],
        }
    };
    render(&DocPage {
        query: params.q.clone(),
        id: doc.id,
        name: doc.name,
        status: doc.status.as_str().to_owned(),
        error: doc.error,
        images: images::has_images(&doc.kind),
        kind: doc.kind,
        size: doc.size,
        pages_total: doc.pages,
        has_pdf: doc.searchable_pdf.is_some(),
        pages: pages
            .into_iter()
            .map(|p| PageView {
                number: p.number,
                source: p.source.as_str().to_owned(),
                confidence: p.confidence.map(|c| format!("{c:.0}")),
                text: highlight(&p.text, &words),
                boxes: boxes(p.number),
            })
            .collect(),
        tasks,
    })
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    query: String,
    limit: usize,
    groups: Vec<(&'static str, Vec<TaskLine>)>,
}

struct TaskLine {
    id: i64,
    task_type: String,
    document_id: i64,
    attempts: i64,
    max_attempts: i64,
    last_error: Option<String>,
    retryable: bool,
    cancellable: bool,
}

/// `GET /queue`: the newest tasks of each status, with retry and cancel.
pub(super) async fn queue(State(web): State<Web>) -> Result<Response, ApiError> {
    let groups = blocking(move || {
        let mut groups = vec![];
        for (label, status) in [
            ("Failed", TaskStatus::Failed),
            ("Running", TaskStatus::Claimed),
            ("Pending", TaskStatus::Pending),
            ("Cancelled", TaskStatus::Cancelled),
            ("Completed", TaskStatus::Completed),
        ] {
            let tasks = web.app.queue.tasks_with_status(status, QUEUE_LIMIT)?;
            let lines = tasks
                .into_iter()
                .map(|t| TaskLine {
                    id: t.id,
                    task_type: t.task_type.to_string(),
                    document_id: t.document_id,
                    attempts: t.attempts,
                    max_attempts: t.max_attempts,
                    last_error: t.last_error,
                    retryable: matches!(status, TaskStatus::Failed | TaskStatus::Cancelled),
                    cancellable: matches!(status, TaskStatus::Pending | TaskStatus::Claimed),
                })
                .collect();
            groups.push((label, lines));
        }
        Ok(groups)
    })
    .await?;
    render(&QueuePage {
        query: String::new(),
        limit: QUEUE_LIMIT,
        groups,
    })
}

/// `POST /queue/ID/retry` or `/cancel`: the buttons of the queue page;
/// back to it afterwards.
pub(super) async fn task_action(
    State(web): State<Web>,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    blocking(move || match action.as_str() {
        "retry" => super::api::retry_task(&web, id),
        "cancel" => Ok(web.app.queue.cancel(id)?),
        _ => Err(crate::commands::usage(format!(
            "{action:?} is not an action on a task: use retry or cancel"
        ))),
    })
    .await?;
    Ok(Redirect::to("/queue").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(segs: &[Seg]) -> Vec<&str> {
        segs.iter()
            .filter(|s| s.hit)
            .map(|s| s.text.as_str())
            .collect()
    }

    #[test]
    fn snippet_marks_become_hits() {
        let segs = marked("the \x02invoice\x03 of \x02May\x03");
        assert_eq!(hits(&segs), ["invoice", "May"]);
        let all: String = segs.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(all, "the invoice of May");
    }

    #[test]
    fn page_text_marks_words_starting_with_a_query_word() {
        let words = query_words("Invoice* \"due date\" -draft OR total");
        assert_eq!(words, ["invoice*", "due", "date", "total"]);
        let segs = highlight("Invoices due: Total 5, draft dated", &words);
        assert_eq!(hits(&segs), ["Invoices", "due", "Total"]);
        let all: String = segs.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(all, "Invoices due: Total 5, draft dated");
    }
}
