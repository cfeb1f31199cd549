//! Writing a copied installation into PostgreSQL for `quire copy-db` (see
//! [`crate::store::copy`]): each batch in one statement, a typed array per
//! column through `unnest`.

use postgres::GenericClient;
use postgres::types::{ToSql, Type};

use crate::db::DbError;
use crate::db::postgres::PgError;
use crate::store::copy::{Kind, Table, Value};

fn statement(e: postgres::Error) -> DbError {
    DbError::Postgres(PgError::Statement(e))
}

/// Rows of documents and tasks already there: copy-db copies into an empty database only.
pub fn rows_present(c: &mut impl GenericClient) -> Result<i64, DbError> {
    Ok(c.query_typed_one(
        "SELECT (SELECT count(*) FROM documents) + (SELECT count(*) FROM task_queue)",
        &[],
    )
    .map_err(statement)?
    .get(0))
}

/// Makes the index's vectors in `config` (the SQLite index's stemming).
pub fn set_search_config(c: &mut impl GenericClient, config: &str) -> Result<(), DbError> {
    c.execute_typed(
        "UPDATE quire_settings SET value = $1 WHERE key = 'search_config'",
        &[(&config, Type::TEXT)],
    )
    .map_err(statement)?;
    Ok(())
}

/// Inserts one batch of `table`'s rows.
pub fn insert(
    c: &mut impl GenericClient,
    table: &Table,
    rows: &[Vec<Value>],
) -> Result<(), DbError> {
    let mut arrays: Vec<(Box<dyn ToSql + Sync>, Type)> = vec![];
    for (i, (_, kind)) in table.columns.iter().enumerate() {
        let column = rows.iter().map(|r| &r[i]);
        arrays.push(match kind {
            Kind::Int => (
                Box::new(column.map(as_int).collect::<Vec<Option<i64>>>()),
                Type::INT8_ARRAY,
            ),
            Kind::Real => (
                Box::new(column.map(as_real).collect::<Vec<Option<f64>>>()),
                Type::FLOAT8_ARRAY,
            ),
            Kind::Text => (
                Box::new(column.map(as_text).collect::<Vec<Option<String>>>()),
                Type::TEXT_ARRAY,
            ),
            // JSON spells a NUL \u0000, which jsonb refuses too.
            Kind::Json => (
                Box::new(
                    column
                        .map(|v| as_text(v).map(|s| s.replace("\\u0000", "")))
                        .collect::<Vec<Option<String>>>(),
                ),
                Type::TEXT_ARRAY,
            ),
        });
    }
    let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
    let mut select: Vec<String> = table
        .columns
        .iter()
        .map(|(name, kind)| match kind {
            Kind::Json => format!("{name}::jsonb"),
            _ => name.to_string(),
        })
        .collect();
    let mut into = names.clone();
    if table.name == "page_index" {
        into.push("tsv");
        select.push(
            "to_tsvector((SELECT value FROM quire_settings WHERE key = 'search_config')::regconfig, text)"
                .into(),
        );
    }
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({into}) SELECT {select} FROM unnest({placeholders}) AS r ({names})",
        table = table.name,
        into = into.join(", "),
        select = select.join(", "),
        placeholders = placeholders.join(", "),
        names = names.join(", "),
    );
    let params: Vec<(&(dyn ToSql + Sync), Type)> = arrays
        .iter()
        .map(|(value, ty)| (value.as_ref(), ty.clone()))
        .collect();
    c.execute_typed(&sql, &params).map_err(statement)?;
    Ok(())
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::Real(x) => Some(*x as i64),
        _ => None,
    }
}

fn as_real(v: &Value) -> Option<f64> {
    match v {
        Value::Real(x) => Some(*x),
        Value::Int(n) => Some(*n as f64),
        _ => None,
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(super::without_nul(s).into_owned()),
        Value::Int(n) => Some(n.to_string()),
        Value::Real(x) => Some(x.to_string()),
        Value::Null => None,
    }
}

/// The rows of `table` now.
pub fn count(c: &mut impl GenericClient, table: &Table) -> Result<i64, DbError> {
    Ok(
        c.query_typed_one(&format!("SELECT count(*) FROM {}", table.name), &[])
            .map_err(statement)?
            .get(0),
    )
}

/// Moves the id sequences past the copied ids, so that new rows do not
/// collide with them.
pub fn advance_ids(c: &mut impl GenericClient) -> Result<(), DbError> {
    for table in ["documents", "duplicates", "task_queue"] {
        c.batch_execute(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                    coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
        ))
        .map_err(statement)?;
    }
    Ok(())
}
