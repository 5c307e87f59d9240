//! Incidents, their affected components and their ETA revisions.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{from_ms, ms, opt_from_ms, opt_ms, parse_enum, Backend, Conn, Result};
use crate::domain::{ComponentStatus, Impact, IncidentKind, IncidentStatus};

pub use crate::domain::incident::Incident;

#[derive(sqlx::FromRow)]
pub(super) struct IncidentRow {
    id: i64,
    title: String,
    impact: String,
    status: String,
    eta_at: Option<i64>,
    next_update_at: Option<i64>,
    owner: Option<String>,
    started_at: i64,
    resolved_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    version: i64,
    apologised_eta_at: Option<i64>,
    reminded_for_at: Option<i64>,
    kind: String,
    description: Option<String>,
    scheduled_for: Option<i64>,
    scheduled_until: Option<i64>,
    last_notice_at: Option<i64>,
    sequence: i64,
    recurrence_key: Option<String>,
}

impl TryFrom<IncidentRow> for Incident {
    type Error = super::StoreError;
    fn try_from(r: IncidentRow) -> Result<Self> {
        Ok(Incident {
            id: r.id,
            title: r.title,
            impact: parse_enum(&r.impact)?,
            status: parse_enum(&r.status)?,
            eta_at: opt_from_ms(r.eta_at),
            next_update_at: opt_from_ms(r.next_update_at),
            owner: r.owner,
            started_at: from_ms(r.started_at),
            resolved_at: opt_from_ms(r.resolved_at),
            created_at: from_ms(r.created_at),
            updated_at: from_ms(r.updated_at),
            version: r.version,
            apologised_eta_at: opt_from_ms(r.apologised_eta_at),
            reminded_for_at: opt_from_ms(r.reminded_for_at),
            kind: parse_enum(&r.kind)?,
            description: r.description,
            scheduled_for: opt_from_ms(r.scheduled_for),
            scheduled_until: opt_from_ms(r.scheduled_until),
            last_notice_at: opt_from_ms(r.last_notice_at),
            sequence: r.sequence,
            recurrence_key: r.recurrence_key,
        })
    }
}

/// `SELECT <every incident column> FROM incidents <tail>`, as one static SQL text.
macro_rules! select_incidents {
    ($tail:literal) => {
        concat!(
            "SELECT id, title, impact, status, eta_at, next_update_at, owner, started_at, resolved_at, \
             created_at, updated_at, version, apologised_eta_at, reminded_for_at, kind, description, \
             scheduled_for, scheduled_until, last_notice_at, sequence, recurrence_key FROM incidents ",
            $tail
        )
    };
}
pub(super) use select_incidents;

/// What a new incident is created with.
pub struct NewIncident<'a> {
    pub title: &'a str,
    pub impact: Impact,
    pub status: IncidentStatus,
    pub eta_at: Option<DateTime<Utc>>,
    pub next_update_at: DateTime<Utc>,
    pub owner: Option<&'a str>,
    pub now: DateTime<Utc>,
}

