//! The public read model: everything the status page, the feeds and the v2 JSON show, read in
//! one pass from a bounded set of rows (the last 90 days and the 50 newest incidents), so its
//! cost does not grow with history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::domain::record::{self, Record};
use crate::domain::status::{self, Day, Indicator, Stretch};
use crate::domain::{ComponentStatus, Impact, IncidentStatus, UpdateKind};
use crate::store::incidents::{self, EtaRevision, Incident};
use crate::store::updates::{self, Update};
use crate::store::{Conn, Result};

pub use super::model::ReadModel;

/// Days of history shown per component.
pub const HISTORY_DAYS: u32 = 90;
/// Incidents listed in `incidents.json` and kept as stories.
pub const RECENT_INCIDENTS: i64 = 50;
/// Entries in the feeds.
pub const FEED_ENTRIES: i64 = 50;

/// A component as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ComponentView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub group: Option<String>,
    /// 1-based, in config order.
    pub position: usize,
    pub status: ComponentStatus,
    /// When its status last changed (the newest update that named it), if ever.
    pub updated_at: Option<DateTime<Utc>>,
    pub days: Vec<Day>,
    pub uptime: f64,
}

/// One incident with everything needed to tell its story.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Story {
    pub incident: Incident,
    pub url: String,
    pub components: BTreeMap<String, ComponentStatus>,
    /// Oldest first.
    pub updates: Vec<Update>,
    pub eta_revisions: Vec<EtaRevision>,
    /// When the first alert of its alert groups started, if any opened or joined it.
    pub first_alert_at: Option<DateTime<Utc>>,
    /// Its postmortem, once published.
    pub postmortem: Option<crate::store::postmortems::Postmortem>,
}

impl Story {
    pub fn is_open(&self) -> bool {
        self.incident.is_open()
    }
    /// The first estimate given, if any.
    pub fn first_eta(&self) -> Option<DateTime<Utc>> {
        self.eta_revisions.iter().find_map(|r| r.new_eta)
    }
    /// What the promise record reads of it.
    pub fn facts(&self) -> record::Facts {
        record::Facts {
            started_at: self.incident.started_at,
            resolved_at: self.incident.resolved_at,
            updates: self
                .updates
                .iter()
                .map(|u| record::Said {
                    at: u.created_at,
                    next_update_by: u.next_update_at,
                    holding: u.kind == UpdateKind::Scheduled,
                })
                .collect(),
            estimates: self
                .eta_revisions
                .iter()
                .map(|r| (r.created_at, r.new_eta))
                .collect(),
            first_alert_at: self.first_alert_at,
        }
    }
    /// Its own promise record at `now`.
    pub fn record(&self, now: DateTime<Utc>) -> record::IncidentRecord {
        record::incident(&self.facts(), now)
    }
    /// How many times the estimate changed after the first one.
    pub fn eta_changes(&self) -> usize {
        self.eta_revisions.len().saturating_sub(1)
    }
}

/// One feed entry: an update with its incident's title.
#[derive(Debug, Clone, Serialize)]
pub struct FeedItem {
    pub update: Update,
    /// How the estimate moved with this update, and why (none for the first estimate).
    pub eta_change: Option<crate::domain::wording::EtaChange>,
    pub title: String,
    pub url: String,
    pub impact: Impact,
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Moves whenever anything public changes (see [`updates::revision`]).
    pub revision: i64,
    /// The moment the snapshot describes (for the 90-day bars; not shown as "generated at").
    pub now: DateTime<Utc>,
    /// The newest public change.
    pub updated_at: Option<DateTime<Utc>>,
    pub indicator: Indicator,
    pub components: Vec<ComponentView>,
    /// Open incidents, newest first (maintenance windows are listed under `maintenances`).
    pub active: Vec<Story>,
    /// The newest incidents, open or resolved, newest first.
    pub recent: Vec<Story>,
    /// The newest maintenance windows (upcoming, active, completed or cancelled), newest
    /// start first.
    pub maintenances: Vec<Story>,
    /// The newest updates, newest first.
    pub feed: Vec<FeedItem>,
    /// The promise record of the last 90 days' incidents.
    pub record: Record,
    /// Set when the database cannot be reached: the pages then show this (last good) state
    /// with a note saying since when. Never read from the database.
    pub stale_since: Option<DateTime<Utc>>,
}

impl Snapshot {
    /// The newest public change; on a page that has never had one, the start of today (UTC),
    /// so documents that show it stay byte-identical (and keep their ETag) within a day.
    pub fn last_change(&self) -> DateTime<Utc> {
        self.updated_at.unwrap_or_else(|| {
            self.now
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
        })
    }
}

/// Loads an incident's story.
pub async fn story(conn: &mut Conn, config: &Config, incident: Incident) -> Result<Story> {
    let id = incident.id;
    Ok(Story {
        url: crate::commands::incident_url(config, id),
        components: incidents::components(conn, id).await?,
        updates: updates::for_incident(conn, id).await?,
        eta_revisions: incidents::eta_revisions(conn, id).await?,
        first_alert_at: crate::store::alert_groups::first_alert_at(conn, id).await?,
        postmortem: crate::store::postmortems::get(conn, id)
            .await?
            .filter(|p| p.published_at.is_some()),
        incident,
    })
}

/// Reads the whole read model from the database (start-up, tests): the same result as an
/// incremental [`ReadModel::refresh`] that has followed every change.
pub async fn build(conn: &mut Conn, config: &Config, now: DateTime<Utc>) -> Result<Snapshot> {
    let mut model = ReadModel::default();
    model.refresh(conn, config, now).await?;
    assemble(&model, conn, config, now).await
}

