//! The public change counter and the readiness heartbeat (both one-row tables).
//!
//! Every write the public sees bumps `changes.version` in its own transaction, so the counter
//! moves in commit order: an instance that read version N has seen every change up to N, which
//! the highest update id cannot promise (a lower id may commit after a higher one).

use chrono::{DateTime, Utc};

use super::{ms, Conn, Db, Result};

/// Moves the counter; call inside the transaction that changes public state.
pub async fn bump(conn: &mut Conn) -> Result<()> {
    sqlx::query("UPDATE changes SET version = version + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
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
