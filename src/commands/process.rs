//! `quire process`: run OCR and indexing for one document in the foreground,
//! for people who do not run the daemon.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::App;
use crate::cli::ProcessArgs;
use crate::config::Config;
use crate::ingest::{Ingested, ingest};
use crate::queue::{Priority, TaskType};
use crate::store::Placement;
use crate::worker::{Offers, TaskContext, TaskError, WorkerIdentity};

/// Runs `quire process`.
pub fn run(config: &Config, args: &ProcessArgs) -> anyhow::Result<ExitCode> {
    let app = App::open(config, 4)?;
    crate::tasks::index::prepare(&app, false)?;
    let doc_id = match args.target.parse::<i64>() {
        Ok(id) if app.store.document(id)?.is_some() => id,
        _ => match ingest(
            &app.store,
            &app.queue,
            args.target.as_ref(),
            // Named like an inbox file: by its name, not the path typed.
            &std::path::Path::new(&args.target)
                .file_name()
                .map_or(args.target.clone(), |n| n.to_string_lossy().into_owned()),
            Placement::Copy,
            Priority::High,
        )
        .with_context(|| format!("cannot add {}", args.target))?
        {
            Ingested::New { document_id, .. } | Ingested::Duplicate { document_id, .. } => {
                document_id
            }
        },
    };
    let processors = crate::tasks::processors(&app);
    let identity = WorkerIdentity::current();
    let worker = identity.worker(0);
    // As serve's workers do, queue.workers threads read the pages of the
    // document at once: this one and helpers, each with its OCR child.
    let helpers: Vec<String> = (1..config.worker_count())
        .map(|i| identity.worker(i))
        .collect();
    let offers = Offers::standalone();
    let bar = if crate::logging::stderr_is_tty() && crate::logging::in_foreground() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let stop = Arc::new(AtomicBool::new(false));
    let mut steps = vec![TaskType::Ocr, TaskType::Indexing];
    if config.output.searchable_pdf {
        steps.push(TaskType::Pdf);
    }
    for step in steps {
        app.queue.enqueue(doc_id, step, Priority::High)?;
        let claim = app
            .queue
            .claim_document(&worker, doc_id, step)?
            .ok_or_else(|| {
                anyhow!("document {doc_id}'s {step} task is being run by another process")
            })?;
        bar.set_message(format!("document {doc_id}: {step}"));
        let ctx = TaskContext::new(&app, &claim, stop.clone()).with_helpers(&offers);
        // The page count beside the spinner, as the live view shows it,
        // from the checkpoints the task writes.
        let done = AtomicBool::new(false);
        let result = std::thread::scope(|s| {
            if !bar.is_hidden() {
                s.spawn(|| {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let running = app.queue.running().unwrap_or_default();
                        if let Some(t) = running.iter().find(|t| t.task_id == claim.task_id)
                            && let Some(total) = t.pages_total
                        {
                            bar.set_message(format!(
                                "document {doc_id}: {step} page {}/{total}",
                                t.pages_done
                            ));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(200));
                    }
                });
            }
            if step == TaskType::Ocr {
                for helper in &helpers {
                    s.spawn(|| {
                        while !done.load(std::sync::atomic::Ordering::Relaxed) {
                            if !offers.help_one(helper) {
                                std::thread::sleep(std::time::Duration::from_millis(10));
                            }
                        }
                    });
                }
            }
            let result = processors.get(step).run(&ctx);
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            result
        });
        match result {
            Ok(()) => app.queue.complete(&claim)?,
            Err(TaskError::Failed { kind, message }) => {
                app.queue.fail(&claim, kind, &message)?;
                bar.finish_and_clear();
                bail!("document {doc_id}: {step} failed: {message}");
            }
            Err(TaskError::Interrupted | TaskError::Paused) => {
                app.queue.release(&claim)?;
                bail!("document {doc_id}: {step} was interrupted");
            }
        }
    }
    bar.finish_and_clear();
    let doc = app
        .store
        .document(doc_id)?
        .ok_or_else(|| anyhow!("document {doc_id} vanished"))?;
    // Written, not println!: a closed pipe is an error that ends quietly.
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "document {doc_id}: {} ({} page(s)) {}",
        doc.status,
        doc.pages.unwrap_or(0),
        doc.name
    )?;
    if let Some(pdf) = &doc.searchable_pdf {
        writeln!(out, "searchable PDF: {pdf}")?;
    }
    Ok(ExitCode::SUCCESS)
}
