//! Public updates of an incident: each a snapshot of the facts at the time it was posted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{from_ms, ms, opt_from_ms, opt_ms, parse_enum, Conn, Result, StoreError};
use crate::domain::{ComponentStatus, IncidentStatus, UpdateKind};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Update {
    pub id: i64,
    pub incident_id: i64,
    pub kind: UpdateKind,
    pub status: IncidentStatus,
    pub message: String,
    pub eta_at: Option<DateTime<Utc>>,
    pub next_update_at: Option<DateTime<Utc>>,
    /// Component statuses as they were when this update was posted.
    pub components: BTreeMap<String, ComponentStatus>,
    pub author: String,
    pub created_at: DateTime<Utc>,
    /// Its corrections, oldest first (the update's own words never change).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<super::corrections::Correction>,
}

impl Update {
    /// The words as they read now: the latest correction's, else the original.
    pub fn current_message(&self) -> &str {
        self.corrections
            .last()
            .map(|c| c.message.as_str())
            .unwrap_or(&self.message)
    }
    /// When it was last corrected, if ever.
    pub fn corrected_at(&self) -> Option<DateTime<Utc>> {
        self.corrections.last().map(|c| c.created_at)
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct UpdateRow {
    id: i64,
    incident_id: i64,
    kind: String,
    status: String,
    message: String,
    eta_at: Option<i64>,
    next_update_at: Option<i64>,
    components: String,
    author: String,
    created_at: i64,
}

impl TryFrom<UpdateRow> for Update {
    type Error = StoreError;
    fn try_from(r: UpdateRow) -> Result<Self> {
        Ok(Update {
            id: r.id,
            incident_id: r.incident_id,
            kind: parse_enum(&r.kind)?,
            status: parse_enum(&r.status)?,
            message: r.message,
            eta_at: opt_from_ms(r.eta_at),
            next_update_at: opt_from_ms(r.next_update_at),
            components: serde_json::from_str(&r.components)
                .map_err(|e| StoreError::Corrupt(format!("update {} components: {e}", r.id)))?,
            author: r.author,
            created_at: from_ms(r.created_at),
            corrections: Vec::new(),
        })
    }
}

pub struct NewUpdate<'a> {
    pub incident_id: i64,
    pub kind: UpdateKind,
    pub status: IncidentStatus,
    pub message: &'a str,
    pub eta_at: Option<DateTime<Utc>>,
    pub next_update_at: Option<DateTime<Utc>>,
    pub components: &'a BTreeMap<String, ComponentStatus>,
    pub author: &'a str,
    pub now: DateTime<Utc>,
}

pub async fn insert(conn: &mut Conn, u: &NewUpdate<'_>) -> Result<i64> {
    let components =
        serde_json::to_string(u.components).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO updates (incident_id, kind, status, message, eta_at, next_update_at, components, \
         author, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(u.incident_id)
    .bind(u.kind.as_str())
    .bind(u.status.as_str())
    .bind(u.message)
    .bind(opt_ms(u.eta_at))
    .bind(opt_ms(u.next_update_at))
    .bind(components)
    .bind(u.author)
    .bind(ms(u.now))
    .fetch_one(&mut *conn)
    .await?;
    super::changes::bump(conn, u.incident_id).await?;
    Ok(id)
}

/// An incident's updates, oldest first.
pub async fn for_incident(conn: &mut Conn, incident_id: i64) -> Result<Vec<Update>> {
    let rows: Vec<UpdateRow> = sqlx::query_as(
        "SELECT id, incident_id, kind, status, message, eta_at, next_update_at, components, author, \
         created_at FROM updates WHERE incident_id = $1 ORDER BY id",
    )
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut corrections = super::corrections::for_incident(conn, incident_id).await?;
    rows.into_iter()
        .map(|r| {
            let mut u = Update::try_from(r)?;
            u.corrections = corrections.remove(&u.id).unwrap_or_default();
            Ok(u)
        })
        .collect()
}

/// One update.
pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Update>> {
    let row: Option<UpdateRow> = sqlx::query_as(
        "SELECT id, incident_id, kind, status, message, eta_at, next_update_at, components, author, \
         created_at FROM updates WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut u = Update::try_from(row)?;
    u.corrections = super::corrections::for_incident(conn, u.incident_id)
        .await?
        .remove(&u.id)
        .unwrap_or_default();
    Ok(Some(u))
}

/// How many updates of `kind` an incident has had (used to vary the wording of scheduled ones).
pub async fn count_kind(conn: &mut Conn, incident_id: i64, kind: UpdateKind) -> Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM updates WHERE incident_id = $1 AND kind = $2")
            .bind(incident_id)
            .bind(kind.as_str())
            .fetch_one(&mut *conn)
            .await?;
    Ok(n)
}

/// The most recent update of an incident.
pub async fn latest(conn: &mut Conn, incident_id: i64) -> Result<Option<Update>> {
    let row: Option<UpdateRow> = sqlx::query_as(
        "SELECT id, incident_id, kind, status, message, eta_at, next_update_at, components, author, \
         created_at FROM updates WHERE incident_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(incident_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Update::try_from).transpose()
}

/// The newest `limit` updates across all incidents, newest first (feeds).
pub async fn recent(conn: &mut Conn, limit: i64) -> Result<Vec<Update>> {
    let rows: Vec<UpdateRow> = sqlx::query_as(
        "SELECT id, incident_id, kind, status, message, eta_at, next_update_at, components, author, \
         created_at FROM updates ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut corrections = super::corrections::for_newest_updates(conn, limit).await?;
    rows.into_iter()
        .map(|r| {
            let mut u = Update::try_from(r)?;
            u.corrections = corrections.remove(&u.id).unwrap_or_default();
            Ok(u)
        })
        .collect()
}

/// A number that moves whenever anything the public sees changes (the change counter, bumped in
/// the same transaction as the change). Instances compare it to know when to rebuild their page
/// cache.
pub async fn revision(conn: &mut Conn) -> Result<i64> {
    super::changes::version(conn).await
}