pub async fn insert(conn: &mut Conn, n: &NewIncident<'_>) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO incidents (title, impact, status, eta_at, next_update_at, owner, started_at, \
         created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7, 1) RETURNING id",
    )
    .bind(n.title)
    .bind(n.impact.as_str())
    .bind(n.status.as_str())
    .bind(opt_ms(n.eta_at))
    .bind(ms(n.next_update_at))
    .bind(n.owner)
    .bind(ms(n.now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// The id the next incident will likely get (the console's preview links to it; a concurrent
/// declare may take it first).
pub async fn next_id(conn: &mut Conn) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM incidents")
        .fetch_one(&mut *conn)
        .await?;
    Ok(id)
}

pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Incident>> {
    let row: Option<IncidentRow> = sqlx::query_as(select_incidents!("WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Incident::try_from).transpose()
}

/// Reads an incident inside a write transaction, locking its row on PostgreSQL (SQLite's
/// `BEGIN IMMEDIATE` already holds the database's write lock).
pub async fn get_for_update(
    conn: &mut Conn,
    backend: Backend,
    id: i64,
) -> Result<Option<Incident>> {
    let sql = match backend {
        Backend::Postgres => select_incidents!("WHERE id = $1 FOR UPDATE"),
        Backend::Sqlite => select_incidents!("WHERE id = $1"),
    };
    let row: Option<IncidentRow> = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(Incident::try_from).transpose()
}

/// The new state after a public update. Returns false when `expected_version` is stale.
pub struct Revision<'a> {
    pub id: i64,
    pub expected_version: i64,
    pub title: &'a str,
    pub impact: Impact,
    pub status: IncidentStatus,
    pub eta_at: Option<DateTime<Utc>>,
    pub next_update_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub apologised_eta_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

impl<'a> Revision<'a> {
    /// The incident exactly as it stands at `now`: a starting point that a change overrides
    /// field by field (`Revision { status, ..Revision::of(&before, now) }`).
    pub fn of(incident: &'a Incident, now: DateTime<Utc>) -> Self {
        Revision {
            id: incident.id,
            expected_version: incident.version,
            title: &incident.title,
            impact: incident.impact,
            status: incident.status,
            eta_at: incident.eta_at,
            next_update_at: incident.next_update_at,
            resolved_at: incident.resolved_at,
            apologised_eta_at: incident.apologised_eta_at,
            now,
        }
    }
}

pub async fn revise(conn: &mut Conn, r: &Revision<'_>) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE incidents SET title = $3, status = $4, eta_at = $5, next_update_at = $6, \
         resolved_at = $7, apologised_eta_at = $8, updated_at = $9, impact = $10, version = version + 1 \
         WHERE id = $1 AND version = $2",
    )
    .bind(r.id)
    .bind(r.expected_version)
    .bind(r.title)
    .bind(r.status.as_str())
    .bind(opt_ms(r.eta_at))
    .bind(opt_ms(r.next_update_at))
    .bind(opt_ms(r.resolved_at))
    .bind(opt_ms(r.apologised_eta_at))
    .bind(ms(r.now))
    .bind(r.impact.as_str())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 1 {
        super::changes::bump(conn, r.id).await?;
    }
    Ok(done.rows_affected() == 1)
}

/// Notes that the team was reminded of the promise due at `promised` (not a public change, so
/// the version stays).
pub async fn mark_reminded(conn: &mut Conn, id: i64, promised: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE incidents SET reminded_for_at = $2 WHERE id = $1")
        .bind(id)
        .bind(ms(promised))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Which incidents a listing asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    Open,
    Resolved,
    All,
}

pub async fn list(
    conn: &mut Conn,
    filter: StateFilter,
    limit: i64,
    before_id: Option<i64>,
) -> Result<Vec<Incident>> {
    let sql = match filter {
        StateFilter::Open => {
            select_incidents!(
                "WHERE resolved_at IS NULL AND status NOT IN ('scheduled', 'cancelled') AND id < $1 \
                 ORDER BY id DESC LIMIT $2"
            )
        }
        StateFilter::Resolved => {
            select_incidents!(
                "WHERE resolved_at IS NOT NULL AND status NOT IN ('scheduled', 'cancelled') \
                 AND id < $1 ORDER BY id DESC LIMIT $2"
            )
        }
        StateFilter::All => select_incidents!(
            "WHERE status NOT IN ('scheduled', 'cancelled') AND id < $1 ORDER BY id DESC LIMIT $2"
        ),
    };
    let rows: Vec<IncidentRow> = sqlx::query_as(sql)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(Incident::try_from).collect()
}

/// Every open incident, oldest first (the scheduler's worklist).
pub async fn open(conn: &mut Conn) -> Result<Vec<Incident>> {
    let rows: Vec<IncidentRow> = sqlx::query_as(select_incidents!(
        "WHERE resolved_at IS NULL AND status <> 'scheduled' ORDER BY id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(Incident::try_from).collect()
}

/// Sets the status of each named component for this incident (others are left as they are).
pub async fn set_components(
    conn: &mut Conn,
    id: i64,
    components: &BTreeMap<String, ComponentStatus>,
) -> Result<()> {
    for (component, status) in components {
        sqlx::query(
            "INSERT INTO incident_components (incident_id, component_id, status) VALUES ($1, $2, $3) \
             ON CONFLICT (incident_id, component_id) DO UPDATE SET status = excluded.status",
        )
        .bind(id)
        .bind(component.as_str())
        .bind(status.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Replaces the set of components named by an incident.
pub async fn replace_components(
    conn: &mut Conn,
    id: i64,
    components: &BTreeMap<String, ComponentStatus>,
) -> Result<()> {
    sqlx::query("DELETE FROM incident_components WHERE incident_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    set_components(conn, id, components).await
}

/// Marks every component of a resolved incident operational.
pub async fn clear_components(conn: &mut Conn, id: i64) -> Result<()> {
    sqlx::query("UPDATE incident_components SET status = $2 WHERE incident_id = $1")
        .bind(id)
        .bind(ComponentStatus::Operational.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn components(conn: &mut Conn, id: i64) -> Result<BTreeMap<String, ComponentStatus>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT component_id, status FROM incident_components WHERE incident_id = $1 ORDER BY component_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(c, s)| Ok((c, parse_enum(&s)?)))
        .collect()
}

/// One change of estimate: who moved it, from what, to what, and why.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EtaRevision {
    pub id: i64,
    pub update_id: Option<i64>,
    pub old_eta: Option<DateTime<Utc>>,
    pub new_eta: Option<DateTime<Utc>>,
    pub actor: String,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_eta_revision(
    conn: &mut Conn,
    incident_id: i64,
    update_id: i64,
    old: Option<DateTime<Utc>>,
    new: Option<DateTime<Utc>>,
    actor: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO eta_revisions (incident_id, update_id, old_eta_at, new_eta_at, actor, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(incident_id)
    .bind(update_id)
    .bind(opt_ms(old))
    .bind(opt_ms(new))
    .bind(actor)
    .bind(reason)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn eta_revisions(conn: &mut Conn, incident_id: i64) -> Result<Vec<EtaRevision>> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(i64, Option<i64>, Option<i64>, Option<i64>, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT id, update_id, old_eta_at, new_eta_at, actor, reason, created_at FROM eta_revisions \
         WHERE incident_id = $1 ORDER BY id",
    )
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, update_id, old, new, actor, reason, at)| EtaRevision {
            id,
            update_id,
            old_eta: opt_from_ms(old),
            new_eta: opt_from_ms(new),
            actor,
            reason,
            created_at: from_ms(at),
        })
        .collect())
}

/// Incidents open now or resolved since `since`, newest first (the status page's window).
pub async fn in_window(conn: &mut Conn, since: DateTime<Utc>) -> Result<Vec<Incident>> {
    let rows: Vec<IncidentRow> = sqlx::query_as(select_incidents!(
        "WHERE (resolved_at IS NULL OR resolved_at >= $1) AND status NOT IN ('scheduled', 'cancelled') \
         ORDER BY id DESC"
    ))
    .bind(ms(since))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(Incident::try_from).collect()
}

/// Incidents that started in `[from, to)`, newest first (history by month).
pub async fn started_between(
    conn: &mut Conn,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Incident>> {
    let rows: Vec<IncidentRow> = sqlx::query_as(select_incidents!(
        "WHERE started_at >= $1 AND started_at < $2 AND status NOT IN ('scheduled', 'cancelled') \
         ORDER BY started_at DESC, id DESC"
    ))
    .bind(ms(from))
    .bind(ms(to))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(Incident::try_from).collect()
}

/// The start of the earliest incident, if any (how far back history goes).
pub async fn first_started(conn: &mut Conn) -> Result<Option<DateTime<Utc>>> {
    let (v,): (Option<i64>,) = sqlx::query_as(
        "SELECT MIN(started_at) FROM incidents WHERE status NOT IN ('scheduled', 'cancelled')",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(opt_from_ms(v))
}

/// Every incident's id, oldest first (a mirror's full publish renders each one's page).
pub async fn all_ids(conn: &mut Conn) -> Result<Vec<i64>> {
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM incidents ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// What a new maintenance window is created with.
pub struct NewWindow<'a> {
    pub title: &'a str,
    pub description: Option<&'a str>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub owner: Option<&'a str>,
    pub recurrence_key: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// Inserts a scheduled window. Returns None when a window from the same recurring config entry
/// already starts at the same time (another scheduler materialised it first).
pub async fn insert_window(conn: &mut Conn, n: &NewWindow<'_>) -> Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO incidents (title, impact, status, next_update_at, owner, started_at, created_at, \
         updated_at, version, kind, description, scheduled_for, scheduled_until, last_notice_at, \
         sequence, recurrence_key) \
         VALUES ($1, $2, $3, $4, $5, $4, $6, $6, 1, $7, $8, $4, $9, $6, 0, $10) \
         ON CONFLICT (recurrence_key, scheduled_for) DO NOTHING RETURNING id",
    )
    .bind(n.title)
    .bind(Impact::None.as_str())
    .bind(IncidentStatus::Scheduled.as_str())
    .bind(ms(n.starts_at))
    .bind(n.owner)
    .bind(ms(n.now))
    .bind(IncidentKind::Maintenance.as_str())
    .bind(n.description)
    .bind(ms(n.ends_at))
    .bind(n.recurrence_key)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((id,)) = row {
        super::changes::bump(conn, id).await?;
    }
    Ok(row.map(|r| r.0))
}

/// Sets a window's announced times and description and bumps its iCalendar sequence (call with
/// [`revise`], which moves the version).
pub async fn set_window(
    conn: &mut Conn,
    id: i64,
    description: Option<&str>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE incidents SET description = $2, scheduled_for = $3, scheduled_until = $4, \
         sequence = sequence + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(description)
    .bind(ms(starts_at))
    .bind(ms(ends_at))
    .execute(&mut *conn)
    .await?;
    super::changes::bump(conn, id).await?;
    Ok(())
}

/// Notes the due time of the newest advance notice sent for a window.
pub async fn mark_noticed(conn: &mut Conn, id: i64, at: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE incidents SET last_notice_at = $2 WHERE id = $1")
        .bind(id)
        .bind(ms(at))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Turns a maintenance window into an incident (or back): the row, its updates and its threads
/// stay; only the kind changes.
pub async fn set_kind(conn: &mut Conn, id: i64, kind: IncidentKind) -> Result<()> {
    sqlx::query("UPDATE incidents SET kind = $2 WHERE id = $1")
        .bind(id)
        .bind(kind.as_str())
        .execute(&mut *conn)
        .await?;
    super::changes::bump(conn, id).await?;
    Ok(())
}

/// Which maintenance windows a listing asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowFilter {
    /// Announced and not started yet.
    Upcoming,
    /// Started and not finished.
    Active,
    /// Every window, newest start first.
    All,
}

pub async fn windows(conn: &mut Conn, filter: WindowFilter, limit: i64) -> Result<Vec<Incident>> {
    let sql = match filter {
        WindowFilter::Upcoming => select_incidents!(
            "WHERE kind = 'maintenance' AND status = 'scheduled' ORDER BY scheduled_for, id LIMIT $1"
        ),
        WindowFilter::Active => select_incidents!(
            "WHERE kind = 'maintenance' AND resolved_at IS NULL AND status <> 'scheduled' \
             ORDER BY scheduled_for, id LIMIT $1"
        ),
        WindowFilter::All => select_incidents!(
            "WHERE kind = 'maintenance' ORDER BY scheduled_for DESC, id DESC LIMIT $1"
        ),
    };
    let rows: Vec<IncidentRow> = sqlx::query_as(sql)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(Incident::try_from).collect()
}

/// The starts of the windows a recurring config entry already has in `[from, to]`.
pub async fn recurrence_starts(
    conn: &mut Conn,
    key: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT scheduled_for FROM incidents WHERE recurrence_key = $1 \
         AND scheduled_for >= $2 AND scheduled_for <= $3",
    )
    .bind(key)
    .bind(ms(from))
    .bind(ms(to))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(t,)| from_ms(t)).collect())
}

/// Makes `owner` the owner of an open incident. Not a public change, so the version stays
/// (an update being written meanwhile is not made stale by it). Returns the previous owner, or
/// `None` if the incident is not open.
pub async fn set_owner(conn: &mut Conn, id: i64, owner: &str) -> Result<Option<Option<String>>> {
    let before: Option<(Option<String>,)> =
        sqlx::query_as("SELECT owner FROM incidents WHERE id = $1 AND resolved_at IS NULL")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((previous,)) = before else {
        return Ok(None);
    };
    sqlx::query("UPDATE incidents SET owner = $2 WHERE id = $1")
        .bind(id)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
    Ok(Some(previous))
}
