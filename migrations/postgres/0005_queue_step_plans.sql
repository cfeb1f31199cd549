-- The queue's step (0003) spent a third of the server's time planning
-- (#15, perf on the server during a drain): PL/pgSQL keeps a statement's
-- generic plan only when it costs no more than the plans made for each
-- call's values, and the claim's UPDATE ... FROM (locked CTE) had no good
-- generic plan (a hash join over every pending task), so every call planned
-- it again.
--
-- The claim now locks its due tasks into an array and updates them by id
-- (`= ANY`), whose plan is the same whatever the values. The planner's
-- generic guess for `= ANY` is five rows, which makes a one-task claim's
-- generic plan look dearer than a custom one, so PL/pgSQL would still plan
-- every call; the function therefore forces generic plans. Both of its
-- plans are index walks at any queue size: the claim index in order,
-- limited (checked with a million pending tasks, run_after spread), and
-- the primary key. A connection keeps a generic plan until the table's
-- statistics change, and one made while the queue held a handful of tasks
-- was a sequential scan, kept for a batch of 200,000 (49 ms a claim, found
-- by a review); sequential scans are therefore off in the function.
--
-- A claim is checked as `CASE status WHEN 'claimed' THEN claimed_by = ...
-- END` (NULL, so false, for any other status) rather than
-- `status = 'claimed' AND claimed_by = ...`: the planner may answer the
-- latter from the partial index on claimed tasks, filtering every claimed
-- task and dead entry for the id, and does so when the statistics were
-- taken with few claims (EXPLAIN on a freshly analysed queue). It cannot
-- use a partial index for a CASE, so the primary key finds the row. The
-- claim's re-check of status = 'pending' (PITFALLS.md) is written the same
-- way, for the same reason with the claim index, whose statistics may be an
-- empty queue's when a large batch arrives.
--
-- pgbench running the daemon's step (quire_complete_and_claim, one task,
-- 8 clients) and a batch (claim 16, complete them; 4 clients), 20,000
-- tasks, 2 cores, CPU time per task from /proc/stat: step 816 and 844 µs
-- before, 369 and 428 after; batch 163 and 178 µs before, 144 and 167 after.

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
        RETURNING t.id, t.document_id, t.task_type, t.priority, t.attempts,
                  t.max_attempts, t.run_after
    ), ocr AS (
        UPDATE documents d SET status = 'ocr', last_error = NULL, updated_at = v_now
        FROM claimed c WHERE d.id = c.document_id AND c.task_type = 'ocr'
    )
    SELECT * FROM claimed;
END
$$;

-- What follows a completed OCR task: the task types in p_after_ocr (the
-- policy's; at the OCR task's priority, with p_max attempts) unless the
-- document has them live, a new indexing task marking the document
-- 'indexing'.
CREATE FUNCTION quire_after_ocr(p_document bigint, p_priority bigint, p_after_ocr text[],
                                p_max bigint, p_now bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- PL/pgSQL, not SQL: before PostgreSQL 18 a SQL function's plan lasts
    -- one transaction, so every call planned it again.
    WITH added AS (
        INSERT INTO task_queue (document_id, task_type, priority, max_attempts,
                                run_after, created_at)
        SELECT p_document, next, p_priority, p_max, p_now, p_now
        FROM unnest(p_after_ocr) AS next
        ON CONFLICT (document_id, task_type) WHERE status IN ('pending', 'claimed')
            DO NOTHING
        RETURNING task_type
    )
    UPDATE documents SET status = 'indexing', last_error = NULL, updated_at = p_now
    WHERE id = p_document AND EXISTS (SELECT 1 FROM added WHERE task_type = 'indexing');
END
$$;

CREATE OR REPLACE FUNCTION quire_complete(p_task bigint, p_worker text, p_after_ocr text[],
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
    WHERE id = p_task AND CASE status WHEN 'claimed' THEN claimed_by = p_worker END
    RETURNING document_id, task_type, priority INTO v_document, v_type, v_priority;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_type = 'ocr' THEN
        PERFORM quire_after_ocr(v_document, v_priority, p_after_ocr, p_max, v_now);
    ELSIF v_type = 'indexing' THEN
        UPDATE documents SET status = 'indexed', last_error = NULL, updated_at = v_now
        WHERE id = v_document;
    END IF;
    RETURN v_type;
END
$$;

-- As quire_complete for each task, set-based: one statement completes every
-- task still held, one marks the documents of the indexing tasks among them
-- 'indexed', and only the OCR tasks' follow-ups go one at a time (0003's
-- version called quire_complete for each: 1.3x slower for batches of 16 in
-- pgbench). The completions come first, so an OCR task and an indexing
-- task of one document in the same batch leave a new indexing task behind
-- whatever their order in the batch: the document needs indexing again.
CREATE OR REPLACE FUNCTION quire_complete_each(p_tasks bigint[], p_workers text[],
                                               p_after_ocr text[], p_max bigint, p_now bigint)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := coalesce(p_now, quire_now_ms());
    v_done bigint[];
    v_indexed bigint[];
    v_ocr_documents bigint[];
    v_ocr_priorities bigint[];
BEGIN
    WITH done AS (
        UPDATE task_queue t
        SET status = 'completed', completed_at = v_now, heartbeat_at = v_now
        FROM unnest(p_tasks, p_workers) AS held(id, worker)
        WHERE t.id = held.id AND CASE t.status WHEN 'claimed' THEN t.claimed_by = held.worker END
        RETURNING t.id, t.document_id, t.task_type, t.priority
    )
    SELECT array_agg(id),
           array_agg(document_id) FILTER (WHERE task_type = 'indexing'),
           array_agg(document_id) FILTER (WHERE task_type = 'ocr'),
           array_agg(priority) FILTER (WHERE task_type = 'ocr')
    INTO v_done, v_indexed, v_ocr_documents, v_ocr_priorities
    FROM done;
    UPDATE documents SET status = 'indexed', last_error = NULL, updated_at = v_now
    WHERE id = ANY (v_indexed);
    FOR i IN 1 .. coalesce(array_length(v_ocr_documents, 1), 0) LOOP
        PERFORM quire_after_ocr(v_ocr_documents[i], v_ocr_priorities[i], p_after_ocr,
                                p_max, v_now);
    END LOOP;
    RETURN QUERY SELECT unnest(v_done);
END
$$;
