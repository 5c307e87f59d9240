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
    Ok(rows.into_iter().map(entry).collect())
}

/// Which entries to read: every filter is optional and exact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub incident_id: Option<i64>,
    /// Only entries older than this id (the next page of a newest-first listing).
    pub before: Option<i64>,
}

/// Entries matching `filter`, newest first, at most `limit`.
pub async fn query(conn: &mut Conn, filter: &Filter, limit: i64) -> Result<Vec<AuditEntry>> {
    let mut conditions = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if filter.actor.is_some() {
        conditions.push(format!("actor = {}", next()));
    }
    if filter.action.is_some() {
        conditions.push(format!("action = {}", next()));
    }
    if filter.incident_id.is_some() {
        conditions.push(format!("incident_id = {}", next()));
    }
    if filter.before.is_some() {
        conditions.push(format!("id < {}", next()));
    }
    let limit_param = next();
    let sql = format!(
        "SELECT id, actor, action, incident_id, detail, created_at FROM audit_log {} \
         ORDER BY id DESC LIMIT {limit_param}",
        if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        }
    );
    let mut q = sqlx::query_as::<_, (i64, String, String, Option<i64>, String, i64)>(&sql);
    if let Some(a) = &filter.actor {
        q = q.bind(a);
    }
    if let Some(a) = &filter.action {
        q = q.bind(a);
    }
    if let Some(i) = filter.incident_id {
        q = q.bind(i);
    }
    if let Some(b) = filter.before {
        q = q.bind(b);
    }
    let rows = q.bind(limit).fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(entry).collect())
}

fn entry(
    (id, actor, action, incident_id, detail, at): (i64, String, String, Option<i64>, String, i64),
) -> AuditEntry {
    AuditEntry {
        id,
        actor,
        action,
        incident_id,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
        created_at: from_ms(at),
    }
}

/// The actors and actions that occur in the log (for the filters' choices), at most `limit`
/// of each, sorted.
pub async fn choices(conn: &mut Conn, limit: i64) -> Result<(Vec<String>, Vec<String>)> {
    let actors: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT actor FROM audit_log ORDER BY actor LIMIT $1")
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
    let actions: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT action FROM audit_log ORDER BY action LIMIT $1")
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
    Ok((
        actors.into_iter().map(|(a,)| a).collect(),
        actions.into_iter().map(|(a,)| a).collect(),
    ))
}
