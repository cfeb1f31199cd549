-- Wake-ups across hosts: a commit that makes work (a task becomes pending)
-- or takes a claim away (cancelled, removed) notifies the channel
-- quire_changes, which every daemon LISTENs on (db/postgres/watch.rs).
-- Claims and completions do not notify: every daemon would wake at every
-- step of every other. PostgreSQL delivers a transaction's notifications at
-- commit and folds identical ones, so a batch of 10,000 tasks is one.
CREATE FUNCTION quire_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('quire_changes', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER task_queue_notify AFTER INSERT OR UPDATE OF status ON task_queue
    FOR EACH ROW WHEN (NEW.status IN ('pending', 'cancelled'))
    EXECUTE FUNCTION quire_notify_change();
CREATE TRIGGER task_queue_notify_removed AFTER DELETE ON task_queue
    FOR EACH ROW WHEN (OLD.status = 'claimed')
    EXECUTE FUNCTION quire_notify_change();
