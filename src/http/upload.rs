//! Uploads: each file of a multipart form is streamed to a hidden folder of
//! the data dir (`.uploads/`, on the store's filesystem), then taken in by
//! [`ingest`] exactly as a file dropped into the inbox is: same detection,
//! same duplicate rule (the upload is kept under `duplicates/`), same
//! priority. The body limit is `http.upload_limit_mb`.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::{ApiError, Web, blocking};
use crate::ingest::{Ingested, ingest};
use crate::queue::Priority;
use crate::store::files::Placement;

/// What became of one uploaded file.
#[derive(Debug, Serialize)]
pub(super) struct Uploaded {
    pub name: String,
    pub id: i64,
    /// The content was already document `id`.
    pub duplicate: bool,
}

/// `POST /api/upload` (multipart, any number of file fields): a JSON list
/// of [`Uploaded`].
pub(super) async fn api(
    State(web): State<Web>,
    multipart: Multipart,
) -> Result<Json<Vec<Uploaded>>, Response> {
    Ok(Json(receive(&web, multipart).await.map_err(closing)?))
}

/// `POST /upload`: the home page's form; back to the document when one
/// file was sent, else to the home page.
pub(super) async fn form(
    State(web): State<Web>,
    multipart: Multipart,
) -> Result<Response, Response> {
    let uploaded = receive(&web, multipart).await.map_err(closing)?;
    Ok(match uploaded.as_slice() {
        [one] => Redirect::to(&format!("/doc/{}", one.id)).into_response(),
        _ => Redirect::to("/").into_response(),
    })
}

/// A failed upload's answer, with `Connection: close`: the rest of the body
/// may be unread (a file over the limit, a failure before the last file),
/// and hyper then closes the connection after answering. Without the
/// header the client keeps the connection for its next request and finds
/// it closed under it (seen under load: the request after a 413 failed
/// with "peer disconnected").
fn closing(e: ApiError) -> Response {
    let mut response = e.into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// Streams every file field to disk and ingests it.
async fn receive(web: &Web, mut multipart: Multipart) -> Result<Vec<Uploaded>, ApiError> {
    let mut out = vec![];
    while let Some(mut field) = multipart.next_field().await.map_err(too_big)? {
        let Some(name) = field.file_name().map(safe_name) else {
            continue; // a plain form field
        };
        if name.is_empty() {
            continue; // the form sent with no file chosen
        }
        let temp = Temp(
            web.upload_dir
                .join(format!("{}-{}", std::process::id(), next_upload())),
        );
        let mut file = tokio::fs::File::create(&temp.0)
            .await
            .map_err(|e| server(&temp.0, "create", e))?;
        while let Some(chunk) = field.chunk().await.map_err(too_big)? {
            file.write_all(&chunk)
                .await
                .map_err(|e| server(&temp.0, "write", e))?;
        }
        file.sync_all()
            .await
            .map_err(|e| server(&temp.0, "write", e))?;
        drop(file);
        let app = web.app.clone();
        let (path, shown_name) = (temp.0.clone(), name.clone());
        let ingested = blocking(move || {
            let ingested = ingest(
                &app.store,
                &app.queue,
                &path,
                &shown_name,
                Placement::Move,
                Priority::High,
            );
            crate::metrics::ingested(match &ingested {
                Ok(Ingested::New { .. }) => "new",
                Ok(Ingested::Duplicate { .. }) => "duplicate",
                Err(_) => "failed",
            });
            Ok(ingested?)
        })
        .await?;
        let (id, duplicate) = match ingested {
            Ingested::New { document_id, .. } => {
                log::info!("uploaded {name:?} is document {document_id}");
                if let Some(w) = &web.wake {
                    w.notify();
                }
                (document_id, false)
            }
            Ingested::Duplicate { document_id, .. } => {
                log::info!("uploaded {name:?} has the same content as document {document_id}");
                (document_id, true)
            }
        };
        out.push(Uploaded {
            name,
            id,
            duplicate,
        });
    }
    if out.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no file in the upload: send multipart/form-data with a file field",
        ));
    }
    Ok(out)
}

/// The file's own name without any folder part a client may send (so
/// `../../etc/passwd` is `passwd`); control characters become `_`.
fn safe_name(sent: &str) -> String {
    let last = sent.rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = last
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    match name.as_str() {
        "." | ".." => String::new(),
        _ => name,
    }
}

/// A number for each upload of this process, for its temporary name.
fn next_upload() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A temporary upload, removed when dropped unless ingest moved it away.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A body over the limit (or cut off): 413 with the limit to raise.
fn too_big(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the upload is larger than http.upload_limit_mb allows; raise it or drop the file into \
         the inbox"
            .to_owned()
    } else {
        format!("the upload could not be read: {}", e.body_text())
    };
    ApiError::new(status, message)
}

fn server(path: &Path, what: &str, e: std::io::Error) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("cannot {what} the upload at {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::safe_name;

    #[test]
    fn uploaded_names_lose_their_folders() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("C:\\Users\\x\\scan.pdf"), "scan.pdf");
        assert_eq!(safe_name("a\nb.pdf"), "a_b.pdf");
        assert_eq!(safe_name(".."), "");
        assert_eq!(safe_name("Rechnung März.pdf"), "Rechnung März.pdf");
    }
}
