-- The queue's hot path does less work and dirties fewer pages. A worker's
-- step (complete one task, claim the next) changed about eight pages, each
-- a WAL frame written at commit: the task rows, four task indexes, the
-- document row and its status index. Three of those index pages go, and
-- the CHECK constraints on the columns a step sets are rewritten (below).
--
-- Migrations run with foreign-key enforcement off and are checked with
-- `PRAGMA foreign_key_check` before they commit (db/sqlite/migrations.rs),
-- so a table that others reference can be rebuilt: with enforcement on,
-- dropping `documents` would delete every row that references it.

-- CHECK constraints: SQLite evaluates `x IN (a, b, c)` with more than two
-- constants by building a temporary b-tree of the list, every time the
-- check runs, and a check on `status` runs at every claim and completion
-- (a fifth of a queue step, measured). A chain of equalities says the same
-- and costs a few comparisons. SQLite cannot alter a CHECK, so the two
-- tables whose status the queue sets are rebuilt, keeping every row and id.
CREATE TABLE documents_new (
    id               INTEGER PRIMARY KEY,
    original_name    TEXT    NOT NULL,           -- path relative to the inbox, or the enqueued path
    stored_path      TEXT    NOT NULL,           -- relative to the data dir
    size             INTEGER NOT NULL,
    sha256           TEXT    NOT NULL UNIQUE,    -- same content, same document
    kind             TEXT    NOT NULL,           -- detected from magic bytes
    page_count       INTEGER,
    status           TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (status = 'queued' OR status = 'ocr' OR status = 'indexing'
                            OR status = 'indexed' OR status = 'failed' OR status = 'cancelled'),
    last_error       TEXT,
    ocr_details      TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(ocr_details)),
    indexing_details TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(indexing_details)),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    searchable_pdf   TEXT,                       -- the searchable PDF last written (absolute path)
    poor_pages       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO documents_new
    SELECT id, original_name, stored_path, size, sha256, kind, page_count, status, last_error,
           ocr_details, indexing_details, created_at, updated_at, searchable_pdf, poor_pages
    FROM documents;
-- Drops documents' indexes and its trigger too; they are made again below.
DROP TABLE documents;
ALTER TABLE documents_new RENAME TO documents;
CREATE INDEX documents_status ON documents (status);
CREATE INDEX documents_poor ON documents (poor_pages) WHERE poor_pages > 0;
-- Deleting a document removes its index rows too.
CREATE TRIGGER documents_delete_index AFTER DELETE ON documents BEGIN
    DELETE FROM page_index WHERE rowid BETWEEN old.id * 1000000 AND old.id * 1000000 + 999999;
END;

CREATE TABLE task_queue_new (
    id           INTEGER PRIMARY KEY,
    document_id  INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    task_type    TEXT    NOT NULL
                 CHECK (task_type = 'ocr' OR task_type = 'indexing' OR task_type = 'pdf'),
    -- 0 = high, 1 = normal, 2 = low, so that ORDER BY priority is an index walk.
    priority     INTEGER NOT NULL CHECK (priority = 0 OR priority = 1 OR priority = 2),
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status = 'pending' OR status = 'claimed' OR status = 'completed'
                        OR status = 'failed' OR status = 'cancelled'),
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
CREATE INDEX task_queue_document ON task_queue (document_id);

-- One index for the active set replaces the claim index (pending) and the
-- stale index (claimed). The few claimed entries sort just before the
-- pending ones, next to the head of the queue a claim takes from, so a
-- claim and a completion usually change one leaf page here, not one in
-- each of two indexes. Stale checks and the running list read the claimed
-- prefix: one entry per running task.
-- Written with OR, not IN: SQLite uses a partial index when the query's
-- WHERE implies the index's, and `status = 'pending'` implies an OR of
-- equalities but not an IN list.
CREATE INDEX task_queue_active ON task_queue (status, priority, run_after, id)
    WHERE status = 'pending' OR status = 'claimed';

-- Finished tasks were indexed by completion time, for purge and for "completed
-- in the last hour"; every successful completion added an entry. Now only
-- failed and cancelled tasks are (the recent failures `stats` lists, and the
-- cancelled ones purge deletes); `stats` counts completions in the one scan
-- of the queue it already makes, and purge, every few minutes, scans the
-- queue for old completed tasks.
CREATE INDEX task_queue_finished ON task_queue (completed_at)
    WHERE status = 'failed' OR status = 'cancelled';

-- One live (pending or claimed) task per document and type, enforced by
-- triggers instead of the partial unique index, which changed a page at
-- every completion: the triggers only read, through task_queue_document,
-- and only when a task becomes live (enqueue, retry). A second live task is
-- not an error but a no-op, as with the unique index under `ON CONFLICT DO
-- NOTHING` and `UPDATE OR IGNORE`: RAISE(IGNORE) skips the row and the
-- caller sees no row changed. SQLite lets one writer in at a time, so the
-- check and the write cannot interleave with another writer's.
CREATE TRIGGER task_queue_one_live_insert BEFORE INSERT ON task_queue
    WHEN (NEW.status = 'pending' OR NEW.status = 'claimed') AND EXISTS (
        SELECT 1 FROM task_queue WHERE document_id = NEW.document_id
            AND task_type = NEW.task_type AND (status = 'pending' OR status = 'claimed'))
BEGIN
    SELECT RAISE(IGNORE);
END;
CREATE TRIGGER task_queue_one_live_update BEFORE UPDATE OF status ON task_queue
    WHEN (NEW.status = 'pending' OR NEW.status = 'claimed')
        AND NOT (OLD.status = 'pending' OR OLD.status = 'claimed')
        AND EXISTS (
            SELECT 1 FROM task_queue WHERE document_id = NEW.document_id
                AND task_type = NEW.task_type AND (status = 'pending' OR status = 'claimed')
                AND id <> NEW.id)
BEGIN
    SELECT RAISE(IGNORE);
END;
