//! A worker thread's loop: claim a task, run its processor (catching
//! panics), then complete, fail or release it; with nothing to claim, help
//! a running task that shares its work; sleep when there is nothing to do
//! until woken, stopped, or the poll interval passes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::select;

use super::helpers::{LostBy, lost_claim_reason};
use super::pool::Shared;
use super::processor::{TaskContext, TaskError};
use crate::queue::{Claim, FailOutcome, QueueError};

/// A worker: claim, run, finish; sleep when there is nothing to do.
pub(super) fn worker_loop(s: &Shared, worker: &str) {
    while !s.stopping.load(Ordering::SeqCst) {
        match s.app.queue.claim(worker, 1) {
            Ok(mut claims) if !claims.is_empty() => {
                // Each completion claims the next task in the same
                // transaction (after OCR: that document's indexing, so it is
                // searchable the moment it is read): one commit per task.
                while let Some(claim) = claims.pop() {
                    if s.stopping.load(Ordering::SeqCst) {
                        // Claimed with the last completion; not started.
                        if let Err(e) = s.app.queue.release(&claim) {
                            log::warn!("task {}: cannot release it: {e}", claim.task_id);
                        }
                        continue;
                    }
                    claims.extend(run_task(s, claim));
                }
            }
            // Nothing to claim: help a running task (one page of a long
            // document), then look at the queue again.
            Ok(_) if s.offers.help_one(worker) => {}
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
/// Returns the worker's next claim when the completion took one (see
/// [`crate::queue::Queue::complete_and_claim`]); none while stopping.
fn run_task(s: &Shared, claim: Claim) -> Vec<Claim> {
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
    let busy = crate::metrics::busy();
    let ctx = TaskContext::new(&s.app, &claim, stop.clone()).in_pool(&s.offers);
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
    drop(busy);
    let took = started.elapsed().as_secs_f64();
    let queue = &s.app.queue;
    let mut next = vec![];
    let finished: Result<(), QueueError> = match result {
        Ok(()) => {
            let completed = if s.stopping.load(Ordering::SeqCst) {
                queue.complete(&claim)
            } else {
                queue
                    .complete_and_claim(&claim, 1)
                    .map(|claims| next = claims)
            };
            completed.map(|()| {
                crate::metrics::task_completed(claim.task_type);
                log::info!(
                    "task {} ({}) completed in {took:.2}s: document {} {name:?}",
                    claim.task_id,
                    claim.task_type,
                    claim.document_id
                )
            })
        }
        Err(TaskError::Failed { kind, message }) => {
            crate::metrics::task_failed(claim.task_type);
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
        Err(TaskError::Paused) => queue.release(&claim).map(|()| {
            log::info!(
                "task {} ({}) paused after {took:.0}s to let a waiting task go first; \
                 it resumes where it stopped",
                claim.task_id,
                claim.task_type,
            )
        }),
        Err(TaskError::Interrupted) => queue.release(&claim).map(|()| {
            log::info!(
                "task {} ({}) stopped at a checkpoint and was released",
                claim.task_id,
                claim.task_type
            )
        }),
    };
    match finished {
        Ok(()) => {}
        // One line however the loss was noticed (the waker, the heartbeat,
        // or a fenced write of the task's own), saying why when it can.
        Err(e @ QueueError::LostClaim { .. }) => match lost_claim_reason(&s.app, &claim) {
            Some(why @ LostBy::Cancelled) => log::info!(
                "task {} ({}) of document {} {why}; stopped it, its work is kept up to \
                 its last checkpoint",
                claim.task_id,
                claim.task_type,
                claim.document_id
            ),
            Some(why) => log::warn!(
                "task {} ({}) of document {} {why}; stopped it, its result was discarded",
                claim.task_id,
                claim.task_type,
                claim.document_id
            ),
            None => log::warn!("{e}"),
        },
        Err(e) => log::error!(
            "task {}: cannot record its result: {e}; it will be released as stale",
            claim.task_id
        ),
    }
    next
}

/// The message of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
