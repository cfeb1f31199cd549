//! The store on PostgreSQL (issue 15, under construction). So far: search.
//! [`crate::store::Store`] does not dispatch here yet.

pub mod search;
