//! Reading a SQLite installation for `quire copy-db` (see [`crate::store::copy`]).

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::db::DbError;
use crate::store::copy::{BATCH, Table, Value};

/// Calls `take` with the rows of `table` in batches of [`BATCH`], in key
/// order; returns how many rows there were. Run it inside one read
/// transaction, so that every table is read as of one moment.
fn read_table<E: From<DbError>>(
    c: &Connection,
    table: &Table,
    mut take: impl FnMut(Vec<Vec<Value>>) -> Result<(), E>,
) -> Result<usize, E> {
    let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        columns.join(", "),
        table.name,
        table.key
    );
    let mut st = c.prepare(&sql).map_err(DbError::from)?;
    let mut rows = st.query([]).map_err(DbError::from)?;
    let (mut batch, mut total) = (Vec::with_capacity(BATCH), 0);
    while let Some(row) = rows.next().map_err(DbError::from)? {
        let values = (0..columns.len())
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Real(x) => Value::Real(x),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                })
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()
            .map_err(DbError::from)?;
        batch.push(values);
        total += 1;
        if batch.len() == BATCH {
            take(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))?;
        }
    }
    if !batch.is_empty() {
        take(batch)?;
    }
    Ok(total)
}

/// Reads every table of [`crate::store::copy::TABLES`] in one read
/// transaction, handing `take` each batch; returns the rows read per table.
pub(crate) fn read_tables(
    db: &crate::db::sqlite::SqliteDb,
    mut take: impl FnMut(&Table, Vec<Vec<Value>>) -> Result<(), crate::store::CopyError>,
) -> Result<Vec<usize>, crate::store::CopyError> {
    let c = db.conn()?;
    c.execute_batch("BEGIN DEFERRED").map_err(DbError::from)?;
    let read = crate::store::copy::TABLES
        .iter()
        .map(|table| read_table(&c, table, |batch| take(table, batch)))
        .collect::<Result<Vec<_>, _>>();
    let _ = c.execute_batch("COMMIT");
    read
}
