//! The web page, the JSON API and the metrics `quire serve` offers on
//! `http.listen` (see `config.example.toml`).
//!
//! The server is axum on a small tokio runtime of its own thread, beside the
//! worker threads: connections cost a task each, not a thread, so slow or
//! many clients do not tie up the daemon. Every database call runs on
//! tokio's blocking pool, at most [`DB_THREADS`] at once, on connections
//! `serve` adds to the pool for them, so that however many requests
//! arrive the workers keep theirs.
//!
//! Access: on loopback without a token anyone on the machine may use it (as
//! they may run `quire`); a `Host` naming another machine is refused, which
//! stops DNS rebinding. With `http.token_file` every request must carry the
//! token. Writes (POST) from a browser must come from this site's own pages
//! (`Origin` / `Sec-Fetch-Site`), so another site cannot make a visitor's
//! browser upload, retry or cancel.

mod api;
mod auth;
mod conn;
mod errors;
mod images;
mod live;
mod pages;
mod upload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use crossbeam_channel::Receiver;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::app::App;
use crate::worker::Wake;

/// Database calls requests may run at once (`serve` opens this many
/// connections beyond the workers'). As many as the clients a busy page
/// has: a short search then runs beside a long one instead of waiting for
/// it. `cargo bench --bench web`, 8 clients on 2 cores: p50 9.3-9.5 ms and
/// p99 108-124 ms at 8, against 11.6-14.6 ms and 56-76 ms at 4.
pub const DB_THREADS: usize = 8;

/// What every handler shares.
#[derive(Clone)]
struct Web {
    app: App,
    /// The access token, when `http.token_file` is set.
    token: Option<Arc<str>>,
    metrics: Option<PrometheusHandle>,
    wake: Option<Wake>,
    /// The latest live snapshot; `None` until one was read.
    live: tokio::sync::watch::Receiver<Option<Arc<live::Snapshot>>>,
    /// Turns true when the daemon stops: open event streams end.
    stopping: tokio::sync::watch::Receiver<bool>,
    upload_dir: PathBuf,
}

/// The running server.
pub struct Server {
    pub addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl Server {
    /// Waits for the server to finish its open requests after `stop` closed
    /// (at most two seconds; then they are dropped).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// The bound port, before it serves: binding comes first in `serve`, so
/// that a port in use or a missing token stops the daemon before it starts
/// any worker.
pub struct Bound {
    listener: std::net::TcpListener,
    token: Option<String>,
}

/// Binds `http.listen`; `None` when it is empty (the web page is off).
pub fn bind(app: &App) -> anyhow::Result<Option<Bound>> {
    let Some(addr) = app.config.http_addr().ok().flatten() else {
        return Ok(None);
    };
    let token = auth::load_token(&app.config.http.token_file)?;
    if token.is_none() && !addr.ip().is_loopback() {
        anyhow::bail!(
            "http.listen is {addr}, beyond loopback, and http.token_file is not set: anyone who \
             can reach that address could read every document. Set http.token_file to a file \
             holding a secret token (for example `head -c 32 /dev/urandom | base64 > FILE`), or \
             listen on 127.0.0.1"
        );
    }
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!(
            "cannot listen on {addr} for the web page (http.listen): another program, perhaps \
             another quire serve, uses the port; choose another with --http ADDR or \
             QUIRE_HTTP_LISTEN, or set it empty to turn the web page off"
        )
    })?;
    listener.set_nonblocking(true)?;
    Ok(Some(Bound { listener, token }))
}

/// Serves on `bound` until `stop` disconnects; `wake` tells idle workers
/// about uploads and retries.
pub fn spawn(
    app: &App,
    bound: Bound,
    metrics: Option<PrometheusHandle>,
    wake: Option<Wake>,
    stop: Receiver<()>,
) -> anyhow::Result<Server> {
    let Bound { listener, token } = bound;
    let addr = listener.local_addr()?;
    raise_open_files_limit();
    let upload_dir = app.config.data_dir.join(".uploads");
    std::fs::create_dir_all(&upload_dir)
        .with_context(|| format!("cannot create {}", upload_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("http")
        .on_thread_start(lower_priority)
        .enable_all()
        .build()
        .context("cannot start the web server's runtime")?;
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    // The daemon's stop (a crossbeam channel closing) becomes `stopping`,
    // which ends event streams and the server.
    std::thread::Builder::new()
        .name("http-stop".into())
        .spawn(move || {
            let _ = stop.recv();
            let _ = stopping_tx.send(true);
        })
        .context("cannot start the web server's thread")?;
    let live = runtime.block_on(async { live::spawn(app.clone(), stopping.clone()) });
    let web = Web {
        app: app.clone(),
        token: token.map(Arc::from),
        metrics,
        wake,
        live,
        stopping: stopping.clone(),
        upload_dir,
    };
    let limit = app.config.http.upload_limit_mb.saturating_mul(1024 * 1024);
    let router = router(web, limit as usize);
    log::info!("web page on http://{addr}/");
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            runtime.block_on(serve(listener, router, stopping));
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
        })
        .context("cannot start the web server's thread")?;
    Ok(Server { addr, thread })
}

