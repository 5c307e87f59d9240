//! Who did what, and when: every write from the API, the console and the scheduler.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{from_ms, ms, Conn, Result};

pub async fn record(
    conn: &mut Conn,
    actor: &str,
    action: &str,
    incident_id: Option<i64>,
    detail: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query("INSERT INTO audit_log (actor, action, incident_id, detail, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(actor)
        .bind(action)
        .bind(incident_id)
        .bind(detail.to_string())
        .bind(ms(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub incident_id: Option<i64>,
    pub detail: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// The newest entries first.
pub async fn recent(conn: &mut Conn, limit: i64) -> Result<Vec<AuditEntry>> {
    let rows: Vec<(i64, String, String, Option<i64>, String, i64)> = sqlx::query_as(
        "SELECT id, actor, action, incident_id, detail, created_at FROM audit_log ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, actor, action, incident_id, detail, at)| AuditEntry {
            id,
            actor,
            action,
            incident_id,
            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            created_at: from_ms(at),
        })
        .collect())
}
