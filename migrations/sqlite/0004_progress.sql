-- When the claimed attempt of a task last checkpointed (Queue::record_progress).
-- The queue's own record of "this attempt got somewhere", which decides whether
-- a released attempt counts against max_attempts. Before, the queue read
-- documents.updated_at, a column the store writes for its own reasons.
ALTER TABLE task_queue ADD COLUMN progress_at INTEGER;
