//! One shape for every error: whatever answered it (a handler, an
//! extractor rejecting a bad query string, the router's 404 or 405, the
//! access checks), the API answers `{"error": "..."}` and the pages answer
//! an HTML page saying the same.

use askama::Template;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// Bytes of an error body read to re-shape it.
const MAX_ERROR_BODY: usize = 64 * 1024;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    query: String,
    status: String,
    message: String,
}

/// The middleware.
pub(super) async fn shape(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let machine = path.starts_with("/api/") || matches!(path, "/metrics" | "/healthz" | "/events");
    // The health check answers plain text, errors too (probes read that).
    let health = path == "/healthz";
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let already = if machine {
        content_type.starts_with("application/json") || health
    } else {
        content_type.starts_with("text/html")
    };
    if already {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let message = message(&bytes, &content_type)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    parts.headers.remove(header::CONTENT_LENGTH);
    let (body, kind) = if machine {
        let json = serde_json::json!({ "error": message }).to_string();
        (Body::from(json), "application/json")
    } else {
        let page = ErrorPage {
            query: String::new(),
            status: status.to_string(),
            message,
        };
        match page.render() {
            Ok(html) => (Body::from(html), "text/html; charset=utf-8"),
            Err(e) => (Body::from(e.to_string()), "text/plain; charset=utf-8"),
        }
    };
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    Response::from_parts(parts, body)
}

/// The message in an error body: the `error` of our JSON, or the text of
/// axum's plain rejections; `None` for an empty body.
fn message(body: &[u8], content_type: &str) -> Option<String> {
    if content_type.starts_with("application/json")
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(m) = v["error"].as_str()
    {
        return Some(m.to_owned());
    }
    let text = String::from_utf8_lossy(body).trim().to_owned();
    (!text.is_empty()).then_some(text)
}
