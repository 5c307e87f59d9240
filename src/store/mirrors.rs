//! The mirrors' state: which change each mirror is current to, who is publishing to it, and
//! what it holds (the manifest). See `src/mirror`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{ms, opt_from_ms, Conn, Result};
use crate::domain::Audience;

/// One mirror's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetState {
    /// The public change counter its copy is current to; `None`: never published whole.
    pub version: Option<i64>,
    pub generation: i64,
    pub published_at: Option<DateTime<Utc>>,
}

/// Makes sure every configured mirror has its row (at start).
pub async fn register(conn: &mut Conn, names: &[&str]) -> Result<()> {
    for name in names {
        sqlx::query(
            "INSERT INTO mirror_targets (name, generation) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
        )
        .bind(*name)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn state(conn: &mut Conn, name: &str) -> Result<Option<TargetState>> {
    let row: Option<(Option<i64>, i64, Option<i64>)> = sqlx::query_as(
        "SELECT version, generation, published_at FROM mirror_targets WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(version, generation, published_at)| TargetState {
        version,
        generation,
        published_at: opt_from_ms(published_at),
    }))
}

/// Takes (or renews) the right to publish to `name` until `until`; false when another worker
/// holds it.
pub async fn take_lease(
    conn: &mut Conn,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE mirror_targets SET lease_owner = $1, lease_expires_at = $2 WHERE name = $3 \
         AND (lease_owner IS NULL OR lease_owner = $1 OR lease_expires_at <= $4)",
    )
    .bind(owner)
    .bind(ms(until))
    .bind(name)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn release_lease(conn: &mut Conn, name: &str, owner: &str) -> Result<()> {
    sqlx::query(
        "UPDATE mirror_targets SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE name = $1 AND lease_owner = $2",
    )
    .bind(name)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a finished publish: current to `version` as of `now`. Returns the new generation,
/// or `None` when `owner` no longer holds the lease.
pub async fn finish(
    conn: &mut Conn,
    name: &str,
    owner: &str,
    version: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE mirror_targets SET version = $1, published_at = $2, generation = generation + 1 \
         WHERE name = $3 AND lease_owner = $4 RETURNING generation",
    )
    .bind(version)
    .bind(ms(now))
    .bind(name)
    .bind(owner)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(g,)| g))
}

/// Moves the generation without a finished publish (objects were written): other instances'
/// copies of the manifest are no longer good.
pub async fn touch(conn: &mut Conn, name: &str) -> Result<()> {
    sqlx::query("UPDATE mirror_targets SET generation = generation + 1 WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What the mirror holds: key → SHA-256 (hex) of the bytes written.
pub async fn manifest(conn: &mut Conn, name: &str) -> Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, hash FROM mirror_objects WHERE mirror = $1")
            .bind(name)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Notes objects written (inside a transaction: one per batch).
pub async fn wrote(conn: &mut Conn, name: &str, objects: &[(String, String)]) -> Result<()> {
    for (key, hash) in objects {
        sqlx::query(
            "INSERT INTO mirror_objects (mirror, key, hash) VALUES ($1, $2, $3) \
             ON CONFLICT (mirror, key) DO UPDATE SET hash = excluded.hash",
        )
        .bind(name)
        .bind(key)
        .bind(hash)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Notes objects deleted.
pub async fn deleted(conn: &mut Conn, name: &str, keys: &[String]) -> Result<()> {
    for key in keys {
        sqlx::query("DELETE FROM mirror_objects WHERE mirror = $1 AND key = $2")
            .bind(name)
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The payload of a publish delivery.
pub fn payload(full: bool) -> &'static str {
    if full {
        r#"{"full":true}"#
    } else {
        r#"{"full":false}"#
    }
}

/// Queues a publish for the mirror whose delivery channel is `channel`, unless one of the same
/// kind is already waiting (a waiting publish carries every change made before it runs).
/// Returns whether it queued one.
pub async fn request_publish(
    conn: &mut Conn,
    channel: &str,
    full: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let payload = payload(full);
    let done = sqlx::query(
        "INSERT INTO deliveries (incident_id, update_id, channel, audience, payload, state, attempts, \
         next_attempt_at, created_at) SELECT NULL, NULL, $1, $2, $3, 'pending', 0, $4, $4 \
         WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE channel = $1 AND state = 'pending' \
         AND payload = $3)",
    )
    .bind(channel)
    .bind(Audience::Mirror.as_str())
    .bind(payload)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Mirrors that are behind the public change counter `version` (or were never published) and
/// have no publish waiting: (name, never published whole).
pub async fn behind(conn: &mut Conn, version: i64) -> Result<Vec<(String, bool)>> {
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT m.name, m.version FROM mirror_targets m WHERE (m.version IS NULL OR m.version < $1) \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.channel = 'mirror:' || m.name \
         AND d.state = 'pending')",
    )
    .bind(version)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(n, v)| (n, v.is_none())).collect())
}
