//! The incident's commands: declare, post an update, resolve, take ownership, retry a dead
//! delivery. Each validates, writes on the caller's transaction (see [`super::Unit`]), audits,
//! and publishes through [`super::publish`].

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::channels::MessageKind;
use crate::config::Config;
use crate::domain::schedule::next_update_after;
use crate::domain::text::human_time;
use crate::domain::{
    check_next_update_in, check_text, ComponentStatus, EtaInput, Impact, IncidentStatus, Invalid,
    UpdateKind, MAX_MESSAGE, MAX_REASON, MAX_TITLE,
};
use crate::store::incidents::{self, Incident, NewIncident, Revision};
use crate::store::{audit, deliveries, Conn};

use super::*;

/// A new incident, as the caller asks for it.
#[derive(Debug, Clone)]
pub struct Declare {
    pub title: String,
    pub impact: Impact,
    pub status: IncidentStatus,
    pub message: String,
    pub components: BTreeMap<String, ComponentStatus>,
    pub eta: Option<EtaInput>,
    pub next_update_in: Option<Duration>,
    pub owner: Option<String>,
}

/// A public update to an open incident. Absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct PostUpdate {
    pub message: String,
    pub title: Option<String>,
    pub status: Option<IncidentStatus>,
    pub impact: Option<Impact>,
    pub components: Option<BTreeMap<String, ComponentStatus>>,
    pub eta: Option<EtaInput>,
    /// Why the estimate moved (kept with the ETA revision).
    pub eta_reason: Option<String>,
    pub next_update_in: Option<Duration>,
    pub expected_version: Option<i64>,
}

/// The all-clear.
#[derive(Debug, Clone, Default)]
pub struct Resolve {
    pub message: String,
    pub expected_version: Option<i64>,
}

