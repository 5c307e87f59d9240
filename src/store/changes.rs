//! The public change counter and the readiness heartbeat (both one-row tables).
//!
//! Every write the public sees bumps `changes.version` in its own transaction, so the counter
//! moves in commit order: an instance that read version N has seen every change up to N, which
//! the highest update id cannot promise (a lower id may commit after a higher one).

use chrono::{DateTime, Utc};

use super::{ms, Conn, Db, Result};

/// Moves the counter and notes which incident changed; call inside the transaction that
/// changes public state. On PostgreSQL it also notifies `candor_changes` (delivered at commit),
/// so other instances refresh at once instead of at their next poll.
pub async fn bump(conn: &mut Conn, incident_id: i64) -> Result<()> {
    let (version,): (i64,) =
        sqlx::query_as("UPDATE changes SET version = version + 1 WHERE id = 1 RETURNING version")
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query("INSERT INTO public_changes (version, incident_id) VALUES ($1, $2)")
        .bind(version)
        .bind(incident_id)
        .execute(&mut *conn)
        .await?;
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_notify('candor_changes', $1)")
            .bind(version.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The incidents changed by versions `(after, upto]`, or `None` when the rows no longer cover
/// that range (pruned by retention, or written before they were kept): then everything must be
/// reloaded.
pub async fn changed_between(conn: &mut Conn, after: i64, upto: i64) -> Result<Option<Vec<i64>>> {
    if upto <= after {
        return Ok(Some(Vec::new()));
    }
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT version, incident_id FROM public_changes WHERE version > $1 AND version <= $2 \
         ORDER BY version",
    )
    .bind(after)
    .bind(upto)
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() as i64 != upto - after {
        return Ok(None);
    }
    let mut ids: Vec<i64> = rows.into_iter().map(|(_, id)| id).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(Some(ids))
}

/// The counter as committed now.
pub async fn version(conn: &mut Conn) -> Result<i64> {
    let (v,): (i64,) = sqlx::query_as("SELECT version FROM changes WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok(v)
}

/// Writes the heartbeat row (in the write turn): fails when the database takes no writes (disk
/// full, read-only).
pub async fn heartbeat(db: &Db, now: DateTime<Utc>) -> Result<()> {
    let mut conn = db.write_conn().await?;
    sqlx::query("UPDATE heartbeat SET beat_at = $1 WHERE id = 1")
        .bind(ms(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
