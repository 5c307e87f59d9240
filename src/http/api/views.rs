//! JSON shapes of the v1 API.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::config::Config;
use crate::store::incidents::{self, Incident};
use crate::store::{deliveries, updates, Conn, Result};

fn components_json(config: &Config, c: &BTreeMap<String, crate::domain::ComponentStatus>) -> Value {
    Value::Array(
        c.iter()
            .map(|(id, status)| {
                json!({
                    "id": id,
                    "name": config.component(id).map(|c| c.name.as_str()).unwrap_or(id),
                    "status": status,
                })
            })
            .collect(),
    )
}

fn summary(
    config: &Config,
    i: &Incident,
    components: &BTreeMap<String, crate::domain::ComponentStatus>,
) -> Value {
    json!({
        "id": i.id,
        "title": i.title,
        "impact": i.impact,
        "status": i.status,
        "url": crate::commands::incident_url(config, i.id),
        "eta": i.eta_at,
        "next_update_at": i.next_update_at,
        "owner": i.owner,
        "started_at": i.started_at,
        "resolved_at": i.resolved_at,
        "created_at": i.created_at,
        "updated_at": i.updated_at,
        "version": i.version,
        "components": components_json(config, components),
    })
}

/// An incident with its updates (each with its deliveries per channel), its ETA revisions, and
/// the notices sent to the team.
pub async fn incident(conn: &mut Conn, config: &Config, id: i64) -> Result<Option<Value>> {
    let Some(i) = incidents::get(conn, id).await? else {
        return Ok(None);
    };
    let components = incidents::components(conn, id).await?;
    let all_deliveries = deliveries::for_incident(conn, id).await?;
    let ups: Vec<Value> = updates::for_incident(conn, id)
        .await?
        .into_iter()
        .map(|u| {
            let ds: Vec<&deliveries::Delivery> = all_deliveries
                .iter()
                .filter(|d| d.update_id == Some(u.id))
                .collect();
            json!({
                "id": u.id,
                "kind": u.kind,
                "status": u.status,
                "message": u.message,
                "eta": u.eta_at,
                "next_update_at": u.next_update_at,
                "components": components_json(config, &u.components),
                "author": u.author,
                "created_at": u.created_at,
                "deliveries": ds,
            })
        })
        .collect();
    let ops: Vec<&deliveries::Delivery> = all_deliveries
        .iter()
        .filter(|d| d.update_id.is_none())
        .collect();
    let mut v = summary(config, &i, &components);
    v["updates"] = Value::Array(ups);
    v["eta_revisions"] =
        serde_json::to_value(incidents::eta_revisions(conn, id).await?).unwrap_or_default();
    v["ops_notices"] = serde_json::to_value(ops).unwrap_or_default();
    Ok(Some(v))
}

pub async fn listing(conn: &mut Conn, config: &Config, list: &[Incident]) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(list.len());
    for i in list {
        let components = incidents::components(conn, i.id).await?;
        let mut v = summary(config, i, &components);
        if let Some(latest) = updates::latest(conn, i.id).await? {
            v["latest_update"] = json!({
                "id": latest.id, "kind": latest.kind, "message": latest.message, "created_at": latest.created_at,
            });
        }
        out.push(v);
    }
    Ok(out)
}
