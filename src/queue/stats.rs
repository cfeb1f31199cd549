//! What `quire stats` and the live view show: counts of tasks and documents
//! by status, the oldest pending task, throughput, failures, running tasks.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{TaskStatus, TaskType};
use crate::store::IndexPhase;

/// Tasks per status; every status is present, zero or not.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StatusCounts {
    pub pending: i64,
    pub claimed: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
}

impl StatusCounts {
    /// Adds `n` tasks of `status`.
    pub(crate) fn add(&mut self, status: TaskStatus, n: i64) {
        let slot = match status {
            TaskStatus::Pending => &mut self.pending,
            TaskStatus::Claimed => &mut self.claimed,
            TaskStatus::Completed => &mut self.completed,
            TaskStatus::Failed => &mut self.failed,
            TaskStatus::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }
}

/// A recently failed task.
#[derive(Debug, Clone, Serialize)]
pub struct RecentFailure {
    pub task_id: i64,
    pub document_id: i64,
    pub task_type: TaskType,
    pub error: String,
    pub at: i64,
}

/// A snapshot of the queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStats {
    /// Documents per status, with `total`; every status is present.
    pub documents: BTreeMap<String, i64>,
    pub tasks: StatusCounts,
    pub by_type: BTreeMap<String, StatusCounts>,
    /// Age of the oldest due pending task, in milliseconds.
    pub oldest_pending_ms: Option<i64>,
    /// Tasks completed in the last minute and the last hour.
    pub completed_last_minute: i64,
    pub completed_last_hour: i64,
    /// The five newest failures.
    pub recent_failures: Vec<RecentFailure>,
    /// Pages whose best reading was poor (see [`crate::store::POOR_CONFIDENCE`]),
    /// and the documents that have any.
    pub poor_pages: i64,
    pub documents_with_poor_pages: i64,
}

/// A claimed task with its document's progress, for the live view.
#[derive(Debug, Clone, Serialize)]
pub struct RunningTask {
    pub task_id: i64,
    pub task_type: TaskType,
    pub worker: String,
    pub document_id: i64,
    pub name: String,
    pub pages_total: Option<i64>,
    pub pages_done: i64,
    /// The indexing phase, for an indexing task that has begun.
    pub phase: Option<IndexPhase>,
}

impl QueueStats {
    /// The one-line summary the live view, systemd's status line and the
    /// scheduler's log show.
    pub fn summary(&self) -> String {
        let docs = |s: &str| self.documents.get(s).copied().unwrap_or(0);
        format!(
            "queue: {} pending, {} running, {} failed | documents: {} indexed of {}, {} failed",
            self.tasks.pending,
            self.tasks.claimed,
            self.tasks.failed,
            docs("indexed"),
            docs("total"),
            docs("failed")
        )
    }
}
