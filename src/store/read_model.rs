//! The public read model's queries: which incidents the status page needs, and those incidents
//! with their components, updates and estimate revisions loaded a few hundred at a time (a
//! handful of statements for any number of incidents, instead of three per incident).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::corrections;
use super::incidents::{select_incidents, EtaRevision, Incident, IncidentRow};
use super::postmortems::{self, Postmortem};
use super::updates::{Update, UpdateRow};
use super::{from_ms, ms, opt_from_ms, parse_enum, Conn, Result};
use crate::domain::ComponentStatus;

/// Ids per statement: well under every backend's limit on bound parameters.
const CHUNK: usize = 500;

/// The ids of what the status page shows: the incidents open now or resolved since `since`
/// and the `newest` newest incidents (both without maintenance that has not started or was
/// cancelled), and separately the `newest` newest maintenance windows, in the order the page
/// lists them (latest start first).
pub async fn needed(
    conn: &mut Conn,
    since: DateTime<Utc>,
    newest: i64,
) -> Result<(Vec<i64>, Vec<i64>)> {
    let mut core: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM incidents WHERE (resolved_at IS NULL OR resolved_at >= $1) \
         AND status NOT IN ('scheduled', 'cancelled')",
    )
    .bind(ms(since))
    .fetch_all(&mut *conn)
    .await?;
    core.extend(
        sqlx::query_as::<_, (i64,)>(
            "SELECT id FROM incidents WHERE status NOT IN ('scheduled', 'cancelled') \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(newest)
        .fetch_all(&mut *conn)
        .await?,
    );
    let mut core: Vec<i64> = core.into_iter().map(|(id,)| id).collect();
    core.sort_unstable();
    core.dedup();
    let windows: Vec<(i64,)> = sqlx::query_as(
        "SELECT id FROM incidents WHERE kind = 'maintenance' \
         ORDER BY scheduled_for DESC, id DESC LIMIT $1",
    )
    .bind(newest)
    .fetch_all(&mut *conn)
    .await?;
    Ok((core, windows.into_iter().map(|(id,)| id).collect()))
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything a story needs, for each of `ids` that exists.
#[derive(Debug, Default)]
pub struct Loaded {
    pub incidents: Vec<Incident>,
    pub components: BTreeMap<i64, BTreeMap<String, ComponentStatus>>,
    /// Oldest first per incident.
    pub updates: BTreeMap<i64, Vec<Update>>,
    /// Oldest first per incident.
    pub eta_revisions: BTreeMap<i64, Vec<EtaRevision>>,
    /// When each incident's first alert started (those linked to Alertmanager's groups).
    pub first_alert_at: BTreeMap<i64, DateTime<Utc>>,
    /// Published postmortems.
    pub postmortems: BTreeMap<i64, Postmortem>,
}

pub async fn load(conn: &mut Conn, ids: &[i64]) -> Result<Loaded> {
    let mut out = Loaded::default();
    for chunk in ids.chunks(CHUNK) {
        let list = placeholders(chunk.len());

        let sql = format!(select_incidents!("WHERE id IN ({}) ORDER BY id"), list);
        let mut q = sqlx::query_as::<_, IncidentRow>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            out.incidents.push(Incident::try_from(row)?);
        }

        let sql = format!(
            "SELECT incident_id, component_id, status FROM incident_components \
             WHERE incident_id IN ({list}) ORDER BY incident_id, component_id"
        );
        let mut q = sqlx::query_as::<_, (i64, String, String)>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for (incident, component, status) in q.fetch_all(&mut *conn).await? {
            out.components
                .entry(incident)
                .or_default()
                .insert(component, parse_enum(&status)?);
        }

        let sql = format!(
            "SELECT {} FROM corrections WHERE incident_id IN ({list}) ORDER BY id",
            corrections::COLUMNS
        );
        let mut q = sqlx::query_as::<_, corrections::Row>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        let mut fixes = corrections::group(q.fetch_all(&mut *conn).await?);
        let sql = format!(
            "SELECT id, incident_id, kind, status, message, eta_at, next_update_at, components, \
             author, created_at FROM updates WHERE incident_id IN ({list}) ORDER BY id"
        );
        let mut q = sqlx::query_as::<_, UpdateRow>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let mut u = Update::try_from(row)?;
            u.corrections = fixes.remove(&u.id).unwrap_or_default();
            out.updates.entry(u.incident_id).or_default().push(u);
        }

        let sql = format!(
            "SELECT incident_id, MIN(COALESCE(alert_started_at, first_seen_at)) FROM alert_groups \
             WHERE incident_id IN ({list}) GROUP BY incident_id"
        );
        let mut q = sqlx::query_as::<_, (i64, Option<i64>)>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for (incident, at) in q.fetch_all(&mut *conn).await? {
            if let Some(at) = at {
                out.first_alert_at.insert(incident, from_ms(at));
            }
        }

        let sql = format!(
            "SELECT incident_id FROM postmortems WHERE published_at IS NOT NULL \
             AND incident_id IN ({list})"
        );
        let mut q = sqlx::query_as::<_, (i64,)>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for (incident,) in q.fetch_all(&mut *conn).await? {
            if let Some(p) = postmortems::get(conn, incident).await? {
                out.postmortems.insert(incident, p);
            }
        }

        let sql = format!(
            "SELECT incident_id, id, update_id, old_eta_at, new_eta_at, actor, reason, created_at \
             FROM eta_revisions WHERE incident_id IN ({list}) ORDER BY id"
        );
        #[allow(clippy::type_complexity)]
        let mut q = sqlx::query_as::<
            _,
            (
                i64,
                i64,
                Option<i64>,
                Option<i64>,
                Option<i64>,
                String,
                Option<String>,
                i64,
            ),
        >(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for (incident, id, update_id, old, new, actor, reason, at) in
            q.fetch_all(&mut *conn).await?
        {
            out.eta_revisions
                .entry(incident)
                .or_default()
                .push(EtaRevision {
                    id,
                    update_id,
                    old_eta: opt_from_ms(old),
                    new_eta: opt_from_ms(new),
                    actor,
                    reason,
                    created_at: from_ms(at),
                });
        }
    }
    Ok(out)
}
