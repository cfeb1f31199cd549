//! The store on PostgreSQL: documents, pages and OCR checkpoints, the index
//! and search, each a function over a client or transaction with its SQL
//! inline, as in `store/sqlite/`, which [`crate::store::Store`] dispatches
//! to when `database.url` names a PostgreSQL database.

pub mod copy;
pub mod documents;
pub mod index;
pub mod pages;
pub mod search;

use std::borrow::Cow;

/// `text` without NUL characters, which PostgreSQL's `text` refuses (and
/// `jsonb` as `\u0000`) but a PDF's text layer can hold (pdf-extract
/// writes one for a glyph it cannot map); SQLite keeps them.
pub(crate) fn without_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', ""))
    } else {
        Cow::Borrowed(text)
    }
}