/// How long open requests (a download, an upload) may go on once the
/// daemon stops; then they are cut.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves until `stopping` turns true, then lets open requests finish for
/// [`SHUTDOWN_GRACE`] at most.
async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            log::error!("the web page stopped: {e}");
            return;
        }
    };
    let mut stopped = stopping.clone();
    let server =
        axum::serve(conn::Limited::new(listener), router).with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        });
    let cut = async move {
        let _ = stopping.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => {
            if let Err(e) = result {
                log::error!("the web page stopped: {e}");
            }
        }
        () = cut => log::info!("web requests still open after {SHUTDOWN_GRACE:?} were cut"),
    }
}

/// How much nicer than the workers the web server's threads run: the
/// most, so that requests take only the CPU the OCR leaves.
const WEB_NICENESS: i32 = 19;

/// Lowers the calling thread's CPU priority by [`WEB_NICENESS`] (Linux
/// keeps a nice value per thread): when the OCR wants every core, it gets
/// them, and the web page takes what is left (a busy web thread weighs
/// 1/68 of a worker with the scheduler); when the OCR is idle, the web
/// page runs at full speed.
fn lower_priority() {
    // SAFETY: gettid and getpriority/setpriority on this thread's own id
    // touch no memory of ours.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        if *libc::__errno_location() == 0 {
            // Failing leaves the thread at the daemon's priority: fine.
            let _ = libc::setpriority(libc::PRIO_PROCESS, tid, (current + WEB_NICENESS).min(19));
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit
/// (systemd's default soft limit is 1,024), so that the web page's
/// connections ([`conn::MAX_CONNECTIONS`]) cannot take the descriptors the
/// workers need for the database, OCR children and files.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                log::debug!(
                    "cannot raise the open files limit: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

/// Every route. `upload_limit` bounds upload bodies; other bodies get
/// axum's default (2 MiB).
fn router(web: Web, upload_limit: usize) -> Router {
    let uploads = Router::new()
        .route("/api/upload", post(upload::api))
        .route("/upload", post(upload::form))
        .layer(DefaultBodyLimit::max(upload_limit));
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/doc/{id}", get(pages::document))
        .route("/doc/{id}/original", get(api::original))
        .route("/doc/{id}/pdf", get(api::searchable_pdf))
        .route("/doc/{id}/page/{n}", get(images::page))
        .route("/doc/{id}/thumb/{n}", get(images::thumb))
        .route("/queue", get(pages::queue))
        .route("/queue/{id}/{action}", post(pages::task_action))
        .route("/events", get(live::events))
        .route("/api/search", get(api::search))
        .route("/api/documents", get(api::documents))
        .route("/api/documents/{id}", get(api::document))
        .route("/api/documents/{id}/text", get(api::text))
        .route("/api/documents/{id}/original", get(api::original))
        .route("/api/stats", get(api::stats))
        .route("/api/tasks", get(api::tasks))
        .route("/api/tasks/{id}/retry", post(api::retry))
        .route("/api/tasks/{id}/cancel", post(api::cancel))
        .route("/metrics", get(api::metrics))
        .route("/healthz", get(api::healthz))
        .merge(uploads)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::from_fn_with_state(
            web.clone(),
            auth::check,
        ))
        .layer(axum::middleware::from_fn(errors::shape))
        .with_state(web)
}

/// An error answered as JSON, `{"error": "..."}`, with its status code.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// An error of quire's own: a usage error (bad query) is the client's
    /// (400), a missing document or task is 404, a task in the wrong state
    /// 409; anything else is the server's (500, and logged).
    fn from_quire(e: anyhow::Error) -> ApiError {
        use crate::queue::QueueError;
        let status = if e.downcast_ref::<crate::commands::UsageError>().is_some() {
            StatusCode::BAD_REQUEST
        } else {
            match e.downcast_ref::<QueueError>() {
                Some(QueueError::DocumentNotFound(_) | QueueError::TaskNotFound(_)) => {
                    StatusCode::NOT_FOUND
                }
                Some(QueueError::WrongStatus { .. } | QueueError::AlreadyLive { .. }) => {
                    StatusCode::CONFLICT
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            }
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            log::error!("web request failed: {e:#}");
        }
        ApiError::new(status, format!("{e:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.message }));
        (self.status, body).into_response()
    }
}

/// Runs a blocking database call off the async threads, at most
/// [`DB_THREADS`] at once (the others wait their turn without a thread).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    static DB: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(DB_THREADS);
    let _turn = DB.acquire().await.expect("the semaphore is never closed");
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out.map_err(ApiError::from_quire),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's work stopped: {e}"),
        )),
    }
}

/// Percent-encodes every byte of `s` but the unreserved ones (RFC 3986),
/// for a query string or an RFC 5987 file name.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
