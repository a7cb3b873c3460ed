//! Rebuilding views from the whole feed, into shadow tables beside the live ones.
//!
//! Projections name their tables unqualified, so pointing `search_path` at a fresh schema
//! makes the same code write shadow copies. The live tables keep serving meanwhile.

use super::Projection;
use crate::feed::{Position, read_after};
use anyhow::{Context, bail};
use serde_json::Value;
use sqlx::PgPool;
use std::sync::Arc;

/// Rows present on one side only, per table.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Difference {
    pub table: String,
    pub only_live: Vec<Value>,
    pub only_rebuilt: Vec<Value>,
}

fn check_identifier(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63;
    if !ok {
        bail!("`{name}` is not a plain lower-case SQL identifier");
    }
    Ok(())
}

fn tables_of(projections: &[Arc<dyn Projection>]) -> Vec<&'static str> {
    projections.iter().flat_map(|p| p.tables().iter().copied()).collect()
}

/// Replays every event up to `until` into fresh copies of the projections' tables in
/// `schema` (dropped first if it exists). Returns the position of the last event applied.
pub async fn rebuild_into(
    pool: &PgPool,
    schema: &str,
    projections: &[Arc<dyn Projection>],
    until: Position,
) -> anyhow::Result<Position> {
    check_identifier(schema)?;
    let tables = tables_of(projections);
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut *tx).await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut *tx).await?;
    for table in &tables {
        check_identifier(table)?;
        sqlx::query(&format!("CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;

    let mut at = Position::START;
    loop {
        let batch: Vec<_> = read_after(pool, at, 1000).await?.into_iter().take_while(|e| e.position <= until).collect();
        let Some(last) = batch.last().map(|e| e.position) else { return Ok(at) };
        let mut tx = pool.begin().await?;
        sqlx::query(&format!("SET LOCAL search_path TO {schema}, public")).execute(&mut *tx).await?;
        for projection in projections {
            projection
                .apply_batch(&mut tx, &batch)
                .await
                .with_context(|| format!("rebuilding {}", projection.name()))?;
        }
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
    check_identifier(schema)?;
    let mut differences = Vec::new();
    for table in tables_of(projections) {
        check_identifier(table)?;
        let side = |a: &str, b: &str| {
            format!(
                "SELECT to_jsonb(d) FROM (SELECT * FROM {a}.{table} EXCEPT ALL SELECT * FROM {b}.{table}) d LIMIT 50"
            )
        };
        let only_live: Vec<Value> = sqlx::query_scalar(&side("public", schema)).fetch_all(pool).await?;
        let only_rebuilt: Vec<Value> = sqlx::query_scalar(&side(schema, "public")).fetch_all(pool).await?;
        if !only_live.is_empty() || !only_rebuilt.is_empty() {
            differences.push(Difference { table: table.to_owned(), only_live, only_rebuilt });
        }
    }
    Ok(differences)
}
