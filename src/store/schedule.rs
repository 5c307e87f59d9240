//! The record of scheduled actions taken: its primary key (incident, action, due time) is what
//! makes each one happen exactly once, however many schedulers race for it.

use chrono::{DateTime, Utc};

use super::{ms, Conn, Result};

/// Claims the action for this transaction. Returns false if another scheduler already took it
/// (on PostgreSQL a racing transaction waits for the first to commit, then sees the conflict).
pub async fn claim(
    conn: &mut Conn,
    incident_id: i64,
    action: &str,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO scheduled_actions (incident_id, action, due_at, done_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (incident_id, action, due_at) DO NOTHING RETURNING incident_id",
    )
    .bind(incident_id)
    .bind(action)
    .bind(ms(due_at))
    .bind(ms(now))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

pub async fn set_update(
    conn: &mut Conn,
    incident_id: i64,
    action: &str,
    due_at: DateTime<Utc>,
    update_id: i64,
) -> Result<()> {
    sqlx::query("UPDATE scheduled_actions SET update_id = $4 WHERE incident_id = $1 AND action = $2 AND due_at = $3")
        .bind(incident_id)
        .bind(action)
        .bind(ms(due_at))
        .bind(update_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How many times `action` was taken for an incident.
pub async fn count(conn: &mut Conn, incident_id: i64, action: &str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM scheduled_actions WHERE incident_id = $1 AND action = $2",
    )
    .bind(incident_id)
    .bind(action)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}
