//! Alertmanager's alert groups become incidents, through the same commands as every other
//! write. A firing group opens one incident, or joins an open one affecting the same
//! components; repeats of the group (and the same notification from several Alertmanager
//! replicas) change nothing. Once no group attached to an incident fires any more, whichever
//! order they resolved in, the incident is resolved (if Alertmanager opened it) or the team is
//! asked to confirm, as `alertmanager.on_resolved` says; the rules are the pure functions of
//! `crate::domain::alerts::decide`. A label value naming no component is logged and told to the
//! team; the incident still opens with the components that matched.

use chrono::{DateTime, Utc};
use minijinja::{context, Value};
use serde::Serialize;
use serde_json::json;

use crate::channels::MessageKind;
use crate::commands::{self, Actor, CommandError, Declare, Env, Resolve};
use crate::domain::alerts::decide::{self, GroupState, Quiet, Unmapped};
use crate::domain::alerts::{map, GroupStatus, Notification};
use crate::domain::IncidentStatus;
use crate::render::RenderError;
use crate::store::alert_groups::{self, AlertGroup};
use crate::store::{audit, incidents, Conn};

/// What a notification did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new incident was declared for the group.
    Opened,
    /// The group was attached to an open incident affecting the same components.
    Joined,
    /// The group already has its incident; nothing changed for customers.
    Unchanged,
    /// The group resolved and so did the incident it opened.
    Resolved,
    /// The group resolved, but other groups attached to its incident still fire: nothing
    /// changes until they resolve too.
    StillFiring,
    /// No group of the incident fires any more; the team has been asked (once) to confirm
    /// before the incident is resolved.
    AwaitingConfirmation,
    /// A resolved group Candor has no open incident for.
    Ignored,
}

/// The answer to Alertmanager (and to whoever reads the logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub action: Action,
    pub incident_id: Option<i64>,
    /// Component label values that named no configured component. The incident opens
    /// anyway (with the components that matched); the log warns and the team is told.
    pub unknown_components: Vec<String>,
}

