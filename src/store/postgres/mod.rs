//! The store on PostgreSQL (issue 15, under construction): documents,
//! pages and OCR checkpoints, the index and search, each a function over a
//! client or transaction with its SQL inline, as in `store/sqlite/`.
//! [`crate::store::Store`] does not dispatch here yet.

pub mod copy;
pub mod documents;
pub mod index;
pub mod pages;
pub mod search;
