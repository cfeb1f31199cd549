//! The daemon's Prometheus series: every name is here, recorded through the
//! `metrics` facade (a no-op until `serve` installs the exporter, so other
//! commands pay nothing), and the gauges read from the database at scrape
//! time (`quire_documents`, `quire_tasks`, ...), so that they agree with
//! `quire stats` whichever daemon did the work.

use std::sync::atomic::{AtomicUsize, Ordering};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::queue::{QueueStats, TaskType};

/// Seconds one page's OCR took: the buckets of `quire_ocr_page_seconds`.
const PAGE_SECONDS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0];

/// Workers running a task now, of [`WORKERS`]: the busy ratio's parts.
static BUSY: AtomicUsize = AtomicUsize::new(0);
static WORKERS: AtomicUsize = AtomicUsize::new(0);

/// Installs the process-wide recorder; `None` (and a warning) when one is
/// installed already, which only a second `serve` in one process would do.
pub fn install() -> Option<PrometheusHandle> {
    let built = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("quire_ocr_page_seconds".into()), PAGE_SECONDS)
        .and_then(|b| b.install_recorder());
    match built {
        Ok(handle) => {
            describe();
            Some(handle)
        }
        Err(e) => {
            log::warn!("metrics are off: {e}");
            None
        }
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "quire_tasks_completed_total",
        "Tasks completed by this daemon."
    );
    describe_counter!(
        "quire_tasks_failed_total",
        "Task attempts that failed in this daemon."
    );
    describe_counter!(
        "quire_pages_read_total",
        "Pages read by this daemon, by source."
    );
    describe_histogram!(
        "quire_ocr_page_seconds",
        Unit::Seconds,
        "Time to OCR one page, in the OCR child."
    );
    describe_counter!(
        "quire_ingested_total",
        "Files taken from the inbox or an upload, by outcome."
    );
    describe_gauge!("quire_documents", "Documents by status.");
    describe_gauge!("quire_tasks", "Tasks by type and status.");
    describe_gauge!(
        "quire_oldest_pending_seconds",
        "Age of the oldest due pending task."
    );
    describe_gauge!(
        "quire_worker_busy_ratio",
        "Share of this daemon's workers running a task."
    );
    describe_gauge!("quire_workers", "Workers this daemon runs.");
}

/// A task finished by a worker of this process.
pub fn task_completed(task_type: TaskType) {
    counter!("quire_tasks_completed_total", "type" => task_type.as_str()).increment(1);
}

/// A task attempt failed in this process (permanently or to be retried).
pub fn task_failed(task_type: TaskType) {
    counter!("quire_tasks_failed_total", "type" => task_type.as_str()).increment(1);
}

/// One page read, from its text layer (`"text"`), by OCR (`"ocr"`), or
/// from a plain text file.
pub fn page_read(source: &str, ocr_seconds: Option<f64>) {
    counter!("quire_pages_read_total", "source" => source.to_owned()).increment(1);
    if let Some(s) = ocr_seconds {
        histogram!("quire_ocr_page_seconds").record(s);
    }
}

/// A file taken in: `"new"`, `"duplicate"` or `"failed"`.
pub fn ingested(outcome: &'static str) {
    counter!("quire_ingested_total", "outcome" => outcome).increment(1);
}

/// The number of workers this daemon runs.
pub fn set_workers(n: usize) {
    WORKERS.store(n, Ordering::Relaxed);
}

/// Counts a worker busy for as long as the guard lives.
pub fn busy() -> BusyGuard {
    BUSY.fetch_add(1, Ordering::Relaxed);
    BusyGuard
}

/// See [`busy`].
pub struct BusyGuard;

impl Drop for BusyGuard {
    fn drop(&mut self) {
        BUSY.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sets the gauges from `stats` (read from the database just before), then
/// renders every series in the Prometheus text format.
pub fn render(handle: &PrometheusHandle, stats: &QueueStats) -> String {
    for (status, n) in &stats.documents {
        if status != "total" {
            gauge!("quire_documents", "status" => status.clone()).set(*n as f64);
        }
    }
    for (task_type, c) in &stats.by_type {
        for (status, n) in [
            ("pending", c.pending),
            ("claimed", c.claimed),
            ("completed", c.completed),
            ("failed", c.failed),
            ("cancelled", c.cancelled),
        ] {
            gauge!("quire_tasks", "type" => task_type.clone(), "status" => status).set(n as f64);
        }
    }
    gauge!("quire_oldest_pending_seconds")
        .set(stats.oldest_pending_ms.unwrap_or(0) as f64 / 1000.0);
    let workers = WORKERS.load(Ordering::Relaxed);
    gauge!("quire_workers").set(workers as f64);
    let busy = BUSY.load(Ordering::Relaxed);
    gauge!("quire_worker_busy_ratio").set(if workers == 0 {
        0.0
    } else {
        busy as f64 / workers as f64
    });
    // Descriptions (# HELP) and histogram upkeep happen here, on scrape:
    // nothing else runs the exporter's upkeep without its HTTP listener.
    handle.run_upkeep();
    handle.render()
}