/// Handles one notification on the caller's write transaction. `Ok(None)` means another
/// request holds this group key right now (only on PostgreSQL, when two replicas race): the
/// caller rolls back and asks again, and then sees the winner's incident.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor)))]
pub async fn receive(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    n: &Notification,
    now: DateTime<Utc>,
) -> Result<Option<Outcome>, CommandError> {
    n.check()?;
    let cfg = &env.config.alertmanager;
    let mapped = map(n, cfg, |id| env.config.component(id).is_some());
    if !mapped.unknown.is_empty() {
        let values: Vec<String> = mapped
            .unknown
            .iter()
            .map(|v| crate::channels::truncate(v, 100))
            .collect();
        tracing::warn!(
            label = %cfg.component_label,
            values = ?values,
            receiver = %crate::channels::truncate(&n.receiver, 100),
            "alert label value names no configured component; map it under alertmanager.components"
        );
    }
    let alerts = n.alerts.len() as i64 + n.truncated_alerts.max(0);
    let outcome = |action, incident_id| Outcome {
        action,
        incident_id,
        unknown_components: mapped.unknown.clone(),
    };

    // The group's current row, unless its incident has been resolved meanwhile (by a person):
    // then the group starts afresh. The incident's row is locked (PostgreSQL; SQLite's write
    // transaction holds the database) before its groups are read, so two groups of one
    // incident resolving at once (or two replicas sending the same word) are decided one
    // after the other, each seeing the other's word.
    let mut current = alert_groups::active(conn, &n.group_key).await?;
    if let Some(g) = &current {
        let open = match g.incident_id {
            Some(id) => incidents::get_for_update(conn, env.backend, id)
                .await?
                .is_some_and(|i| i.is_open()),
            None => false,
        };
        if !open {
            alert_groups::deactivate(conn, g.id).await?;
            current = None;
        }
    }

    match (n.status, current) {
        (GroupStatus::Firing, Some(g)) => {
            alert_groups::seen(conn, g.id, "firing", alerts, None, now).await?;
            alert_groups::note_start(conn, g.id, n.started_at(now)).await?;
            if decide::refiring(&state(&g)) {
                audit::record(
                    conn,
                    &actor.to_string(),
                    "alertmanager.refiring",
                    g.incident_id,
                    &json!({ "group_key": n.group_key }),
                    now,
                )
                .await?;
            }
            Ok(Some(outcome(Action::Unchanged, g.incident_id)))
        }
        (GroupStatus::Firing, None) => {
            let Some(row) =
                alert_groups::claim(conn, &n.group_key, &n.receiver, alerts, now).await?
            else {
                return Ok(None);
            };
            alert_groups::note_start(conn, row, n.started_at(now)).await?;
            if let Some(open) = joinable(conn, &mapped.components).await? {
                alert_groups::link(conn, row, open, false).await?;
                audit::record(
                    conn,
                    &actor.to_string(),
                    "alertmanager.join",
                    Some(open),
                    &json!({ "group_key": n.group_key, "receiver": n.receiver }),
                    now,
                )
                .await?;
                tell_unmapped(env, conn, actor, n, &mapped.unknown, open, now).await?;
                return Ok(Some(outcome(Action::Joined, Some(open))));
            }
            let names = component_names(env, &mapped.components);
            let declare = Declare {
                title: render(&cfg.title, "alertmanager.title", n, &names)?,
                impact: mapped.impact,
                status: IncidentStatus::Investigating,
                message: render(&cfg.message, "alertmanager.message", n, &names)?,
                components: mapped.components.clone(),
                // Alertmanager knows that something broke, not when it will be fixed: no
                // estimate, so the impact's policy promises the next update instead.
                eta: None,
                next_update_in: None,
                owner: cfg.owner.clone(),
            };
            let id = commands::declare(env, conn, actor, declare, now).await?;
            alert_groups::link(conn, row, id, true).await?;
            audit::record(
                conn,
                &actor.to_string(),
                "alertmanager.open",
                Some(id),
                &json!({ "group_key": n.group_key, "receiver": n.receiver, "alerts": alerts }),
                now,
            )
            .await?;
            tell_unmapped(env, conn, actor, n, &mapped.unknown, id, now).await?;
            Ok(Some(outcome(Action::Opened, Some(id))))
        }
        (GroupStatus::Resolved, None) => Ok(Some(outcome(Action::Ignored, None))),
        (GroupStatus::Resolved, Some(g)) => {
            let incident_id = g
                .incident_id
                .expect("an active group with an open incident");
            // Read after the incident's row was locked above: every group's latest word.
            let groups = alert_groups::active_for_incident(conn, incident_id).await?;
            let states: Vec<GroupState> = groups.iter().map(state).collect();
            let d = decide::on_resolved(&states, &n.group_key, cfg.on_resolved, now);
            alert_groups::seen(conn, g.id, "resolved", alerts, Some(d.resolved_at), now).await?;
            let action = match d.then {
                Quiet::StillFiring(firing) => {
                    tracing::debug!(
                        incident.id = incident_id,
                        still_firing = firing.len(),
                        "alert group resolved; others of its incident still fire"
                    );
                    Action::StillFiring
                }
                Quiet::Resolve => {
                    let names =
                        component_names(env, &incidents::components(conn, incident_id).await?);
                    let message = render(
                        &cfg.resolved_message,
                        "alertmanager.resolved_message",
                        n,
                        &names,
                    )?;
                    let r = Resolve {
                        message,
                        expected_version: None,
                    };
                    commands::resolve(env, conn, actor, incident_id, r, now).await?;
                    alert_groups::deactivate_incident(conn, incident_id).await?;
                    Action::Resolved
                }
                Quiet::AskToConfirm => {
                    ask_to_confirm(env, conn, actor, incident_id, &g, now).await?;
                    Action::AwaitingConfirmation
                }
                Quiet::AlreadyAsked => Action::AwaitingConfirmation,
            };
            Ok(Some(outcome(action, Some(incident_id))))
        }
    }
}

