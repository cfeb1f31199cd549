//! The store on SQLite: one file per concern, each with its SQL inline.
//! Read operations take a pooled connection, writes the transaction
//! [`crate::db::sqlite::SqliteDb::write`] opens.

pub(crate) mod copy;
pub(crate) mod documents;
pub(crate) mod index;
pub(crate) mod pages;
pub(crate) mod search;