/// Everything customers may see at `now`, from the stories in `model` (its incidents in the
/// 90-day window, the newest incidents and windows) and the newest updates for the feeds.
pub async fn assemble(
    model: &ReadModel,
    conn: &mut Conn,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Snapshot> {
    let revision = model.revision();
    // Oldest first, as the page's history is built.
    let stories: Vec<&Story> = model.core().collect();

    // Per component: current status (worst across open incidents) and stretches of history.
    let current = status::current(
        stories
            .iter()
            .filter(|s| s.is_open())
            .flat_map(|s| s.components.iter().map(|(c, st)| (c.clone(), *st))),
    );
    let mut history: BTreeMap<String, Vec<Stretch>> = BTreeMap::new();
    let mut changed: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for s in &stories {
        let snapshots: Vec<_> = s
            .updates
            .iter()
            .map(|u| (u.created_at, u.components.clone()))
            .collect();
        let end = s.incident.resolved_at.unwrap_or(now);
        for (c, mut st) in status::stretches(s.incident.id, &s.incident.title, &snapshots, end) {
            history.entry(c).or_default().append(&mut st);
        }
        for u in &s.updates {
            for c in u.components.keys() {
                let e = changed.entry(c.clone()).or_insert(u.created_at);
                *e = (*e).max(u.created_at);
            }
        }
    }
    let components: Vec<ComponentView> = config
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let stretches = history.get(&c.id).map(Vec::as_slice).unwrap_or(&[]);
            ComponentView {
                id: c.id.clone(),
                name: c.name.clone(),
                description: c.description.clone(),
                group: c.group.clone(),
                position: i + 1,
                status: current
                    .get(c.id.as_str())
                    .copied()
                    .unwrap_or(ComponentStatus::Operational),
                updated_at: changed.get(&c.id).copied(),
                days: status::days(stretches, now, HISTORY_DAYS, config.site.time_zone),
                uptime: status::uptime_percent(stretches, now, HISTORY_DAYS),
            }
        })
        .collect();

    let facts: Vec<record::Facts> = stories
        .iter()
        .filter(|s| !s.incident.is_maintenance())
        .map(|s| s.facts())
        .collect();
    let mut record = record::record(&facts, now);
    let since = now - chrono::Duration::days(record::RECORD_DAYS);
    record.conversations =
        record::conversations(&crate::store::inbox::record_facts(conn, since).await?);

    let active: Vec<Story> = stories
        .iter()
        .rev()
        .filter(|s| s.is_open() && !s.incident.is_maintenance())
        .map(|s| (*s).clone())
        .collect();
    let indicator = status::indicator(
        components.iter().map(|c| c.status),
        active.iter().map(|s| s.incident.impact),
    );
    let recent: Vec<Story> = stories
        .iter()
        .rev()
        .filter(|s| !s.incident.is_maintenance())
        .take(RECENT_INCIDENTS as usize)
        .map(|s| (*s).clone())
        .collect();
    let maintenances: Vec<Story> = model.windows().cloned().collect();

    let feed_updates = updates::recent(conn, FEED_ENTRIES).await?;
    let mut feed = Vec::with_capacity(feed_updates.len());
    let mut others: BTreeMap<i64, (String, Impact, Vec<EtaRevision>)> = BTreeMap::new();
    for u in feed_updates {
        // The incident as the model holds it; one outside the model is read once.
        let (title, impact, revisions) = match model.story(u.incident_id) {
            Some(s) => (
                s.incident.title.clone(),
                s.incident.impact,
                s.eta_revisions.as_slice(),
            ),
            None => {
                if let std::collections::btree_map::Entry::Vacant(e) = others.entry(u.incident_id) {
                    let (title, impact) = match incidents::get(conn, u.incident_id).await? {
                        Some(i) => (i.title, i.impact),
                        None => ("Incident".to_string(), Impact::None),
                    };
                    e.insert((
                        title,
                        impact,
                        incidents::eta_revisions(conn, u.incident_id).await?,
                    ));
                }
                let (t, i, r) = &others[&u.incident_id];
                (t.clone(), *i, r.as_slice())
            }
        };
        let eta_change = revisions
            .iter()
            .find(|r| r.update_id == Some(u.id))
            .and_then(|r| {
                Some(crate::domain::wording::EtaChange {
                    old: r.old_eta?,
                    new: r.new_eta?,
                    reason: r.reason.clone(),
                })
            });
        feed.push(FeedItem {
            url: crate::commands::incident_url(config, u.incident_id),
            title,
            impact,
            update: u,
            eta_change,
        });
    }
    // A correction is a change too: the feeds' and the page's "last change" move with it.
    let updated_at = feed
        .iter()
        .map(|f| f.update.corrected_at().unwrap_or(f.update.created_at))
        .max();
    Ok(Snapshot {
        revision,
        now,
        updated_at,
        indicator,
        components,
        active,
        recent,
        maintenances,
        feed,
        record,
        stale_since: None,
    })
}

/// The status word customers read for an incident status.
pub fn status_label(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Investigating => "Investigating",
        IncidentStatus::Identified => "Identified",
        IncidentStatus::Monitoring => "Monitoring",
        IncidentStatus::Resolved => "Resolved",
        IncidentStatus::Scheduled => "Scheduled",
        IncidentStatus::InProgress => "In progress",
        IncidentStatus::Verifying => "Verifying",
        IncidentStatus::Completed => "Completed",
        IncidentStatus::Cancelled => "Cancelled",
    }
}
