//! The honesty check before an update is published, with the incident's history read from the
//! store: for the API's `warnings` and the console's preview. It never refuses anything.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{CommandError, Env};
use crate::domain::honesty::{self, Proposal, Warning};
use crate::domain::{ComponentStatus, Impact, IncidentStatus};
use crate::store::{incidents, updates, Conn};

/// An update (or a declaration, with `incident_id` `None`) as it is about to be published.
#[derive(Debug, Clone, Default)]
pub struct Draft<'a> {
    pub incident_id: Option<i64>,
    pub message: &'a str,
    pub impact: Option<Impact>,
    pub status: Option<IncidentStatus>,
    pub components: Option<&'a BTreeMap<String, ComponentStatus>>,
    pub eta_at: Option<DateTime<Utc>>,
}

fn affected(c: &BTreeMap<String, ComponentStatus>) -> BTreeMap<&String, &ComponentStatus> {
    c.iter()
        .filter(|(_, s)| **s != ComponentStatus::Operational)
        .collect()
}

/// The warnings for `d`, read against the incident as it stands.
#[tracing::instrument(skip_all, fields(incident.id = d.incident_id))]
pub async fn review(
    env: &Env,
    conn: &mut Conn,
    d: &Draft<'_>,
) -> Result<Vec<Warning>, CommandError> {
    let minimising = &env.config.honesty.minimising_words;
    let Some(id) = d.incident_id else {
        let p = Proposal {
            impact: d.impact.unwrap_or(Impact::Minor),
            message: d.message,
            new_facts: true,
        };
        return Ok(honesty::check(&p, None, &[], minimising));
    };
    let Some(before) = incidents::get(conn, id).await? else {
        return Ok(Vec::new());
    };
    let current = incidents::components(conn, id).await?;
    let new_facts = d.status.is_some_and(|s| s != before.status)
        || d.impact.is_some_and(|i| i != before.impact)
        || d.components.is_some_and(|c| {
            let mut after = current.clone();
            after.extend(c.iter().map(|(k, v)| (k.clone(), *v)));
            affected(&after) != affected(&current)
        })
        || d.eta_at.is_some_and(|e| Some(e) != before.eta_at);
    let history = updates::for_incident(conn, id).await?;
    let earlier: Vec<&str> = history.iter().map(|u| u.message.as_str()).collect();
    let p = Proposal {
        impact: d.impact.unwrap_or(before.impact),
        message: d.message,
        new_facts,
    };
    Ok(honesty::check(
        &p,
        earlier.last().copied(),
        &earlier,
        minimising,
    ))
}
