//! Alertmanager's alert groups: which incident each group opened or joined. One active row per
//! group key (a partial unique index) is what keeps repeats and replicas from opening two.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{from_ms, ms, Conn, Result};

/// A group as the API shows it on its incident.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlertGroup {
    #[serde(skip)]
    pub id: i64,
    /// Alertmanager's `groupKey`.
    pub group_key: String,
    #[serde(skip)]
    pub incident_id: Option<i64>,
    /// True when this group opened the incident (false: it joined one already open).
    pub opened: bool,
    /// `firing` or `resolved`, as Alertmanager last said.
    pub status: String,
    /// How many alerts the last notification carried.
    pub alerts: i64,
    pub receiver: String,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// When Alertmanager said it resolved. The incident is quiet once every group of it has
    /// one; while it stays open after that, it awaits a person's confirmation.
    pub resolved_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    group_key: String,
    incident_id: Option<i64>,
    opened: i64,
    status: String,
    alerts: i64,
    receiver: String,
    first_seen_at: i64,
    last_seen_at: i64,
    resolved_at: Option<i64>,
}

impl From<Row> for AlertGroup {
    fn from(r: Row) -> Self {
        AlertGroup {
            id: r.id,
            group_key: r.group_key,
            incident_id: r.incident_id,
            opened: r.opened == 1,
            status: r.status,
            alerts: r.alerts,
            receiver: r.receiver,
            first_seen_at: from_ms(r.first_seen_at),
            last_seen_at: from_ms(r.last_seen_at),
            resolved_at: r.resolved_at.map(from_ms),
        }
    }
}

const COLUMNS: &str = "id, group_key, incident_id, opened, status, alerts, receiver, \
                       first_seen_at, last_seen_at, resolved_at";

/// The active row of a group key, if any.
pub async fn active(conn: &mut Conn, group_key: &str) -> Result<Option<AlertGroup>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alert_groups WHERE group_key = $1 AND active = 1"
    ))
    .bind(group_key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(AlertGroup::from))
}

/// Claims the group key for this transaction: inserts its active row (without an incident yet)
/// unless one exists. Returns the new row's id, or `None` when another request has it (on
/// PostgreSQL a racing transaction waits for the first to commit, then sees the conflict).
pub async fn claim(
    conn: &mut Conn,
    group_key: &str,
    receiver: &str,
    alerts: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO alert_groups (group_key, active, opened, status, alerts, receiver, \
         first_seen_at, last_seen_at) VALUES ($1, 1, 0, 'firing', $2, $3, $4, $4) \
         ON CONFLICT (group_key) WHERE active = 1 DO NOTHING RETURNING id",
    )
    .bind(group_key)
    .bind(alerts)
    .bind(receiver)
    .bind(ms(now))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// Links a claimed row to the incident it opened or joined.
pub async fn link(conn: &mut Conn, id: i64, incident_id: i64, opened: bool) -> Result<()> {
    sqlx::query("UPDATE alert_groups SET incident_id = $2, opened = $3 WHERE id = $1")
        .bind(id)
        .bind(incident_id)
        .bind(i64::from(opened))
        .execute(&mut *conn)
        .await?;
    // The incident's first alert (its public promise record) may have moved.
    super::changes::bump(conn, incident_id).await?;
    Ok(())
}

/// Records a notification about the group: its status, alert count and when it resolved.
pub async fn seen(
    conn: &mut Conn,
    id: i64,
    status: &str,
    alerts: i64,
    resolved_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE alert_groups SET status = $2, alerts = $3, resolved_at = $4, last_seen_at = $5 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(alerts)
    .bind(resolved_at.map(ms))
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Notes when the group's alerts started (Alertmanager's `startsAt`): keeps the earliest seen.
pub async fn note_start(conn: &mut Conn, id: i64, started_at: Option<DateTime<Utc>>) -> Result<()> {
    let Some(at) = started_at else {
        return Ok(());
    };
    let moved: Option<(Option<i64>,)> = sqlx::query_as(
        "UPDATE alert_groups SET alert_started_at = $2 WHERE id = $1 \
         AND (alert_started_at IS NULL OR alert_started_at > $2) RETURNING incident_id",
    )
    .bind(id)
    .bind(ms(at))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((Some(incident_id),)) = moved {
        // The incident's first alert (its public promise record) moved.
        super::changes::bump(conn, incident_id).await?;
    }
    Ok(())
}

/// When an incident's first alert started: the earliest start of its groups (Alertmanager's
/// `startsAt`, or when Candor first heard of the group where that is unknown).
pub async fn first_alert_at(conn: &mut Conn, incident_id: i64) -> Result<Option<DateTime<Utc>>> {
    let (at,): (Option<i64>,) = sqlx::query_as(
        "SELECT MIN(COALESCE(alert_started_at, first_seen_at)) FROM alert_groups \
         WHERE incident_id = $1",
    )
    .bind(incident_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(at.map(from_ms))
}

/// Retires a group's row: the next firing of its key starts afresh.
pub async fn deactivate(conn: &mut Conn, id: i64) -> Result<()> {
    sqlx::query("UPDATE alert_groups SET active = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Retires every group of an incident.
pub async fn deactivate_incident(conn: &mut Conn, incident_id: i64) -> Result<()> {
    sqlx::query("UPDATE alert_groups SET active = NULL WHERE incident_id = $1")
        .bind(incident_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The groups of an incident, oldest first.
pub async fn for_incident(conn: &mut Conn, incident_id: i64) -> Result<Vec<AlertGroup>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alert_groups WHERE incident_id = $1 ORDER BY id"
    ))
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(AlertGroup::from).collect())
}

/// The active groups of an incident (those whose word still counts), oldest first.
pub async fn active_for_incident(conn: &mut Conn, incident_id: i64) -> Result<Vec<AlertGroup>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM alert_groups WHERE incident_id = $1 AND active = 1 ORDER BY id"
    ))
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(AlertGroup::from).collect())
}
