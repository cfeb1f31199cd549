-- Documents and the task queue. Timestamps are Unix milliseconds (UTC).

CREATE TABLE documents (
    id               INTEGER PRIMARY KEY,
    original_name    TEXT    NOT NULL,           -- path relative to the inbox, or the enqueued path
    stored_path      TEXT    NOT NULL,           -- relative to the data dir
    size             INTEGER NOT NULL,
    sha256           TEXT    NOT NULL UNIQUE,    -- same content, same document
    kind             TEXT    NOT NULL,           -- detected from magic bytes
    page_count       INTEGER,
    status           TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'ocr', 'indexing', 'indexed', 'failed', 'cancelled')),
    last_error       TEXT,
    ocr_details      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(ocr_details)),
    indexing_details TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(indexing_details)),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);

CREATE INDEX documents_status ON documents (status);

-- Files whose content was already a document: kept, moved aside, recorded.
CREATE TABLE duplicates (
    id            INTEGER PRIMARY KEY,
    document_id   INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    original_name TEXT    NOT NULL,
    stored_path   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

-- priority: 0 = high, 1 = normal, 2 = low, so that ORDER BY priority is an index walk.
CREATE TABLE task_queue (
    id           INTEGER PRIMARY KEY,
    document_id  INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    task_type    TEXT    NOT NULL CHECK (task_type IN ('ocr', 'indexing')),
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
    created_at   INTEGER NOT NULL
);

-- The claim query walks this index: pending tasks by priority, then by when they became due.
CREATE INDEX task_queue_claim ON task_queue (priority, run_after, id) WHERE status = 'pending';
-- Stale detection walks claimed tasks by heartbeat.
CREATE INDEX task_queue_stale ON task_queue (heartbeat_at) WHERE status = 'claimed';
-- The deduplication: at most one live task per document and type.
CREATE UNIQUE INDEX task_queue_live ON task_queue (document_id, task_type)
    WHERE status IN ('pending', 'claimed');
CREATE INDEX task_queue_document ON task_queue (document_id);
-- Purge and throughput look finished tasks up by completion time.
CREATE INDEX task_queue_finished ON task_queue (completed_at) WHERE completed_at IS NOT NULL;
