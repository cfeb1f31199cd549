//! `quire enqueue`: add files or folders as documents (copied into the store),
//! or re-run a step for an existing document.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::app::App;
use crate::cli::EnqueueArgs;
use crate::config::Config;
use crate::ingest::{Ingested, ingest};
use crate::queue::{Enqueued, Priority, TaskType};
use crate::store::Placement;

/// Progress bars appear from this many files on.
const PROGRESS_FROM: usize = 10;

/// Runs `quire enqueue`. Exits 1 when any file could not be added; the others still are.
pub fn run(config: &Config, args: &EnqueueArgs) -> anyhow::Result<ExitCode> {
    let app = App::open(config, 4)?;
    if let Some(id) = args.reprocess {
        return reprocess(&app, id, args.task_type.into(), args.priority.into());
    }
    let files = collect_files(&args.paths)?;
    let bar = progress(files.len());
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for (file, name) in &files {
        bar.set_message(name.to_string());
        match ingest(
            &app.store,
            &app.queue,
            file,
            name,
            Placement::Copy,
            args.priority.into(),
        ) {
            Ok(Ingested::New {
                document_id, kind, ..
            }) => bar.suspend(|| writeln!(out, "added document {document_id} ({kind}): {name}"))?,
            Ok(Ingested::Duplicate { document_id, .. }) => {
                bar.suspend(|| writeln!(out, "already document {document_id}: {name}"))?
            }
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("quire: error: cannot add {e}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Enqueues `task_type` again for document `id`.
fn reprocess(
    app: &App,
    id: i64,
    task_type: TaskType,
    priority: Priority,
) -> anyhow::Result<ExitCode> {
    match app.queue.enqueue(id, task_type, priority)? {
        Enqueued::Added(task) => println!("queued {task_type} task {task} for document {id}"),
        Enqueued::AlreadyQueued(task) => {
            println!("document {id} already has a pending or running {task_type} task: {task}")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The files named, with folders walked recursively (hidden entries skipped,
/// symlinks inside folders not followed), in a stable order, each with its
/// document name: a file's own name, or for a file found in a folder its
/// path relative to that folder (as inbox files are named relative to the
/// inbox).
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut out = vec![];
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            let mut found = vec![];
            walk(p, &mut found)
                .with_context(|| format!("cannot read the folder {}", p.display()))?;
            out.extend(found.into_iter().map(|f| {
                let name = f
                    .strip_prefix(p)
                    .unwrap_or(&f)
                    .to_string_lossy()
                    .into_owned();
                (f, name)
            }));
        } else {
            let name = p
                .file_name()
                .unwrap_or(p.as_os_str())
                .to_string_lossy()
                .into_owned();
            out.push((p.clone(), name));
        }
    }
    Ok(out)
}

/// Appends the regular files under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let ty = e.file_type()?;
        if ty.is_dir() {
            walk(&e.path(), out)?;
        } else if ty.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// A progress bar on a terminal for many files; hidden otherwise.
fn progress(n: usize) -> ProgressBar {
    if n < PROGRESS_FROM || !crate::logging::stderr_is_tty() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}").expect("valid template"),
    );
    bar
}
