//! The one small interface between the pool and the work: a [`Processor`] per
//! task type.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::sharing::{Divisible, Offered, Offers};
use crate::app::App;
use crate::queue::{Claim, FailureKind, QueueError, TaskType};

/// Does one task type's work for one claimed task.
///
/// Contract: `run` checkpoints as it goes (so a later claim of the same task
/// resumes), checks [`TaskContext::should_stop`] between steps and returns
/// [`TaskError::Interrupted`] when told to, and reports bad input as a
/// [`FailureKind::Permanent`] failure with a message that names the problem.
/// A panic is caught by the pool and fails the task.
pub trait Processor: Send + Sync {
    fn run(&self, ctx: &TaskContext<'_>) -> Result<(), TaskError>;
}

/// Why a task did not complete.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskError {
    /// It failed; permanent failures are not retried.
    Failed { kind: FailureKind, message: String },
    /// It stopped because the daemon is shutting down or the claim was lost.
    Interrupted,
    /// It stopped at a checkpoint to let waiting work go first
    /// ([`TaskContext::should_give_way`]); it goes back to the queue, due
    /// now, and resumes there.
    Paused,
}

impl TaskError {
    /// A failure that will not go away by retrying.
    pub fn permanent(message: impl Into<String>) -> TaskError {
        TaskError::Failed {
            kind: FailureKind::Permanent,
            message: message.into(),
        }
    }

    /// A failure that may go away.
    pub fn transient(message: impl Into<String>) -> TaskError {
        TaskError::Failed {
            kind: FailureKind::Transient,
            message: message.into(),
        }
    }

    /// The database failed the task's read or write: transient.
    pub fn database(error: impl std::fmt::Display) -> TaskError {
        TaskError::transient(format!("database: {error}"))
    }
}

/// What a running task can see.
pub struct TaskContext<'a> {
    pub app: &'a App,
    pub claim: &'a Claim,
    attempt: Attempt,
    /// Where the task may offer parts of its work to idle workers (none
    /// in tests).
    offers: Option<&'a Offers>,
    /// True in a daemon's pool, where a long task gives way to waiting ones.
    gives_way: bool,
    /// When the task started running, for its time slice.
    started: Instant,
}

impl<'a> TaskContext<'a> {
    /// A context for running a processor outside the pool (`quire process`, tests).
    pub fn new(app: &'a App, claim: &'a Claim, stop: Arc<AtomicBool>) -> Self {
        TaskContext {
            app,
            claim,
            attempt: Attempt {
                app: app.clone(),
                claim: claim.clone(),
                stop,
                progressed: Arc::default(),
            },
            offers: None,
            gives_way: false,
            started: Instant::now(),
        }
    }

    /// A context whose task shares its work with the pool's idle workers
    /// and gives way to waiting tasks.
    pub(super) fn in_pool(mut self, offers: &'a Offers) -> Self {
        self.offers = Some(offers);
        self.gives_way = true;
        self
    }

    /// A context whose task shares its work with the helpers looking at
    /// `offers` (`quire process`), and runs to its end.
    pub fn with_helpers(mut self, offers: &'a Offers) -> Self {
        self.offers = Some(offers);
        self
    }

    /// Records that this attempt made progress; see [`Attempt::record_progress`].
    pub fn record_progress(&self) -> Result<(), TaskError> {
        self.attempt.record_progress()
    }

    /// True when the task should stop at the next checkpoint.
    pub fn should_stop(&self) -> bool {
        self.attempt.should_stop()
    }

    /// The flag behind [`TaskContext::should_stop`], for work that waits
    /// (an OCR child reading a page) and must give up as soon as it is set.
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.attempt.stop
    }

    /// True when the task, run by a daemon's worker, has used its time
    /// slice (`queue.time_slice`) and a task of its priority or a higher
    /// one waits for a worker: a long task should then stop at its next
    /// checkpoint with [`TaskError::Paused`], to resume after. Never outside
    /// a daemon (`quire process` runs its one task to the end).
    pub fn should_give_way(&self) -> bool {
        self.gives_way
            && self.started.elapsed() >= self.app.config.queue.time_slice.0
            && self
                .app
                .queue
                .others_waiting(self.claim.priority)
                .unwrap_or(false)
    }

    /// This attempt, owned, for the threads that help with it.
    pub fn attempt(&self) -> Attempt {
        self.attempt.clone()
    }

    /// Offers parts of this task to idle workers until the returned guard
    /// is dropped (see [`Offers`]); `None` when there are none to offer it
    /// to, and the task does all its work itself.
    pub fn offer(&self, work: Arc<dyn Divisible>) -> Option<Offered> {
        self.offers.map(|o| o.offer(work))
    }
}

/// One attempt of a claimed task, owned: what a helping worker needs to do
/// part of it on another thread.
#[derive(Clone)]
pub struct Attempt {
    pub app: App,
    pub claim: Claim,
    stop: Arc<AtomicBool>,
    /// True once this attempt's progress is recorded.
    progressed: Arc<AtomicBool>,
}

impl Attempt {
    /// Records that this attempt made progress (a checkpoint that a later
    /// attempt will not redo), so that its death does not use up an attempt.
    /// Only the first call of an attempt writes, from whichever thread: that
    /// is all the queue needs to know. A lost claim interrupts the task.
    pub fn record_progress(&self) -> Result<(), TaskError> {
        if self.progressed.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        match self.app.queue.record_progress(&self.claim) {
            Ok(()) => Ok(()),
            Err(QueueError::LostClaim { .. }) => Err(TaskError::Interrupted),
            Err(e) => Err(TaskError::database(e)),
        }
    }

    /// True when the task should stop at the next checkpoint: the daemon is
    /// stopping, or the claim was lost or cancelled.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The flag behind [`Attempt::should_stop`].
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// Tells every thread working on this attempt to stop (a helper that
    /// met a fault the whole task must stop for).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The processor for each task type.
#[derive(Clone)]
pub struct Processors {
    pub ocr: Arc<dyn Processor>,
    pub indexing: Arc<dyn Processor>,
    pub pdf: Arc<dyn Processor>,
}

impl Processors {
    /// The processor for `t`.
    pub fn get(&self, t: TaskType) -> &dyn Processor {
        match t {
            TaskType::Ocr => self.ocr.as_ref(),
            TaskType::Indexing => self.indexing.as_ref(),
            TaskType::Pdf => self.pdf.as_ref(),
        }
    }
}
