//! Bookkeeping over many tasks that is not SQL: retrying every failed task
//! (both engines) and completing a batch of claims (see
//! [`crate::queue::Queue::complete_batch`]; SQLite's, since PostgreSQL
//! completes a batch in one call of `quire_complete_each`). The statements
//! are each engine's.

use std::collections::{BTreeMap, HashSet};

use super::{Claim, QueueError, TaskType};

/// Retries each of `failed` (newest first) through `retry`, skipping the
/// tasks whose document has a live task of the type already
/// ([`QueueError::AlreadyLive`]): so the newest failed task of each document
/// and type comes back. Returns the ids retried, oldest first.
pub(crate) fn retry_each(
    failed: Vec<i64>,
    mut retry: impl FnMut(i64) -> Result<(), QueueError>,
) -> Result<Vec<i64>, QueueError> {
    let mut retried = vec![];
    for id in failed {
        match retry(id) {
            Ok(()) => retried.push(id),
            Err(QueueError::AlreadyLive { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    retried.reverse();
    Ok(retried)
}

/// Completes `claims` on `tx`: indexing claims, the many small ones, one
/// call of `indexing` per worker (with that worker's claims; it returns the
/// task ids it completed, the others' claims were lost), every other claim
/// through `one`. The results are in input order: `Ok`, or
/// [`QueueError::LostClaim`] for a claim no longer held, which changed
/// nothing. Any other error fails the whole batch.
pub(crate) fn complete_by<T: ?Sized>(
    tx: &mut T,
    claims: &[Claim],
    one: impl Fn(&mut T, &Claim) -> Result<(), QueueError>,
    indexing: impl Fn(&mut T, &str, &[&Claim]) -> Result<HashSet<i64>, QueueError>,
) -> Result<Vec<Result<(), QueueError>>, QueueError> {
    let mut results: Vec<Option<Result<(), QueueError>>> =
        std::iter::repeat_with(|| None).take(claims.len()).collect();
    let mut by_worker: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in claims.iter().enumerate() {
        if c.task_type == TaskType::Indexing {
            by_worker.entry(&c.worker).or_default().push(i);
        } else {
            results[i] = Some(match one(tx, c) {
                Err(e @ QueueError::LostClaim { .. }) => Err(e),
                other => Ok(other?),
            });
        }
    }
    for (worker, indices) in by_worker {
        let mine: Vec<&Claim> = indices.iter().map(|&i| &claims[i]).collect();
        let done = indexing(tx, worker, &mine)?;
        for i in indices {
            let c = &claims[i];
            results[i] = Some(if done.contains(&c.task_id) {
                Ok(())
            } else {
                Err(QueueError::LostClaim {
                    task_id: c.task_id,
                    worker: c.worker.clone(),
                })
            });
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every claim has its result"))
        .collect())
}
