//! Resolved incidents as the estimate calibration reads them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{ms, parse_enum, Conn, Result};
use crate::domain::estimates::PastIncident;
use crate::domain::{ComponentStatus, Impact};

/// impact, started_at, resolved_at, first update's components, first ETA, when it was given.
type Row = (String, i64, i64, Option<String>, Option<i64>, Option<i64>);

/// The newest `limit` resolved incidents of `impact`: how long each took, the components its
/// first update named, and its first estimate (when given, and what it turned out to be).
/// Maintenance windows are not incidents and are never counted (a cancelled window "resolves"
/// before it starts).
pub async fn resolved(conn: &mut Conn, impact: Impact, limit: i64) -> Result<Vec<PastIncident>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} AND i.impact = $1 {NEWEST} LIMIT $2"))
        .bind(impact.as_str())
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    past(rows)
}

/// Every incident resolved at or after `since`, whatever its impact (the `/metrics` gauges).
pub async fn resolved_since(conn: &mut Conn, since: DateTime<Utc>) -> Result<Vec<PastIncident>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} AND i.resolved_at >= $1 {NEWEST}"))
        .bind(ms(since))
        .fetch_all(&mut *conn)
        .await?;
    past(rows)
}

const SELECT: &str = "SELECT i.impact, i.started_at, i.resolved_at, \
       (SELECT u.components FROM updates u WHERE u.incident_id = i.id ORDER BY u.id LIMIT 1), \
       (SELECT r.new_eta_at FROM eta_revisions r WHERE r.incident_id = i.id AND r.new_eta_at IS NOT NULL ORDER BY r.id LIMIT 1), \
       (SELECT r.created_at FROM eta_revisions r WHERE r.incident_id = i.id AND r.new_eta_at IS NOT NULL ORDER BY r.id LIMIT 1) \
     FROM incidents i WHERE i.resolved_at IS NOT NULL AND i.kind = 'incident'";
const NEWEST: &str = "ORDER BY i.resolved_at DESC";

fn past(rows: Vec<Row>) -> Result<Vec<PastIncident>> {
    rows.into_iter()
        .map(|(impact, started, resolved, comps, eta, given)| {
            let components: BTreeMap<String, ComponentStatus> = comps
                .and_then(|c| serde_json::from_str(&c).ok())
                .unwrap_or_default();
            let mins = |a: i64, b: i64| (b - a) as f64 / 60_000.0;
            Ok(PastIncident {
                impact: parse_enum(&impact)?,
                components: components.into_keys().collect(),
                minutes_to_resolve: mins(started, resolved),
                first_estimate: match (eta, given) {
                    (Some(eta), Some(given)) => Some((mins(given, eta), mins(given, resolved))),
                    _ => None,
                },
            })
        })
        .collect()
}
