-- Per-page text, written by the OCR task one page at a time (its checkpoint).
CREATE TABLE pages (
    document_id INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    page_number INTEGER NOT NULL,            -- 1-based
    text        TEXT    NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('text', 'ocr')),
    confidence  REAL,                        -- tesseract mean confidence 0-100; NULL for text layer
    PRIMARY KEY (document_id, page_number)
) WITHOUT ROWID;
