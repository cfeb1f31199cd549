//! `/api/...`: JSON in the shapes of the command line's `--json` (search,
//! list, show, stats), files, and `/metrics` and `/healthz`.

use std::path::PathBuf;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Web, blocking};
use crate::queue::TaskStatus;

/// Most results one search request returns.
pub(super) const MAX_LIMIT: usize = 1000;

/// `?q=...&limit=N&pages=true&raw=true&status=...&since=YYYY-MM-DD&until=YYYY-MM-DD`,
/// as `quire search` takes them.
#[derive(Debug, Deserialize)]
pub(super) struct SearchParams {
    #[serde(default)]
    pub q: String,
    pub limit: Option<usize>,
    #[serde(default)]
    pub pages: bool,
    #[serde(default)]
    pub raw: bool,
    pub status: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// `GET /api/search`: `{"results": [...], "total": N, "at_least": bool}`,
/// `results` being what `quire search --json` prints (the command line
/// says the total on stderr; an API answers it beside the results).
pub(super) async fn search(
    State(web): State<Web>,
    Query(p): Query<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = p.limit.unwrap_or(20).clamp(1, MAX_LIMIT);
    blocking(move || {
        let query = crate::commands::search::parse_query(&p.q, p.raw)?;
        let filter = crate::commands::search::filter(
            p.since.as_deref(),
            p.until.as_deref(),
            p.status.as_deref(),
        )?;
        let found = crate::commands::search::find(&web.app, &query, &p.q, &filter, limit, p.pages)?;
        Ok(Json(json!({
            "results": crate::commands::search::to_json(&found.results),
            "total": found.total,
            "at_least": found.at_least,
        })))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    status: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    poor: bool,
}

/// `GET /api/documents?status=...&limit=N&poor=true`: `quire list --json`,
/// newest first (all of them unless `limit`, at most [`MAX_LIMIT`]);
/// `poor` keeps only documents with poorly read pages, as `list --poor`.
pub(super) async fn documents(
    State(web): State<Web>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let status = crate::commands::parse_status(p.status.as_deref())?;
        let mut docs = match p.limit {
            Some(n) if !p.poor => web.app.store.newest(status, n.clamp(1, MAX_LIMIT))?,
            _ => web.app.store.list(status)?,
        };
        if p.poor {
            docs.retain(|d| d.poor_pages > 0);
            if let Some(n) = p.limit {
                docs.truncate(n.clamp(1, MAX_LIMIT));
            }
        }
        Ok(Json(serde_json::to_value(crate::commands::list::items(
            &docs,
        ))?))
    })
    .await
}

/// `GET /api/documents/ID`: `quire show ID --json`.
pub(super) async fn document(
    State(web): State<Web>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    blocking(move || {
        let (doc, pages, tasks) = crate::commands::show::gather(&web.app, id)?;
        let shown = crate::commands::show::shown(&web.app, &doc, &pages, &tasks)?;
        Ok(Json(serde_json::to_value(shown)?))
    })
    .await
}

/// `GET /api/documents/ID/text`: `{"id": ID, "pages": [{"page": N, "text": "..."}]}`.
pub(super) async fn text(
    State(web): State<Web>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    blocking(move || {
        let doc = web.app.document(id)?;
        let pages: Vec<Value> = web
            .app
            .store
            .pages(doc.id)?
            .into_iter()
            .map(|p| json!({ "page": p.number, "text": p.text }))
            .collect();
        Ok(Json(json!({ "id": doc.id, "pages": pages })))
    })
    .await
}

/// `GET /api/documents/ID/original` (and `/doc/ID/original`): the stored
/// file, under its original name.
pub(super) async fn original(
    State(web): State<Web>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let (path, name) = blocking(move || {
        let doc = web.app.document(id)?;
        let name = std::path::Path::new(&doc.name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("document-{id}"));
        Ok((web.app.store.file_of(&doc), name))
    })
    .await?;
    send_file(path, &name, "application/octet-stream").await
}

/// `GET /doc/ID/pdf`: the searchable PDF, when one was written.
pub(super) async fn searchable_pdf(
    State(web): State<Web>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let found = blocking(move || {
        let doc = web.app.document(id)?;
        Ok(doc.searchable_pdf.map(|p| {
            let name = std::path::Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("document-{id}.pdf"));
            (PathBuf::from(p), name)
        }))
    })
    .await?;
    let Some((path, name)) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("document {id} has no searchable PDF (yet)"),
        ));
    };
    send_file(path, &name, "application/pdf").await
}