pub(super) fn check_components(
    config: &Config,
    components: &BTreeMap<String, ComponentStatus>,
) -> Result<(), Invalid> {
    for id in components.keys() {
        if config.component(id).is_none() {
            let known: Vec<&str> = config.components.iter().map(|c| c.id.as_str()).collect();
            return Err(Invalid::new(
                format!("components.{id}"),
                format!("unknown component; expected one of: {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// Declares an incident. Returns its id.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor)))]
pub async fn declare(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    d: Declare,
    now: DateTime<Utc>,
) -> Result<i64, CommandError> {
    let title = check_text("title", &d.title, MAX_TITLE)?;
    let message = check_text("message", &d.message, MAX_MESSAGE)?;
    let status = crate::domain::incident::update_status(d.status)?;
    check_components(&env.config, &d.components)?;
    let eta_at = d.eta.map(|e| e.resolve(now)).transpose()?;
    let requested = d.next_update_in.map(check_next_update_in).transpose()?;
    let owner = d
        .owner
        .as_deref()
        .map(|o| check_text("owner", o, 200))
        .transpose()?;
    let cadence = env.config.policies.for_impact(d.impact).update_every;
    let next_update_at = next_update_after(now, requested, cadence);

    let id = incidents::insert(
        conn,
        &NewIncident {
            title: &title,
            impact: d.impact,
            status,
            eta_at,
            next_update_at,
            owner: owner.as_deref(),
            now,
        },
    )
    .await?;
    incidents::set_components(conn, id, &d.components).await?;
    let incident = incidents::get(conn, id)
        .await?
        .ok_or(CommandError::NotFound(id))?;
    let update_id = publish(
        env,
        conn,
        &incident,
        UpdateKind::Operator,
        &message,
        &actor.to_string(),
        now,
    )
    .await?;
    if let Some(eta) = eta_at {
        incidents::insert_eta_revision(
            conn,
            id,
            update_id,
            None,
            Some(eta),
            &actor.to_string(),
            Some(crate::domain::wording::FIRST_ESTIMATE),
            now,
        )
        .await?;
    }
    audit::record(
        conn,
        &actor.to_string(),
        "incident.declare",
        Some(id),
        &json!({ "title": title, "impact": d.impact, "status": status, "eta_at": eta_at,
                 "next_update_at": next_update_at, "components": d.components }),
        now,
    )
    .await?;
    Ok(id)
}

pub(super) async fn load_open(
    env: &Env,
    conn: &mut Conn,
    id: i64,
    expected: Option<i64>,
) -> Result<Incident, CommandError> {
    let incident = incidents::get_for_update(conn, env.backend, id)
        .await?
        .ok_or(CommandError::NotFound(id))?;
    incident.check_open(expected)?;
    incident.may_post_update()?;
    Ok(incident)
}

/// Posts a public update: new words, and optionally a new status, impact, estimate, components.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), incident.id = id))]
pub async fn post_update(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    u: PostUpdate,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let message = check_text("message", &u.message, MAX_MESSAGE)?;
    let title = u
        .title
        .as_deref()
        .map(|t| check_text("title", t, MAX_TITLE))
        .transpose()?;
    let status = u
        .status
        .map(crate::domain::incident::update_status)
        .transpose()?;
    if let Some(c) = &u.components {
        check_components(&env.config, c)?;
    }
    let new_eta = u.eta.map(|e| e.resolve(now)).transpose()?;
    let reason = u
        .eta_reason
        .as_deref()
        .map(|r| check_text("eta_reason", r, MAX_REASON))
        .transpose()?;
    let requested = u.next_update_in.map(check_next_update_in).transpose()?;

    let before = load_open(env, conn, id, u.expected_version).await?;
    let eta_change = match (before.eta_at, new_eta) {
        (Some(old), Some(new)) if old != new => Some(EtaChange {
            old,
            new,
            reason: reason.clone(),
        }),
        _ => None,
    };
    if let Some(c) = eta_change.as_ref().filter(|c| c.new > c.old) {
        if c.reason.is_none() {
            let tz = env.config.site.time_zone;
            return Err(Invalid::new(
                "eta_reason",
                format!(
                    "the estimate moves later, from {} to {}: say why; customers read the \
                     reason with the new estimate (an earlier estimate needs none)",
                    human_time(c.old, now, tz),
                    human_time(c.new, now, tz)
                ),
            )
            .into());
        }
    }
    let impact = u.impact.unwrap_or(before.impact);
    let cadence = env.config.policies.for_impact(impact).update_every;
    let eta_at = new_eta.or(before.eta_at);
    let revision = Revision {
        title: title.as_deref().unwrap_or(&before.title),
        impact,
        status: status.unwrap_or(before.status),
        eta_at,
        next_update_at: Some(next_update_after(now, requested, cadence)),
        resolved_at: None,
        ..Revision::of(&before, now)
    };
    if let Some(c) = &u.components {
        incidents::set_components(conn, id, c).await?;
    }
    let after = revise(conn, &revision).await?;
    let extra = Extra {
        signature: None,
        eta_change,
    };
    let update_id = publish_with(
        env,
        conn,
        &after,
        (UpdateKind::Operator, MessageKind::Operator),
        &message,
        &actor.to_string(),
        &extra,
        now,
    )
    .await?;
    if new_eta.is_some() && new_eta != before.eta_at {
        incidents::insert_eta_revision(
            conn,
            id,
            update_id,
            before.eta_at,
            new_eta,
            &actor.to_string(),
            reason.as_deref(),
            now,
        )
        .await?;
    }
    audit::record(
        conn,
        &actor.to_string(),
        "incident.update",
        Some(id),
        &json!({ "update_id": update_id, "status": after.status, "impact": after.impact,
                 "eta_at": after.eta_at, "next_update_at": after.next_update_at,
                 "components": u.components, "version": after.version }),
        now,
    )
    .await?;
    env.metrics.promise(promise_outcome(&before, now));
    Ok(())
}

/// Whether a person's update came before the promised time.
pub(super) fn promise_outcome(before: &Incident, now: DateTime<Utc>) -> crate::metrics::Promise {
    match before.next_update_at {
        Some(t) if now > t => crate::metrics::Promise::Late,
        _ => crate::metrics::Promise::Kept,
    }
}

/// Resolves an incident: every affected component returns to operational.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), incident.id = id))]
pub async fn resolve(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    r: Resolve,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let message = check_text("message", &r.message, MAX_MESSAGE)?;
    let before = load_open(env, conn, id, r.expected_version).await?;
    let revision = Revision {
        status: IncidentStatus::Resolved,
        next_update_at: None,
        resolved_at: Some(now),
        ..Revision::of(&before, now)
    };
    incidents::clear_components(conn, id).await?;
    let after = revise(conn, &revision).await?;
    let update_id = publish(
        env,
        conn,
        &after,
        UpdateKind::Resolution,
        &message,
        &actor.to_string(),
        now,
    )
    .await?;
    super::inbox::close_loop(env, conn, &after, now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "incident.resolve",
        Some(id),
        &json!({ "update_id": update_id, "eta_at": before.eta_at,
                 "minutes_open": (now - before.started_at).num_minutes() }),
        now,
    )
    .await?;
    env.metrics.promise(promise_outcome(&before, now));
    Ok(())
}

/// Applies a revision if the incident is still at the version it was read at, and returns the
/// incident as it now stands.
pub(super) async fn revise(conn: &mut Conn, r: &Revision<'_>) -> Result<Incident, CommandError> {
    let applied = incidents::revise(conn, r).await?;
    let now = incidents::get(conn, r.id)
        .await?
        .ok_or(CommandError::NotFound(r.id))?;
    if !applied {
        return Err(CommandError::Stale {
            id: r.id,
            expected: r.expected_version,
            current: now.version,
        });
    }
    Ok(now)
}

/// Makes the actor the owner of an open incident (the console's "take ownership").
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), incident.id = id))]
pub async fn take_ownership(
    conn: &mut Conn,
    actor: &Actor,
    owner: &str,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let owner = check_text("owner", owner, 200)?;
    let previous = incidents::set_owner(conn, id, &owner)
        .await?
        .ok_or(CommandError::Resolved(id))?;
    audit::record(
        conn,
        &actor.to_string(),
        "incident.take_ownership",
        Some(id),
        &json!({ "owner": owner, "previous_owner": previous }),
        now,
    )
    .await?;
    Ok(())
}

/// Puts a dead delivery back in its lane to be tried again now ("retry now"). Returns false if
/// it is not dead (delivered meanwhile, or retried by someone else).
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), delivery.id = delivery_id))]
pub async fn retry_delivery(
    conn: &mut Conn,
    actor: &Actor,
    delivery_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, CommandError> {
    let Some((incident_id, channel)) = deliveries::retry_dead(conn, delivery_id, now).await? else {
        return Ok(false);
    };
    audit::record(
        conn,
        &actor.to_string(),
        "delivery.retry",
        incident_id,
        &json!({ "delivery_id": delivery_id, "channel": channel }),
        now,
    )
    .await?;
    Ok(true)
}
