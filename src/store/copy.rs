//! What `quire copy-db` copies from a SQLite installation into PostgreSQL:
//! the tables, their columns and types, and the values in between. The
//! reading is `store/sqlite/copy.rs`'s, the writing `store/postgres/copy.rs`'s.

/// A column's type, as both engines store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Text,
    /// JSON: text on SQLite, jsonb on PostgreSQL.
    Json,
}

/// One table copied whole, rows in the order of `key`.
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    pub key: &'static str,
}

use Kind::{Int, Json, Real, Text};

/// The tables, parents before children. `page_index` is copied as text;
/// PostgreSQL makes each page's vector as it inserts it.
pub const TABLES: &[Table] = &[
    Table {
        name: "documents",
        columns: &[
            ("id", Int),
            ("original_name", Text),
            ("stored_path", Text),
            ("size", Int),
            ("sha256", Text),
            ("kind", Text),
            ("page_count", Int),
            ("status", Text),
            ("last_error", Text),
            ("ocr_details", Json),
            ("indexing_details", Json),
            ("created_at", Int),
            ("updated_at", Int),
            ("searchable_pdf", Text),
            ("poor_pages", Int),
        ],
        key: "id",
    },
    Table {
        name: "duplicates",
        columns: &[
            ("id", Int),
            ("document_id", Int),
            ("original_name", Text),
            ("stored_path", Text),
            ("created_at", Int),
        ],
        key: "id",
    },
    Table {
        name: "task_queue",
        columns: &[
            ("id", Int),
            ("document_id", Int),
            ("task_type", Text),
            ("priority", Int),
            ("status", Text),
            ("attempts", Int),
            ("max_attempts", Int),
            ("run_after", Int),
            ("claimed_by", Text),
            ("claimed_at", Int),
            ("heartbeat_at", Int),
            ("completed_at", Int),
            ("last_error", Text),
            ("created_at", Int),
            ("progress_at", Int),
        ],
        key: "id",
    },
    Table {
        name: "pages",
        columns: &[
            ("document_id", Int),
            ("page_number", Int),
            ("text", Text),
            ("source", Text),
            ("confidence", Real),
            ("layout", Json),
        ],
        key: "document_id, page_number",
    },
    Table {
        name: "page_index",
        columns: &[("document_id", Int), ("page_number", Int), ("text", Text)],
        key: "document_id, page_number",
    },
    Table {
        name: "index_staging",
        columns: &[("document_id", Int), ("page_number", Int), ("text", Text)],
        key: "document_id, page_number",
    },
];

/// A value of a [`Kind`]; `Null` for SQL NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// How many rows the reader hands the writer at a time.
pub const BATCH: usize = 1000;
