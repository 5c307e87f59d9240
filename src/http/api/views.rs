//! JSON shapes of the v1 API. They are typed so that the OpenAPI document (`doc.rs`) is
//! generated from the very structs the handlers serialize.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Config;
use crate::domain::{ComponentStatus, Impact, IncidentStatus, UpdateKind};
use crate::store::alert_groups::{self, AlertGroup};
use crate::store::deliveries::Delivery;
use crate::store::incidents::{self, EtaRevision, Incident};
use crate::store::{deliveries, updates, Conn, Result};

/// A component and its status, as an incident or update names it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentRef {
    /// The component's id in config.
    pub id: String,
    pub name: String,
    pub status: ComponentStatus,
}

/// The latest update of an incident, in listings.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestUpdate {
    pub id: i64,
    pub kind: UpdateKind,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

/// An incident without its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentSummary {
    pub id: i64,
    pub title: String,
    pub impact: Impact,
    pub status: IncidentStatus,
    /// The incident's public page.
    pub url: String,
    /// When the team expects it fixed; `null` when nobody knows yet.
    pub eta: Option<DateTime<Utc>>,
    /// When the next update is promised; `null` once resolved.
    pub next_update_at: Option<DateTime<Utc>>,
    pub owner: Option<String>,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases with every write; send it back as `version` or `If-Match` to refuse stale writes.
    pub version: i64,
    pub components: Vec<ComponentRef>,
    /// In listings only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_update: Option<LatestUpdate>,
}

/// One update with its delivery to each channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateView {
    pub id: i64,
    pub kind: UpdateKind,
    pub status: IncidentStatus,
    pub message: String,
    pub eta: Option<DateTime<Utc>>,
    pub next_update_at: Option<DateTime<Utc>>,
    /// Component statuses as they were when this update was posted.
    pub components: Vec<ComponentRef>,
    pub author: String,
    pub created_at: DateTime<Utc>,
    /// Corrections, oldest first; `message` keeps the words as first posted.
    pub corrections: Vec<crate::store::corrections::Correction>,
    /// The update's deliveries, its corrections' included.
    pub deliveries: Vec<Delivery>,
}

/// An incident with its updates (each with its deliveries per channel), its ETA revisions, and
/// the notices sent to the team.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub summary: IncidentSummary,
    pub updates: Vec<UpdateView>,
    pub eta_revisions: Vec<EtaRevision>,
    pub ops_notices: Vec<Delivery>,
    /// Alertmanager groups that opened or joined this incident. Once every one has
    /// `resolved_at` set while the incident is open, it awaits a person's confirmation (or, in
    /// `resolve` mode, an incident Alertmanager opened is resolved).
    pub alert_groups: Vec<AlertGroup>,
}

/// The incident after a declaration or an update, with what the check before publishing
/// found. Warnings never stop a write: they say what to look at again.
#[derive(Debug, Serialize, ToSchema)]
pub struct Written {
    #[serde(flatten)]
    pub incident: IncidentDetail,
    /// Words that play down a major or critical incident (`minimising`, from
    /// `honesty.minimising_words`), an update that says nothing the previous one did not
    /// (`nothing_new`), words repeated from an earlier message (`repeats_earlier`).
    pub warnings: Vec<crate::domain::honesty::Warning>,
}

/// A page of incidents, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentList {
    pub incidents: Vec<IncidentSummary>,
    /// Pass as `before` for the next page; `null` on the last page.
    pub next_before: Option<i64>,
}

fn components(config: &Config, c: &BTreeMap<String, ComponentStatus>) -> Vec<ComponentRef> {
    c.iter()
        .map(|(id, status)| ComponentRef {
            id: id.clone(),
            name: config.component_name(id),
            status: *status,
        })
        .collect()
}

fn summary(
    config: &Config,
    i: &Incident,
    c: &BTreeMap<String, ComponentStatus>,
) -> IncidentSummary {
    IncidentSummary {
        id: i.id,
        title: i.title.clone(),
        impact: i.impact,
        status: i.status,
        url: crate::commands::incident_url(config, i.id),
        eta: i.eta_at,
        next_update_at: i.next_update_at,
        owner: i.owner.clone(),
        started_at: i.started_at,
        resolved_at: i.resolved_at,
        created_at: i.created_at,
        updated_at: i.updated_at,
        version: i.version,
        components: components(config, c),
        latest_update: None,
    }
}

pub async fn incident(conn: &mut Conn, config: &Config, id: i64) -> Result<Option<IncidentDetail>> {
    let Some(i) = incidents::get(conn, id).await? else {
        return Ok(None);
    };
    let current = incidents::components(conn, id).await?;
    let mut all_deliveries = deliveries::for_incident(conn, id).await?;
    let ups = updates::for_incident(conn, id)
        .await?
        .into_iter()
        .map(|u| {
            let (mine, rest) = all_deliveries
                .drain(..)
                .partition(|d| d.update_id == Some(u.id));
            all_deliveries = rest;
            UpdateView {
                id: u.id,
                kind: u.kind,
                status: u.status,
                message: u.message,
                eta: u.eta_at,
                next_update_at: u.next_update_at,
                components: components(config, &u.components),
                author: u.author,
                created_at: u.created_at,
                corrections: u.corrections,
                deliveries: mine,
            }
        })
        .collect();
    let ops_notices = all_deliveries
        .into_iter()
        .filter(|d| d.update_id.is_none() && d.audience == crate::domain::Audience::Ops)
        .collect();
    Ok(Some(IncidentDetail {
        summary: summary(config, &i, &current),
        updates: ups,
        eta_revisions: incidents::eta_revisions(conn, id).await?,
        ops_notices,
        alert_groups: alert_groups::for_incident(conn, id).await?,
    }))
}

pub async fn listing(
    conn: &mut Conn,
    config: &Config,
    list: &[Incident],
) -> Result<Vec<IncidentSummary>> {
    let mut out = Vec::with_capacity(list.len());
    for i in list {
        let c = incidents::components(conn, i.id).await?;
        let mut v = summary(config, i, &c);
        v.latest_update = updates::latest(conn, i.id)
            .await?
            .map(|latest| LatestUpdate {
                id: latest.id,
                kind: latest.kind,
                message: latest.message,
                created_at: latest.created_at,
            });
        out.push(v);
    }
    Ok(out)
}
