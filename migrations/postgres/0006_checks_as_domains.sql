-- The queue's states as domains instead of CHECK constraints (#15): every
-- statement that writes a row checks every CHECK of its table, and the
-- executor reads each CHECK's stored expression back from its text form
-- (ExecRelCheck's stringToNode) at the first row of every execution; PL/pgSQL
-- runs each statement of the queue's functions as a new execution, so the
-- daemon's step parsed the four CHECKs of task_queue and documents about
-- five times per task: 6.6% of the server's time in perf during a drain
-- (ExecConstraints, 8 workers). A domain's constraints are kept compiled in
-- the type cache, and checked only on values assigned to the column: the
-- same rule for every write, without the parsing. pgbench running the
-- daemon's step (8 clients, 20,000 tasks; CPU time of the whole machine per
-- task from /proc/stat, so pgbench's own share is in it): 438, 437, 457 and
-- 433 us with the CHECKs, 400 and 409 with the domains, 410 and 417 with
-- no check at all (the machine's noise is about 5%). With the step written
-- in one function, 405 and 406 us with the CHECKs and 362 and 373 with the
-- domains; that form was not kept, as the Rust queue bench (40,000 tasks,
-- 8 workers, alternating runs) showed no gain from it.
--
-- Reading a domain column gives its base type (text, bigint) to the client,
-- and text or bigint values are assigned to it as before, so no statement
-- outside this file changes; RETURN QUERY wants a function's declared
-- column types exactly, hence the casts in the two claims below.
--
-- ALTER COLUMN ... TYPE rebuilds the indexes on these columns and checks
-- every row once; the triggers on task_queue's status are dropped and made
-- again around it, as 0002 wrote them (a trigger's column cannot change type).

CREATE DOMAIN quire_task_status AS text
    CHECK (VALUE IN ('pending', 'claimed', 'completed', 'failed', 'cancelled'));
CREATE DOMAIN quire_task_type AS text CHECK (VALUE IN ('ocr', 'indexing', 'pdf'));
CREATE DOMAIN quire_priority AS bigint CHECK (VALUE IN (0, 1, 2));
CREATE DOMAIN quire_document_status AS text
    CHECK (VALUE IN ('queued', 'ocr', 'indexing', 'indexed', 'failed', 'cancelled'));

DROP TRIGGER task_queue_notify ON task_queue;
DROP TRIGGER task_queue_notify_removed ON task_queue;
ALTER TABLE task_queue
    DROP CONSTRAINT task_queue_task_type_check,
    DROP CONSTRAINT task_queue_priority_check,
    DROP CONSTRAINT task_queue_status_check,
    ALTER COLUMN task_type TYPE quire_task_type,
    ALTER COLUMN priority TYPE quire_priority,
    ALTER COLUMN status TYPE quire_task_status;
ALTER TABLE documents
    DROP CONSTRAINT documents_status_check,
    ALTER COLUMN status TYPE quire_document_status;
CREATE TRIGGER task_queue_notify AFTER INSERT OR UPDATE OF status ON task_queue
    FOR EACH ROW WHEN (NEW.status IN ('pending', 'cancelled'))
    EXECUTE FUNCTION quire_notify_change();
CREATE TRIGGER task_queue_notify_removed AFTER DELETE ON task_queue
    FOR EACH ROW WHEN (OLD.status = 'claimed')
    EXECUTE FUNCTION quire_notify_change();

-- 0005's claim and 0003's claim of one document's task, with the casts.
CREATE OR REPLACE FUNCTION quire_claim(p_worker text, p_limit bigint, p_now bigint)
RETURNS TABLE (id bigint, document_id bigint, task_type text, priority bigint,
               attempts bigint, max_attempts bigint, run_after bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := coalesce(p_now, quire_now_ms());
    v_ids bigint[];
BEGIN
    -- Locked in a statement of its own, which runs once (see 0003 on why
    -- a subquery in the UPDATE must not).
    v_ids := ARRAY(
        SELECT q.id FROM task_queue q
        WHERE q.status = 'pending' AND q.run_after <= v_now
        ORDER BY q.priority, q.run_after, q.id LIMIT p_limit
        FOR UPDATE SKIP LOCKED);
    RETURN QUERY
    WITH claimed AS (
        UPDATE task_queue t
        SET status = 'claimed', claimed_by = p_worker, claimed_at = v_now,
            heartbeat_at = v_now, attempts = t.attempts + 1
        WHERE t.id = ANY (v_ids) AND CASE t.status WHEN 'pending' THEN true END
        RETURNING t.id, t.document_id, t.task_type::text, t.priority::bigint, t.attempts,
                  t.max_attempts, t.run_after
    ), ocr AS (
        UPDATE documents d SET status = 'ocr', last_error = NULL, updated_at = v_now
        FROM claimed c WHERE d.id = c.document_id AND c.task_type = 'ocr'
    )
    SELECT * FROM claimed;
END
$$;

CREATE OR REPLACE FUNCTION quire_claim_document(p_worker text, p_document bigint, p_type text,
                                     p_due_only boolean, p_now bigint)
RETURNS TABLE (id bigint, document_id bigint, task_type text, priority bigint,
               attempts bigint, max_attempts bigint, run_after bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := coalesce(p_now, quire_now_ms());
BEGIN
    RETURN QUERY
    WITH claimed AS (
        UPDATE task_queue t
        SET status = 'claimed', claimed_by = p_worker, claimed_at = v_now,
            heartbeat_at = v_now, attempts = t.attempts + 1
        WHERE t.document_id = p_document AND t.task_type = p_type
          AND t.status = 'pending' AND (NOT p_due_only OR t.run_after <= v_now)
        RETURNING t.id, t.document_id, t.task_type::text, t.priority::bigint, t.attempts,
                  t.max_attempts, t.run_after
    ), ocr AS (
        UPDATE documents d SET status = 'ocr', last_error = NULL, updated_at = v_now
        FROM claimed c WHERE d.id = c.document_id AND c.task_type = 'ocr'
    )
    SELECT * FROM claimed;
END
$$;
