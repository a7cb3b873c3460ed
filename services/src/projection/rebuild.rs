//! Rebuilding views from the whole feed, into shadow tables beside the live ones.
//!
//! Projections name their tables unqualified, so pointing `search_path` at a fresh schema
//! makes the same code write shadow copies. The live tables keep serving meanwhile. A shadow
//! table is made `LIKE` its live table (columns, defaults, constraints, indexes) and its
//! indexes take the live ones' names, so that it can later replace the live table outright
//! ([`super::replay`]) and migrations still find every index by name.

use super::Projection;
use crate::feed::{FeedEvent, Position, read_after};
use anyhow::{Context, bail};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;

/// Rows present on one side only, per table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Difference {
    pub table: String,
    pub only_live: Vec<Value>,
    pub only_rebuilt: Vec<Value>,
}

pub(super) fn check_identifier(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    if !ok {
        bail!("`{name}` is not a plain lower-case SQL identifier");
    }
    Ok(())
}

pub(super) fn tables_of(projections: &[Arc<dyn Projection>]) -> Vec<&'static str> {
    projections.iter().flat_map(|p| p.tables().iter().copied()).collect()
}

/// Creates `schema` (dropping an older one) with an empty copy of every table of
/// `projections`.
pub async fn create_shadow(pool: &PgPool, schema: &str, projections: &[Arc<dyn Projection>]) -> anyhow::Result<()> {
    check_identifier(schema)?;
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut *tx).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut *tx).await?;
    for table in tables_of(projections) {
        check_identifier(table)?;
        sqlx::query(&format!("CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"))
            .execute(&mut *tx)
            .await?;
        adopt_index_names(&mut tx, schema, table).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `LIKE ... INCLUDING ALL` names copied indexes after their columns; give each the name of
/// the live index with the same definition.
async fn adopt_index_names(conn: &mut PgConnection, schema: &str, table: &str) -> anyhow::Result<()> {
    let live = index_definitions(conn, "public", table).await?;
    for (name, definition) in index_definitions(conn, schema, table).await? {
        let Some((live_name, _)) = live.iter().find(|(_, d)| *d == definition) else {
            bail!("index {schema}.{name} has no live counterpart on {table}");
        };
        if *live_name != name {
            sqlx::query(&format!("ALTER INDEX {schema}.\"{name}\" RENAME TO \"{live_name}\""))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Every index of a table: its name, and its definition without name or schema
/// (`UNIQUE btree (server_id)`, `btree (project_id, created_at) WHERE ...`).
async fn index_definitions(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let rows: Vec<(String, bool, String)> = sqlx::query_as(
        "SELECT i.relname::text, x.indisunique, pg_get_indexdef(x.indexrelid) FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1 AND t.relname = $2",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(name, unique, definition)| {
            let (_, shape) =
                definition.split_once(" USING ").with_context(|| format!("index definition `{definition}`"))?;
            Ok((name, format!("{}{shape}", if unique { "UNIQUE " } else { "" })))
        })
        .collect()
}

/// Drops the shadow's non-unique indexes: a bulk rebuild maintains each of them row by row,
/// while [`build_missing_indexes`] later builds each in one pass. (Primary keys and unique
/// indexes stay: the projections read and upsert by them, and they check every row.)
pub async fn defer_indexes(pool: &PgPool, schema: &str, projections: &[Arc<dyn Projection>]) -> anyhow::Result<()> {
    check_identifier(schema)?;
    for table in tables_of(projections) {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT i.relname::text FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = $1 AND t.relname = $2 AND NOT x.indisunique \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        )
        .bind(schema)
        .bind(table)
        .fetch_all(pool)
        .await?;
        for name in names {
            sqlx::query(&format!("DROP INDEX {schema}.\"{name}\"")).execute(pool).await?;
        }
    }
    Ok(())
}

/// Builds every live index the shadow lacks, under the live index's name.
pub async fn build_missing_indexes(
    pool: &PgPool,
    schema: &str,
    projections: &[Arc<dyn Projection>],
) -> anyhow::Result<()> {
    check_identifier(schema)?;
    for table in tables_of(projections) {
        let missing: Vec<String> = sqlx::query_scalar(
            "SELECT indexdef FROM pg_indexes l WHERE l.schemaname = 'public' AND l.tablename = $2 \
             AND NOT EXISTS (SELECT 1 FROM pg_indexes s WHERE s.schemaname = $1 AND s.tablename = $2 \
                             AND s.indexname = l.indexname)",
        )
        .bind(schema)
        .bind(table)
        .fetch_all(pool)
        .await?;
        for definition in missing {
            let on_live = format!(" ON public.{table} ");
            anyhow::ensure!(definition.contains(&on_live), "unexpected index definition `{definition}`");
            sqlx::query(&definition.replacen(&on_live, &format!(" ON {schema}.{table} "), 1)).execute(pool).await?;
        }
    }
    Ok(())
}

/// Applies `batch` to the copies of `projections` in `schema`, inside the caller's transaction.
pub async fn apply_to_shadow(
    conn: &mut PgConnection,
    schema: &str,
    projections: &[Arc<dyn Projection>],
    batch: &[FeedEvent],
) -> anyhow::Result<()> {
    check_identifier(schema)?;
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, public")).execute(&mut *conn).await?;
    for projection in projections {
        projection.apply_batch(conn, batch).await.with_context(|| format!("rebuilding {}", projection.name()))?;
    }
    sqlx::query("SET LOCAL search_path TO public").execute(&mut *conn).await?;
    Ok(())
}

/// Applies the events in `(from, to]` on one connection (the caller's transaction) to
/// `projections`: to their copies in `schema`, or to the live tables when `schema` is `None`.
/// Every event up to `to` must be readable already, as it was for whoever reached `to`.
pub async fn apply_range(
    conn: &mut PgConnection,
    projections: &[Arc<dyn Projection>],
    schema: Option<&str>,
    mut from: Position,
    to: Position,
    batch_size: i64,
) -> anyhow::Result<()> {
    while from < to {
        let batch: Vec<_> =
            read_after(&mut *conn, from, batch_size).await?.into_iter().take_while(|e| e.position <= to).collect();
        let Some(last) = batch.last().map(|e| e.position) else { bail!("events up to {to} are not readable yet") };
        match schema {
            Some(schema) => apply_to_shadow(conn, schema, projections, &batch).await?,
            None => {
                for projection in projections {
                    projection.apply_batch(conn, &batch).await?;
                }
            }
        }
        from = last;
    }
    Ok(())
}

/// Replays every event up to `until` into fresh copies of the projections' tables in
/// `schema` (dropped first if it exists). Returns the position of the last event applied.
pub async fn rebuild_into(
    pool: &PgPool,
    schema: &str,
    projections: &[Arc<dyn Projection>],
    until: Position,
) -> anyhow::Result<Position> {
    create_shadow(pool, schema, projections).await?;
    let mut at = Position::START;
    loop {
        let batch: Vec<_> = read_after(pool, at, 1000).await?.into_iter().take_while(|e| e.position <= until).collect();
        let Some(last) = batch.last().map(|e| e.position) else { return Ok(at) };
        let mut tx = pool.begin().await?;
        apply_to_shadow(&mut tx, schema, projections, &batch).await?;
        tx.commit().await?;
        at = last;
    }
}

/// Compares the live tables with their rebuilt copies in `schema`, row for row.
pub async fn compare(
    pool: &PgPool,
    schema: &str,
    projections: &[Arc<dyn Projection>],
) -> anyhow::Result<Vec<Difference>> {
    compare_on(&mut *pool.acquire().await?, schema, projections).await
}

/// [`compare`] on one connection (inside a transaction, a consistent snapshot of both sides).
pub async fn compare_on(
    conn: &mut PgConnection,
    schema: &str,
    projections: &[Arc<dyn Projection>],
) -> anyhow::Result<Vec<Difference>> {
    check_identifier(schema)?;
    let mut differences = Vec::new();
    for table in tables_of(projections) {
        check_identifier(table)?;
        let side = |a: &str, b: &str| {
            format!(
                "SELECT to_jsonb(d) FROM (SELECT * FROM {a}.{table} EXCEPT ALL SELECT * FROM {b}.{table}) d LIMIT 50"
            )
        };
        let only_live: Vec<Value> = sqlx::query_scalar(&side("public", schema)).fetch_all(&mut *conn).await?;
        let only_rebuilt: Vec<Value> = sqlx::query_scalar(&side(schema, "public")).fetch_all(&mut *conn).await?;
        if !only_live.is_empty() || !only_rebuilt.is_empty() {
            differences.push(Difference { table: table.to_owned(), only_live, only_rebuilt });
        }
    }
    Ok(differences)
}
