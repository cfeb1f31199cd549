-- Pages whose best reading is poor, counted per document so that `quire
-- stats` (read twice a second by the live view) need not walk every
-- document's OCR details: the OCR checkpoint keeps it up to date.
ALTER TABLE documents ADD COLUMN poor_pages INTEGER NOT NULL DEFAULT 0;
UPDATE documents SET poor_pages = (
    SELECT count(*) FROM json_each(ocr_details, '$.pages')
    WHERE json_extract(value, '$.poor') = 1
);
-- Few documents have any: stats sums over this index alone.
CREATE INDEX documents_poor ON documents (poor_pages) WHERE poor_pages > 0;
