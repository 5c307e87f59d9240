//! How a window ends: completed, called off, or turned into an incident.

use super::{check_components, revise, Actor, CommandError, Env};
use crate::channels::MessageKind;
use crate::domain::text::human_duration;
use crate::domain::{check_text, to_chrono, IncidentKind, IncidentStatus, UpdateKind, MAX_MESSAGE};
use crate::store::incidents::{self, Revision};
use crate::store::{audit, Conn};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde_json::json;

use super::*;

/// Ends a window that has started: its components return to what the open incidents say.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), incident.id = id))]
pub async fn complete_window(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    c: Close,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let message = opt_text("message", c.message.as_deref(), MAX_MESSAGE)?;
    let before = load_window(env, conn, id, c.expected_version).await?;
    before.may_complete()?;
    let planned_end = before.eta_at.or(before.scheduled_until);
    let components = incidents::components(conn, id).await?;
    incidents::clear_components(conn, id).await?;
    touch_window(conn, &before).await?;
    let after = revise(
        conn,
        &Revision {
            status: IncidentStatus::Completed,
            next_update_at: None,
            resolved_at: Some(now),
            ..Revision::of(&before, now)
        },
    )
    .await?;
    let words = Words {
        own: message,
        event: "completed",
        components: &components,
        extra: context! { early => planned_end.is_some_and(|e| now < e),
        overran => planned_end.filter(|e| now > *e).map(|e| human_duration(now - e)) },
    };
    let kinds = (UpdateKind::Resolution, MessageKind::MaintenanceCompleted);
    let update_id = announce(env, conn, actor, &after, kinds, words, now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "maintenance.complete",
        Some(id),
        &json!({ "update_id": update_id, "planned_end": planned_end }),
        now,
    )
    .await?;
    Ok(())
}

/// Calls off a window that has not started, and says so.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), incident.id = id))]
pub async fn cancel_window(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    c: Close,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let message = opt_text("message", c.message.as_deref(), MAX_MESSAGE)?;
    let before = load_window(env, conn, id, c.expected_version).await?;
    before.may_cancel()?;
    let components = incidents::components(conn, id).await?;
    touch_window(conn, &before).await?;
    let after = revise(
        conn,
        &Revision {
            status: IncidentStatus::Cancelled,
            eta_at: None,
            next_update_at: None,
            resolved_at: Some(now),
            apologised_eta_at: None,
            ..Revision::of(&before, now)
        },
    )
    .await?;
    let words = Words {
        own: message,
        event: "cancelled",
        components: &components,
        extra: context! {},
    };
    let kinds = (UpdateKind::Notice, MessageKind::MaintenanceCancelled);
    let update_id = announce(env, conn, actor, &after, kinds, words, now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "maintenance.cancel",
        Some(id),
        &json!({ "update_id": update_id }),
        now,
    )
    .await?;
    Ok(())
}

/// Turns a started window into an incident: same row, same thread, now an outage.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), incident.id = id))]
pub async fn to_incident(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    t: ToIncident,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let status = crate::domain::incident::update_status(t.status)?;
    let message = check_text("message", &t.message, MAX_MESSAGE)?;
    if let Some(c) = &t.components {
        check_components(&env.config, c)?;
    }
    let before = load_window(env, conn, id, t.expected_version).await?;
    before.may_become_incident()?;
    incidents::set_kind(conn, id, IncidentKind::Incident).await?;
    if let Some(c) = &t.components {
        incidents::set_components(conn, id, c).await?;
    }
    let cadence = env.config.policies.for_impact(t.impact).update_every;
    let after = revise(
        conn,
        &Revision {
            impact: t.impact,
            status,
            next_update_at: Some(now + to_chrono(cadence)),
            resolved_at: None,
            ..Revision::of(&before, now)
        },
    )
    .await?;
    let update_id = crate::commands::publish(
        env,
        conn,
        &after,
        UpdateKind::Operator,
        &message,
        &actor.to_string(),
        now,
    )
    .await?;
    audit::record(
        conn,
        &actor.to_string(),
        "maintenance.to_incident",
        Some(id),
        &json!({ "update_id": update_id, "impact": t.impact, "status": status }),
        now,
    )
    .await?;
    Ok(())
}

/// Keeps the announced times of a window that is closing while moving its sequence, so
/// calendars pick up the change.
async fn touch_window(conn: &mut Conn, before: &Incident) -> Result<(), CommandError> {
    let start = before.scheduled_for.unwrap_or(before.started_at);
    incidents::set_window(
        conn,
        before.id,
        before.description.as_deref(),
        start,
        before.scheduled_until.unwrap_or(start),
    )
    .await?;
    Ok(())
}
