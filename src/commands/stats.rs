//! `quire stats`: queue and document counts, once or live.

use std::process::ExitCode;

use crate::app::App;
use crate::cli::StatsArgs;
use crate::config::Config;
use crate::queue::QueueStats;

/// Runs `quire stats`.
pub fn run(config: &Config, args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let app = App::open_existing(config)?;
    if args.watch {
        return crate::live::watch(&app);
    }
    let stats = app.queue.stats()?;
    if args.json {
        super::print_json(&stats)?;
    } else {
        print!("{}", render(&stats));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable form.
pub fn render(s: &QueueStats) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let d = &s.documents;
    let _ = writeln!(
        out,
        "documents: {} total, {} queued, {} ocr, {} indexing, {} indexed, {} failed, {} cancelled",
        d["total"], d["queued"], d["ocr"], d["indexing"], d["indexed"], d["failed"], d["cancelled"]
    );
    if s.poor_pages > 0 {
        let _ = writeln!(
            out,
            "poor readings: {} page(s) in {} document(s) (quire list --poor; quire show ID)",
            s.poor_pages, s.documents_with_poor_pages
        );
    }
    for (name, c) in
        std::iter::once(("all", &s.tasks)).chain(s.by_type.iter().map(|(k, v)| (k.as_str(), v)))
    {
        let _ = writeln!(
            out,
            "tasks {name:>8}: {} pending, {} claimed, {} completed, {} failed, {} cancelled",
            c.pending, c.claimed, c.completed, c.failed, c.cancelled
        );
    }
    if let Some(ms) = s.oldest_pending_ms {
        let _ = writeln!(out, "oldest pending: {:.1}s", ms as f64 / 1000.0);
    }
    let _ = writeln!(
        out,
        "completed: {} in the last minute, {} in the last hour",
        s.completed_last_minute, s.completed_last_hour
    );
    for f in &s.recent_failures {
        let _ = writeln!(
            out,
            "failed: task {} ({}, document {}): {}",
            f.task_id, f.task_type, f.document_id, f.error
        );
    }
    out
}