/// Streams `path` as an attachment named `name`.
async fn send_file(path: PathBuf, name: &str, mime: &'static str) -> Result<Response, ApiError> {
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("cannot open the stored file {}: {e}", path.display()),
        )
    })?;
    let len = file.metadata().await.map(|m| m.len()).ok();
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = (
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CONTENT_DISPOSITION, attachment(name)),
        ],
        body,
    )
        .into_response();
    if let Some(len) = len {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, len.into());
    }
    Ok(response)
}

/// `attachment; filename="..."; filename*=UTF-8''...` (RFC 6266): an ASCII
/// fallback and the exact name, percent-encoded.
fn attachment(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = super::percent_encode(name);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// `GET /api/stats`: `quire stats --json`.
pub(super) async fn stats(State(web): State<Web>) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(serde_json::to_value(web.app.queue.stats()?)?))).await
}

#[derive(Debug, Deserialize)]
pub(super) struct TaskParams {
    status: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/tasks?status=failed&limit=N`: the newest tasks with that
/// status (default: failed), newest first.
pub(super) async fn tasks(
    State(web): State<Web>,
    Query(p): Query<TaskParams>,
) -> Result<Json<Value>, ApiError> {
    let status: TaskStatus = match p.status.as_deref().unwrap_or("failed").parse() {
        Ok(s) => s,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown task status; use pending, claimed, completed, failed or cancelled",
            ));
        }
    };
    let limit = p.limit.unwrap_or(100).clamp(1, MAX_LIMIT);
    blocking(move || {
        let tasks = web.app.queue.tasks_with_status(status, limit)?;
        Ok(Json(serde_json::to_value(tasks)?))
    })
    .await
}

/// `POST /api/tasks/ID/retry`: `{"retried": ID}`; 409 unless failed or cancelled.
pub(super) async fn retry(
    State(web): State<Web>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    blocking(move || {
        retry_task(&web, id)?;
        Ok(Json(json!({ "retried": id })))
    })
    .await
}

/// Retries task `id` and wakes a worker for it (blocking): the API's and
/// the queue page's Retry.
pub(super) fn retry_task(web: &Web, id: i64) -> anyhow::Result<()> {
    web.app.queue.retry(id)?;
    if let Some(w) = &web.wake {
        w.notify();
    }
    Ok(())
}

/// `POST /api/tasks/ID/cancel`: `{"cancelled": ID}`; 409 unless pending or claimed.
pub(super) async fn cancel(
    State(web): State<Web>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id)?;
    blocking(move || {
        web.app.queue.cancel(id)?;
        Ok(Json(json!({ "cancelled": id })))
    })
    .await
}

/// `GET /metrics`: every `quire_...` series in the Prometheus text format.
pub(super) async fn metrics(State(web): State<Web>) -> Result<Response, ApiError> {
    let Some(handle) = web.metrics.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics are off in this process",
        ));
    };
    let text = blocking(move || {
        let stats = web.app.queue.stats()?;
        Ok(crate::metrics::render(&handle, &stats))
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `GET /healthz`: 200 `ok` when the database answers, 503 otherwise.
pub(super) async fn healthz(State(web): State<Web>) -> Response {
    let answered = blocking(move || Ok(web.app.queue.stats().map(|_| ())?)).await;
    match answered {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the database does not answer: {}\n", e.message),
        )
            .into_response(),
    }
}

/// A document or task id from the path; anything but a positive integer
/// is a 400 that says so.
pub(super) fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{text:?} is not an id: ids are positive whole numbers"),
            )
        })
}
