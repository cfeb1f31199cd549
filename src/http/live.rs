//! The live part of the home page: one task reads the queue's state once a
//! second (one read however many pages are open) and every open page gets
//! it pushed as a Server-Sent Event named `snapshot`, whose data is the
//! JSON of [`Snapshot`].

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde::Serialize;
use tokio::sync::watch;
use tokio_stream::Stream;

use super::Web;
use crate::app::App;
use crate::queue::{QueueStats, RunningTask};

/// Documents shown in the home page's list.
pub(super) const RECENT: usize = 25;

/// What the home page shows and updates.
#[derive(Debug, Serialize)]
pub(super) struct Snapshot {
    pub stats: QueueStats,
    pub running: Vec<RunningTask>,
    pub recent: Vec<RecentDocument>,
}

/// One line of the home page's document list.
#[derive(Debug, Serialize, PartialEq)]
pub(super) struct RecentDocument {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub pages: Option<i64>,
    pub error: Option<String>,
}

/// Reads the snapshot now (blocking).
pub(super) fn read(app: &App) -> anyhow::Result<Snapshot> {
    let stats = app.queue.stats()?;
    let running = app.queue.running()?;
    let recent = app
        .store
        .newest(None, RECENT)?
        .into_iter()
        .map(|d| RecentDocument {
            id: d.id,
            name: d.name,
            status: d.status.as_str().to_owned(),
            pages: d.pages,
            error: d.error,
        })
        .collect();
    Ok(Snapshot {
        stats,
        running,
        recent,
    })
}

/// Open event streams: the reader reads only while there are any.
static WATCHERS: AtomicUsize = AtomicUsize::new(0);

/// Counts one open stream in [`WATCHERS`] for as long as it lives.
struct Watching;

impl Watching {
    fn new() -> Watching {
        WATCHERS.fetch_add(1, Ordering::Relaxed);
        Watching
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        WATCHERS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Starts the reader; the receiver holds the latest snapshot, read once a
/// second while any page watches.
pub(super) fn spawn(
    app: App,
    mut stopping: watch::Receiver<bool>,
) -> watch::Receiver<Option<Arc<Snapshot>>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.changed() => return,
            }
            // Nobody watching: no reads.
            if WATCHERS.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let app = app.clone();
            match super::blocking(move || read(&app)).await {
                Ok(snapshot) => {
                    let _ = tx.send(Some(Arc::new(snapshot)));
                }
                Err(e) => log::warn!(
                    "the web page's live view cannot read the queue: {}",
                    e.message
                ),
            }
        }
    });
    rx
}

/// `GET /events`: the snapshots as they come, until the daemon stops.
pub(super) async fn events(
    State(web): State<Web>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut stopping = web.stopping.clone();
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    use futures_util::StreamExt as _;
    let watching = Watching::new();
    // Only snapshots read from now on: the one held may be from the last
    // time anyone watched, and the page itself was rendered just now.
    let stream = tokio_stream::wrappers::WatchStream::from_changes(web.live.clone())
        .filter_map(std::future::ready)
        .map(move |s| {
            let _watching = &watching;
            let data = serde_json::to_string(&*s).unwrap_or_else(|_| "{}".into());
            Ok(Event::default().event("snapshot").data(data))
        })
        // Ends the stream (and so the connection) when the daemon stops.
        .take_until(Box::pin(stopped));
    Sse::new(stream).keep_alive(KeepAlive::default())
}