/// A stored group as the decisions see it.
fn state(g: &AlertGroup) -> GroupState {
    GroupState {
        group_key: g.group_key.clone(),
        opened: g.opened,
        resolved_at: g.resolved_at,
    }
}

/// Tells the ops channels, once (when the group first opens or joins its incident), which
/// label values named no component.
async fn tell_unmapped(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    n: &Notification,
    unknown: &[String],
    incident_id: i64,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    if unknown.is_empty() {
        return Ok(());
    }
    let incident = incidents::get(conn, incident_id)
        .await?
        .ok_or(CommandError::NotFound(incident_id))?;
    let components = component_names(env, &incidents::components(conn, incident_id).await?);
    let url = commands::console_url(&env.config, &incident);
    let notice = Unmapped {
        site_name: &env.config.site.name,
        incident_id,
        title: &incident.title,
        receiver: &n.receiver,
        label: &env.config.alertmanager.component_label,
        values: unknown,
        components: &components,
        incident_url: &url,
    }
    .notice();
    if let Some(body) = notice {
        commands::notify_ops(
            env,
            conn,
            &incident,
            MessageKind::OpsAlertUnmapped,
            &body,
            now,
        )
        .await?;
        audit::record(
            conn,
            &actor.to_string(),
            "alertmanager.unmapped_components",
            Some(incident_id),
            &json!({
                "group_key": n.group_key,
                "label": env.config.alertmanager.component_label,
                "values": unknown
                    .iter()
                    .map(|v| crate::channels::truncate(v, 100))
                    .collect::<Vec<_>>(),
            }),
            now,
        )
        .await?;
    }
    Ok(())
}

/// An open incident that already affects one of these components, oldest first.
async fn joinable(
    conn: &mut Conn,
    components: &std::collections::BTreeMap<String, crate::domain::ComponentStatus>,
) -> Result<Option<i64>, CommandError> {
    if components.is_empty() {
        return Ok(None);
    }
    for incident in incidents::open(conn).await? {
        let affected = incidents::components(conn, incident.id).await?;
        if affected.keys().any(|c| components.contains_key(c)) {
            return Ok(Some(incident.id));
        }
    }
    Ok(None)
}

async fn ask_to_confirm(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    incident_id: i64,
    group: &AlertGroup,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let incident = incidents::get(conn, incident_id)
        .await?
        .ok_or(CommandError::NotFound(incident_id))?;
    let body = env.renderer.render(
        "ops/alert_resolved.txt.j2",
        context! {
            site_name => env.config.site.name, incident_id, title => incident.title,
            receiver => group.receiver, incident_url => commands::console_url(&env.config, &incident),
        },
    )?;
    commands::notify_ops(
        env,
        conn,
        &incident,
        MessageKind::OpsAlertResolved,
        &body,
        now,
    )
    .await?;
    audit::record(
        conn,
        &actor.to_string(),
        "alertmanager.resolved_awaiting_confirmation",
        Some(incident_id),
        &json!({ "group_key": group.group_key }),
        now,
    )
    .await?;
    Ok(())
}

fn component_names(
    env: &Env,
    components: &std::collections::BTreeMap<String, crate::domain::ComponentStatus>,
) -> String {
    let names: Vec<String> = components
        .keys()
        .map(|id| env.config.component_name(id))
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Renders one of the configured templates with the payload's fields.
fn render(
    source: &str,
    key: &str,
    n: &Notification,
    components: &str,
) -> Result<String, CommandError> {
    let env = minijinja::Environment::new();
    let payload = serde_json::to_value(n).unwrap_or_default();
    let ctx = context! { components, ..Value::from_serialize(&payload) };
    env.render_str(source, ctx)
        .map(|s| s.trim().to_string())
        .map_err(|e| {
            CommandError::Render(RenderError {
                name: key.to_string(),
                message: format!("{e:#}"),
            })
        })
}
