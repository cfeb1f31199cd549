-- The searchable PDF: a third task type, `pdf`, which writes it after OCR;
-- the word boxes it needs, kept with each OCR'd page; and where it was written.

-- SQLite cannot alter a CHECK constraint: the queue table is rebuilt with
-- 'pdf' allowed (nothing references it, so the copy keeps every row and id).
CREATE TABLE task_queue_new (
    id           INTEGER PRIMARY KEY,
    document_id  INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    task_type    TEXT    NOT NULL CHECK (task_type IN ('ocr', 'indexing', 'pdf')),
    priority     INTEGER NOT NULL CHECK (priority IN (0, 1, 2)),
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'claimed', 'completed', 'failed', 'cancelled')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_after    INTEGER NOT NULL,
    claimed_by   TEXT,
    claimed_at   INTEGER,
    heartbeat_at INTEGER,
    completed_at INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    progress_at  INTEGER
);
INSERT INTO task_queue_new
    SELECT id, document_id, task_type, priority, status, attempts, max_attempts, run_after,
           claimed_by, claimed_at, heartbeat_at, completed_at, last_error, created_at, progress_at
    FROM task_queue;
DROP TABLE task_queue;
ALTER TABLE task_queue_new RENAME TO task_queue;
CREATE INDEX task_queue_claim ON task_queue (priority, run_after, id) WHERE status = 'pending';
CREATE INDEX task_queue_stale ON task_queue (heartbeat_at) WHERE status = 'claimed';
CREATE UNIQUE INDEX task_queue_live ON task_queue (document_id, task_type)
    WHERE status IN ('pending', 'claimed');
CREATE INDEX task_queue_document ON task_queue (document_id);
CREATE INDEX task_queue_finished ON task_queue (completed_at) WHERE completed_at IS NOT NULL;

-- Lines and word boxes of an OCR'd page, JSON (store::Layout); NULL for text-layer pages.
ALTER TABLE pages ADD COLUMN layout TEXT;

-- The searchable PDF last written for the document (an absolute path).
ALTER TABLE documents ADD COLUMN searchable_pdf TEXT;
