//! The inbox: a watched folder whose complete files are moved into the store
//! as documents with an OCR task. See [`watcher`] for how "complete" is decided.

mod backlog;
mod emptied;
mod filter;
mod tracker;
mod watch;
mod watcher;

pub use filter::Filter;
pub use watcher::spawn;
