//! The indexing processor: makes a document's page text searchable, in phases
//! recorded in `documents.indexing_details` so a restarted task resumes:
//! `stage` (normalise pages and stage them in batches), `finalize` (the staged
//! rows replace the document's index rows in one transaction), `done`.

use crate::store::IndexPhase;
use crate::worker::{Processor, TaskContext, TaskError};

/// The indexing processor.
pub struct IndexProcessor {
    batch_pages: usize,
}

impl IndexProcessor {
    pub fn new(batch_pages: usize) -> IndexProcessor {
        IndexProcessor {
            batch_pages: batch_pages.max(1),
        }
    }
}

/// Brings the index in line with `index.stemming` before indexing starts,
/// logging a rebuild. Only `serve` rebuilds (`rebuild = true`): a rebuild
/// holds the write lock for as long as it takes, and a one-off command run
/// with another configuration than the daemon's must not flip the index
/// back and forth; it only warns.
pub fn prepare(app: &crate::app::App, rebuild: bool) -> anyhow::Result<()> {
    let stemming = app.config.index.stemming;
    let store = &app.store;
    let db = |e| anyhow::anyhow!("cannot check the search index for index.stemming: {e}");
    if store.stemming_matches(stemming).map_err(db)? {
        return Ok(());
    }
    if !rebuild {
        log::warn!(
            "the search index was built with another index.stemming than {stemming:?}; \
             quire serve rebuilds it (this command indexes with the index as it is)"
        );
        return Ok(());
    }
    let n = store.ensure_stemming(stemming).map_err(db)?;
    log::info!("rebuilt the search index with stemming {stemming:?} ({n} pages)");
    Ok(())
}

/// Normalises page text for the index: words hyphenated across line ends are
/// joined, and runs of whitespace fold to one space.
pub fn normalize(text: &str) -> String {
    let mut joined = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '-' && joined.chars().last().is_some_and(char::is_alphabetic) {
            // A hyphen, then a line break (and indentation), then a lowercase letter.
            let mut look = chars.clone();
            let mut saw_newline = false;
            while let Some(&n) = look.peek() {
                if n == '\n' || n == '\r' {
                    saw_newline = true;
                } else if !n.is_whitespace() {
                    break;
                }
                look.next();
            }
            if saw_newline && look.peek().is_some_and(|n| n.is_lowercase()) {
                chars = look;
                continue;
            }
        }
        joined.push(c);
    }
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Processor for IndexProcessor {
    fn run(&self, ctx: &TaskContext<'_>) -> Result<(), TaskError> {
        let store = &ctx.app.store;
        let doc = ctx.claim.document_id;
        // Every write is fenced by the claim: one that finds it gone (the
        // task was released as stale and taken over, or cancelled) stops
        // here, having written nothing.
        let lost = |held: bool| {
            if held {
                Ok(())
            } else {
                Err(TaskError::Interrupted)
            }
        };
        let state = store
            .begin_indexing(ctx.claim)
            .map_err(TaskError::database)?
            .ok_or(TaskError::Interrupted)?;
        if state.phase == IndexPhase::Stage {
            let staged = state.staged;
            let pages = store.pages(doc).map_err(TaskError::database)?;
            for batch in pages
                .chunks(self.batch_pages)
                .filter(|b| b.last().is_some_and(|p| p.number > staged))
            {
                if ctx.should_stop() {
                    return Err(TaskError::Interrupted);
                }
                let rows: Vec<(i64, String)> = batch
                    .iter()
                    .map(|p| (p.number, normalize(&p.text)))
                    .collect();
                let through = batch.last().map_or(staged, |p| p.number);
                let held = store
                    .stage_pages(ctx.claim, &rows, through, ctx.app.queue.now_ms())
                    .map_err(TaskError::database)?;
                lost(held)?;
                ctx.record_progress()?;
            }
            store
                .publish_index(ctx.claim, ctx.app.queue.now_ms())
                .map_err(TaskError::database)?
                .ok_or(TaskError::Interrupted)?;
            ctx.record_progress()?;
        }
        let held = store
            .finish_indexing(ctx.claim, ctx.app.queue.now_ms())
            .map_err(TaskError::database)?;
        lost(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_joins_hyphenation_and_folds_whitespace() {
        assert_eq!(
            normalize("infor-\nmation  and\n\n more"),
            "information and more"
        );
        assert_eq!(normalize("well-known\tfact"), "well-known fact");
        assert_eq!(normalize("Anglo-\nSaxon"), "Anglo- Saxon");
        assert_eq!(normalize("  "), "");
    }
}
