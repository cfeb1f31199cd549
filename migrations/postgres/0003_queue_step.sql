-- A worker's step as functions (queue/postgres/lease.rs, claim.rs): the
-- daemon's complete-the-task-and-claim-the-next is one statement, so one
-- round trip and one commit, where the same statements sent one by one
-- made about eight round trips (BEGIN, the server's clock, the completion,
-- its document, the claim, its documents, COMMIT). Round trips, not the
-- server's work, were most of a step's time (#15). The rules live here
-- once: quire's Rust code calls these functions for every claim and
-- completion on PostgreSQL.
--
-- Times are Unix ms (bigint), as in every table. A NULL `p_now` means the
-- server's clock at the call; tests pass a fixed time.
-- `#variable_conflict use_column`: a name such as `id` is the table's column,
-- not the function's output column of the same name.

CREATE FUNCTION quire_now_ms() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;

-- Claims up to p_limit due pending tasks for p_worker, by priority, then
-- when they became due, then id; counts an attempt on each and marks an OCR
-- task's document 'ocr'. The rows come back in no particular order.
--
-- The due tasks are locked in a MATERIALIZED CTE, which runs once. Written
-- as `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`
-- (as quire's claim was), the planner may put the subquery on the inner
-- side of a join and run it again for every outer row: each run skips the
-- rows the other workers' runs locked and locks one more, so two workers
-- ended up locking tens of thousands of rows each, for minutes, to claim
-- one task (seen after a VACUUM changed the table's statistics, #15). The
-- UPDATE still re-checks status = 'pending', as PITFALLS.md asks.
CREATE FUNCTION quire_claim(p_worker text, p_limit bigint, p_now bigint)
RETURNS TABLE (id bigint, document_id bigint, task_type text, priority bigint,
               attempts bigint, max_attempts bigint, run_after bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := coalesce(p_now, quire_now_ms());
BEGIN
    RETURN QUERY
    WITH due AS MATERIALIZED (
        SELECT q.id FROM task_queue q
        WHERE q.status = 'pending' AND q.run_after <= v_now
        ORDER BY q.priority, q.run_after, q.id LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE task_queue t
        SET status = 'claimed', claimed_by = p_worker, claimed_at = v_now,
            heartbeat_at = v_now, attempts = t.attempts + 1
        FROM due WHERE t.id = due.id AND t.status = 'pending'
        RETURNING t.id, t.document_id, t.task_type, t.priority, t.attempts,
                  t.max_attempts, t.run_after
    ), ocr AS (
        UPDATE documents d SET status = 'ocr', last_error = NULL, updated_at = v_now
        FROM claimed c WHERE d.id = c.document_id AND c.task_type = 'ocr'
    )
    SELECT * FROM claimed;
END
$$;

-- Claims p_document's pending task of p_type for p_worker: due or not
-- (`quire process`), or, with p_due_only, only if due. Zero rows or one.
-- It sets a claim's columns as quire_claim does: sharing them through a
-- function over an array of ids made the daemon's step a third slower.
CREATE FUNCTION quire_claim_document(p_worker text, p_document bigint, p_type text,
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
        RETURNING t.id, t.document_id, t.task_type, t.priority, t.attempts,
                  t.max_attempts, t.run_after
    ), ocr AS (
        UPDATE documents d SET status = 'ocr', last_error = NULL, updated_at = v_now
        FROM claimed c WHERE d.id = c.document_id AND c.task_type = 'ocr'
    )
    SELECT * FROM claimed;
END
$$;

-- Completes p_task if p_worker still holds it and returns its type (NULL,
-- and nothing changed, when it does not), and moves its document on: a
-- completed OCR task enqueues the task types in p_after_ocr (the policy's;
-- at the OCR task's priority, with p_max attempts) unless the document has
-- them live, a new indexing task marking the document 'indexing'; a
-- completed indexing task marks it 'indexed'.
CREATE FUNCTION quire_complete(p_task bigint, p_worker text, p_after_ocr text[],
                               p_max bigint, p_now bigint)
RETURNS text LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := coalesce(p_now, quire_now_ms());
    v_document bigint;
    v_type text;
    v_priority bigint;
BEGIN
    UPDATE task_queue SET status = 'completed', completed_at = v_now, heartbeat_at = v_now
    WHERE id = p_task AND status = 'claimed' AND claimed_by = p_worker
    RETURNING document_id, task_type, priority INTO v_document, v_type, v_priority;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_type = 'ocr' THEN
        WITH added AS (
            INSERT INTO task_queue (document_id, task_type, priority, max_attempts,
                                    run_after, created_at)
            SELECT v_document, next, v_priority, p_max, v_now, v_now
            FROM unnest(p_after_ocr) AS next
            ON CONFLICT (document_id, task_type) WHERE status IN ('pending', 'claimed')
                DO NOTHING
            RETURNING task_type
        )
        UPDATE documents SET status = 'indexing', last_error = NULL, updated_at = v_now
        WHERE id = v_document AND EXISTS (SELECT 1 FROM added WHERE task_type = 'indexing');
    ELSIF v_type = 'indexing' THEN
        UPDATE documents SET status = 'indexed', last_error = NULL, updated_at = v_now
        WHERE id = v_document;
    END IF;
    RETURN v_type;
END
$$;

-- Completes each of p_tasks, claimed by the worker at the same place in
-- p_workers, as quire_complete does, all at one time and in one commit;
-- returns the ids of those still held (the others changed nothing).
CREATE FUNCTION quire_complete_each(p_tasks bigint[], p_workers text[], p_after_ocr text[],
                                    p_max bigint, p_now bigint)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := coalesce(p_now, quire_now_ms());
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_tasks, 1), 0) LOOP
        IF quire_complete(p_tasks[i], p_workers[i], p_after_ocr, p_max, v_now) IS NOT NULL THEN
            RETURN NEXT p_tasks[i];
        END IF;
    END LOOP;
END
$$;

-- A worker's step: completes p_task as quire_complete does, then claims
-- the worker's next work: after an OCR task its document's indexing task,
-- if due (so the document is searchable the moment it is read), else up
-- to p_limit due tasks. A claim p_worker no longer holds raises SQLSTATE
-- QU001 (lost claim), so nothing is completed or claimed.
CREATE FUNCTION quire_complete_and_claim(p_task bigint, p_worker text, p_after_ocr text[],
                                         p_max bigint, p_limit bigint, p_now bigint)
RETURNS TABLE (id bigint, document_id bigint, task_type text, priority bigint,
               attempts bigint, max_attempts bigint, run_after bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_now bigint := coalesce(p_now, quire_now_ms());
    v_type text;
BEGIN
    v_type := quire_complete(p_task, p_worker, p_after_ocr, p_max, v_now);
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'task % is no longer claimed by %', p_task, p_worker
            USING ERRCODE = 'QU001';
    END IF;
    IF v_type = 'ocr' THEN
        RETURN QUERY SELECT c.* FROM task_queue t,
                     quire_claim_document(p_worker, t.document_id, 'indexing', true, v_now) c
                     WHERE t.id = p_task;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM quire_claim(p_worker, p_limit, v_now);
END
$$;
