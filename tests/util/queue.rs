//! Filling a queue's database for queue tests and the queue benchmark
//! (which includes this file with `#[path]`).

use quire::queue::Queue;

/// Inserts `n` bare documents (ids 1..=n) in one transaction, for tasks to
/// be enqueued against.
pub fn insert_documents(queue: &Queue, n: usize) {
    let mut conn = queue.db().conn().unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..n {
        tx.execute(
            "INSERT INTO documents (original_name, stored_path, size, sha256, kind, created_at, updated_at) \
             VALUES (?1, ?1, 1, ?1, 'png', 0, 0)",
            [format!("d{i}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}
