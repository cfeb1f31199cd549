//! A worker thread's loop: claim a task, run its processor (catching
//! panics), then complete, fail or release it; sleep when there is nothing
//! to do until woken, stopped, or the poll interval passes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::select;

use super::pool::Shared;
use super::processor::{TaskContext, TaskError};
use crate::queue::{Claim, FailOutcome, QueueError, TaskType};

/// A worker: claim, run, finish; sleep when there is nothing to do.
pub(super) fn worker_loop(s: &Shared, worker: &str) {
    while !s.stopping.load(Ordering::SeqCst) {
        match s.app.queue.claim(worker, 1) {
            Ok(claims) if !claims.is_empty() => {
                for claim in claims {
                    // A document just read is indexed by the same worker
                    // at once: searchable the moment it is read, not when
                    // its indexing task's turn in the queue comes.
                    let mut next = Some(claim);
                    while let Some(claim) = next {
                        next = run_task(s, claim);
                    }
                }
            }
            Ok(_) => sleep_until_woken(s, s.app.config.queue.poll_interval.0),
            Err(e) => {
                log::error!("{worker}: cannot claim tasks: {e}; trying again shortly");
                sleep_until_woken(s, Duration::from_secs(1));
            }
        }
    }
}

/// Sleeps until woken, stopped, or `timeout`.
fn sleep_until_woken(s: &Shared, timeout: Duration) {
    select! {
        recv(s.wake_rx) -> _ => {}
        recv(s.stop_rx) -> _ => {}
        default(timeout) => {}
    }
}

/// Runs one claimed task to its end: completed, failed, or released.
/// After an OCR task completes, returns the claim of its document's indexing
/// task (enqueued by the completion), to be run next by this worker.
fn run_task(s: &Shared, claim: Claim) -> Option<Claim> {
    let stop = Arc::new(AtomicBool::new(false));
    s.active
        .lock()
        .unwrap()
        .insert(claim.task_id, (claim.clone(), stop.clone()));
    let name = s
        .app
        .store
        .document(claim.document_id)
        .ok()
        .flatten()
        .map(|d| d.name)
        .unwrap_or_default();
    log::info!(
        "task {} ({}) claimed: document {} {name:?}, attempt {}/{}",
        claim.task_id,
        claim.task_type,
        claim.document_id,
        claim.attempt,
        claim.max_attempts
    );
    let started = Instant::now();
    let ctx = TaskContext::new(&s.app, &claim, &stop);
    let result = catch_unwind(AssertUnwindSafe(|| {
        s.processors.get(claim.task_type).run(&ctx)
    }))
    .unwrap_or_else(|panic| {
        Err(TaskError::transient(format!(
            "processor panicked: {}",
            panic_message(&panic)
        )))
    });
    s.active.lock().unwrap().remove(&claim.task_id);
    let took = started.elapsed().as_secs_f64();
    let queue = &s.app.queue;
    let succeeded = result.is_ok();
    let finished: Result<(), QueueError> = match result {
        Ok(()) => queue.complete(&claim).map(|()| {
            log::info!(
                "task {} ({}) completed in {took:.2}s: document {} {name:?}",
                claim.task_id,
                claim.task_type,
                claim.document_id
            )
        }),
        Err(TaskError::Failed { kind, message }) => {
            queue
                .fail(&claim, kind, &message)
                .map(|outcome| match outcome {
                    FailOutcome::RetryAt(_) => log::warn!(
                        "task {} ({}) failed, will retry: document {} {name:?}: {message}",
                        claim.task_id,
                        claim.task_type,
                        claim.document_id
                    ),
                    FailOutcome::Failed => log::error!(
                        "task {} ({}) failed: document {} {name:?}: {message}",
                        claim.task_id,
                        claim.task_type,
                        claim.document_id
                    ),
                })
        }
        Err(TaskError::Interrupted) => queue.release(&claim).map(|()| {
            log::info!(
                "task {} ({}) stopped at a checkpoint and was released",
                claim.task_id,
                claim.task_type
            )
        }),
    };
    let completed = succeeded && finished.is_ok();
    match finished {
        Ok(()) => {}
        // Stopped because it was cancelled (already said): nothing to add.
        Err(e @ QueueError::LostClaim { .. }) if stop.load(Ordering::SeqCst) => {
            log::debug!("{e}")
        }
        Err(e @ QueueError::LostClaim { .. }) => log::warn!("{e}"),
        Err(e) => log::error!(
            "task {}: cannot record its result: {e}; it will be released as stale",
            claim.task_id
        ),
    }
    if !completed || claim.task_type != TaskType::Ocr || s.stopping.load(Ordering::SeqCst) {
        return None;
    }
    queue
        .claim_document(&claim.worker, claim.document_id, TaskType::Indexing)
        .inspect_err(|e| {
            log::warn!(
                "cannot claim document {}'s indexing at once: {e}",
                claim.document_id
            )
        })
        .ok()
        .flatten()
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
