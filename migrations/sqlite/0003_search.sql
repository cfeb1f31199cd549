-- Full-text index over page text, one row per page, rowid = document_id * 1000000 + page_number
-- so that a document's rows are one rowid range (replaced in one statement, no table scan).
CREATE VIRTUAL TABLE page_index USING fts5 (
    text,
    document_id UNINDEXED,
    page_number UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Normalised page text staged by an indexing task, batch by batch, before it is
-- swapped into page_index in one transaction (so search never sees half a document).
CREATE TABLE index_staging (
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    page_number INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    PRIMARY KEY (document_id, page_number)
) WITHOUT ROWID;

-- Deleting a document removes its index rows too.
CREATE TRIGGER documents_delete_index AFTER DELETE ON documents BEGIN
    DELETE FROM page_index WHERE rowid BETWEEN old.id * 1000000 AND old.id * 1000000 + 999999;
END;
