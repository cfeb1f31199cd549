//! The queue's vocabulary: task types, priorities, statuses, tasks and errors.

use serde::Serialize;

use crate::db::DbError;
use crate::store::DocumentStatus;
use crate::text_enum::text_enum;

/// What a task does to its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskType {
    /// Read every page's text (text layer or tesseract).
    Ocr,
    /// Put the pages' text into the full-text index.
    Indexing,
    /// Write the searchable PDF (`output.dir`). An output, not a stage: it
    /// never changes its document's status (see [`TaskType::is_stage`]).
    Pdf,
}

/// How urgent a task is; high before normal before low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    Normal,
    Low,
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending,
    Claimed,
    Completed,
    Failed,
    Cancelled,
}

text_enum!(TaskType { Ocr => "ocr", Indexing => "indexing", Pdf => "pdf" });
text_enum!(Priority { High => "high", Normal => "normal", Low => "low" });
text_enum!(TaskStatus {
    Pending => "pending",
    Claimed => "claimed",
    Completed => "completed",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl Priority {
    /// The integer stored in `task_queue.priority` (0 = high), so that ordering
    /// by priority is an index walk.
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// The inverse of [`Priority::rank`].
    pub fn from_rank(rank: i64) -> Priority {
        match rank {
            0 => Priority::High,
            1 => Priority::Normal,
            _ => Priority::Low,
        }
    }
}

impl TaskType {
    /// True for the tasks that take a document towards searchable (OCR,
    /// indexing): their progress is the document's status, and their failure
    /// or cancelling fails or cancels the document. The searchable PDF is
    /// made from a document already read: its task leaves the status alone.
    pub fn is_stage(self) -> bool {
        !matches!(self, TaskType::Pdf)
    }

    /// The document status while a task of this type waits to be claimed;
    /// `None` leaves it as it is.
    pub fn queued_document_status(self) -> Option<DocumentStatus> {
        match self {
            TaskType::Ocr => Some(DocumentStatus::Queued),
            TaskType::Indexing => Some(DocumentStatus::Indexing),
            TaskType::Pdf => None,
        }
    }

    /// The document status a claim of this type moves the document to;
    /// `None` leaves it as it is. Only OCR has a running status of its own:
    /// a document is already "indexing" from the moment its indexing task
    /// is queued (see [`TaskType::queued_document_status`]), so claiming
    /// one writes nothing to the document, a write saved on the queue's
    /// commonest step.
    pub fn claimed_document_status(self) -> Option<DocumentStatus> {
        match self {
            TaskType::Ocr => Some(DocumentStatus::Ocr),
            TaskType::Indexing | TaskType::Pdf => None,
        }
    }
}

/// A task as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub id: i64,
    pub document_id: i64,
    pub task_type: TaskType,
    pub priority: Priority,
    pub status: TaskStatus,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: i64,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// A task this worker holds a claim on. Every later update of it (heartbeat,
/// complete, fail, release) is fenced by `worker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub task_id: i64,
    pub document_id: i64,
    pub task_type: TaskType,
    pub priority: Priority,
    /// Attempts so far, this one included.
    pub attempt: i64,
    pub max_attempts: i64,
    pub worker: String,
}

/// What [`crate::queue::Queue::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// A new task with this id.
    Added(i64),
    /// The document already had a pending or claimed task of this type: this one.
    AlreadyQueued(i64),
}

impl Enqueued {
    /// The id of the task that is now live, new or not.
    pub fn task_id(self) -> i64 {
        match self {
            Enqueued::Added(id) | Enqueued::AlreadyQueued(id) => id,
        }
    }
}

/// Whether a failure is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// May succeed later (I/O hiccup, out of memory, a timeout): retry with backoff.
    Transient,
    /// Will fail the same way every time (corrupt, unsupported, encrypted input).
    Permanent,
}

/// What became of a failed task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Back to pending, due again at this time (Unix ms).
    RetryAt(i64),
    /// Finished as failed: permanent, or out of attempts.
    Failed,
}

impl FailOutcome {
    /// The status, `run_after` and `completed_at` it leaves on its task.
    pub(crate) fn columns(self, now: i64) -> (&'static str, i64, Option<i64>) {
        match self {
            FailOutcome::RetryAt(at) => ("pending", at, None),
            FailOutcome::Failed => ("failed", now, Some(now)),
        }
    }
}

/// Errors from queue operations.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(
        "task {task_id} is no longer claimed by {worker} (it was released as stale, cancelled or \
         taken by another worker); its result was discarded"
    )]
    LostClaim { task_id: i64, worker: String },
    #[error("no task with id {0}; `quire list` and `quire show ID` list the tasks there are")]
    TaskNotFound(i64),
    #[error("no document with id {0}; `quire list` shows the documents there are")]
    DocumentNotFound(i64),
    #[error("task {task_id} is {status}; only {allowed} tasks can be {action}")]
    WrongStatus {
        task_id: i64,
        status: TaskStatus,
        allowed: &'static str,
        action: &'static str,
    },
    #[error(
        "task {task_id} cannot be retried: document {document_id} already has a pending or \
         claimed {task_type} task"
    )]
    AlreadyLive {
        task_id: i64,
        document_id: i64,
        task_type: TaskType,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}
