//! The scheduler's side of a window: advance notices and the start, each exactly once.

use super::{publish_as, revise, Actor, CommandError, Env};
use crate::channels::MessageKind;
use crate::domain::maintenance::{due, MaintenanceDue};
use crate::domain::text::human_duration;
use crate::domain::{to_chrono, ComponentStatus, IncidentStatus, UpdateKind};
use crate::store::incidents::{self, Revision};
use crate::store::{schedule, Conn};
use chrono::{DateTime, Utc};
use minijinja::context;
use std::collections::BTreeMap;

use super::*;

/// The scheduler's side: an advance notice or the start, exactly once per (window, action, due
/// time). Returns false when it was no longer due or another scheduler already did it.
#[tracing::instrument(skip_all, fields(actor = "candor", incident.id = id, action = action.key().0))]
pub async fn scheduled_notice(
    env: &Env,
    conn: &mut Conn,
    id: i64,
    action: MaintenanceDue,
    now: DateTime<Utc>,
) -> Result<bool, CommandError> {
    let Some(w) = incidents::get_for_update(conn, env.backend, id).await? else {
        return Ok(false);
    };
    let Some(state) = window_state(&w) else {
        return Ok(false);
    };
    if due(&state, &env.config.maintenance.notices, now) != Some(action) {
        return Ok(false);
    }
    let (name, due_at) = action.key();
    if !schedule::claim(conn, id, name, due_at, now).await? {
        return Ok(false);
    }
    let actor = Actor::scheduler();
    let components = incidents::components(conn, id).await?;
    let update_id = match action {
        MaintenanceDue::Notice { at, before } => {
            incidents::mark_noticed(conn, id, at).await?;
            let body = notice(
                env,
                "reminder",
                &w,
                &components,
                context! { before => human_duration(to_chrono(before)) },
                now,
            )?;
            publish_as(
                env,
                conn,
                &w,
                UpdateKind::Notice,
                MessageKind::MaintenanceReminder,
                &body,
                &actor.to_string(),
                now,
            )
            .await?
        }
        MaintenanceDue::Start { .. } => {
            let end = w.scheduled_until.unwrap_or(now);
            let under: BTreeMap<String, ComponentStatus> = components
                .keys()
                .map(|c| (c.clone(), ComponentStatus::UnderMaintenance))
                .collect();
            incidents::set_components(conn, id, &under).await?;
            let after = revise(
                conn,
                &Revision {
                    status: IncidentStatus::InProgress,
                    // The planned end is the estimate: passing it is an overrun, apologised for.
                    eta_at: Some(end),
                    next_update_at: Some(end.max(now + chrono::Duration::minutes(1))),
                    resolved_at: None,
                    apologised_eta_at: None,
                    ..Revision::of(&w, now)
                },
            )
            .await?;
            let body = notice(env, "started", &after, &under, context! {}, now)?;
            publish_as(
                env,
                conn,
                &after,
                UpdateKind::Notice,
                MessageKind::MaintenanceStarted,
                &body,
                &actor.to_string(),
                now,
            )
            .await?
        }
    };
    crate::commands::automatic::record_done(conn, &actor, id, name, due_at, Some(update_id), now)
        .await?;
    Ok(true)
}
