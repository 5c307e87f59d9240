//! Scheduled maintenance through the one write path. A window is an incidents row of kind
//! `maintenance`: announcing, editing, extending, completing and cancelling it write an update
//! and one delivery per channel like any incident update, so threading, the outbox and the audit
//! log work the same. Once started, the planned end is the window's estimate, so an overrun is
//! the incident scheduler's apology (worded for maintenance) and its promises are kept the same.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::context;
use serde_json::json;

use super::{check_components, incident_url, publish_as, revise, Actor, CommandError, Env};
use crate::channels::MessageKind;
use crate::config::maintenance::RecurringWindow;
use crate::domain::maintenance::WindowState;
use crate::domain::text::{human_duration, human_span, human_time, Dating};
use crate::domain::{
    check_text, to_chrono, ComponentStatus, Impact, IncidentStatus, Invalid, UpdateKind,
    MAX_MESSAGE, MAX_REASON, MAX_TITLE,
};
use crate::store::incidents::{self, Incident, NewWindow, Revision};
use crate::store::{audit, Conn};

mod close;
mod scheduled;
pub use close::*;
pub use scheduled::*;

/// The longest a window may last.
pub const MAX_WINDOW: chrono::Duration = chrono::Duration::days(7);
/// The most windows one recurring entry materialises ahead.
pub const MAX_RECURRING: usize = 100;
/// How far ahead a window may be scheduled.
pub const MAX_LEAD: chrono::Duration = chrono::Duration::days(366);

/// A new window, as the caller asks for it.
#[derive(Debug, Clone)]
pub struct ScheduleWindow {
    pub title: String,
    pub description: Option<String>,
    pub components: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The announcement's words; a standard one is written when absent.
    pub message: Option<String>,
    pub owner: Option<String>,
}

/// A change to a window. Absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct EditWindow {
    pub title: Option<String>,
    pub description: Option<String>,
    pub components: Option<Vec<String>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub message: Option<String>,
    /// Why the end moved (required to extend a window that has started).
    pub reason: Option<String>,
    /// A started window may move between `in_progress` and `verifying`.
    pub status: Option<IncidentStatus>,
    pub expected_version: Option<i64>,
}

/// Completing or cancelling a window.
#[derive(Debug, Clone, Default)]
pub struct Close {
    pub message: Option<String>,
    pub expected_version: Option<i64>,
}

/// Turning a started window into an incident.
#[derive(Debug, Clone)]
pub struct ToIncident {
    pub message: String,
    pub impact: Impact,
    pub status: IncidentStatus,
    pub components: Option<BTreeMap<String, ComponentStatus>>,
    pub expected_version: Option<i64>,
}

/// Peak hours the window overlaps, as warnings for the operator.
pub fn warnings(
    env: &Env,
    components: &[String],
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
) -> Vec<String> {
    let tz = env.config.site.time_zone;
    let mut out = Vec::new();
    for (i, p) in env.config.maintenance.peak_hours.iter().enumerate() {
        let concerned =
            p.components.is_empty() || p.components.iter().any(|c| components.contains(c));
        let Ok(hours) = p.hours(&format!("maintenance.peak_hours[{i}]")) else {
            continue;
        };
        if concerned && hours.overlaps(starts, ends) {
            out.push(format!(
                "this window ({} to {}) overlaps peak hours \"{}\" ({} to {} {}); schedule it at a quieter time unless you must",
                human_time(starts, starts, tz),
                human_time(ends, starts, tz),
                p.name,
                p.from,
                p.to,
                p.time_zone
            ));
        }
    }
    out
}

/// The lines channels show under a maintenance message.
pub(super) fn message_lines(
    w: &Incident,
    now: DateTime<Utc>,
    tz: Tz,
) -> (Option<String>, Option<String>) {
    let (Some(start), Some(end)) = (w.scheduled_for, w.scheduled_until) else {
        return (None, None);
    };
    let end = w.eta_at.unwrap_or(end);
    match w.status {
        IncidentStatus::Scheduled => (
            Some(format!(
                "Scheduled for {}.",
                human_span(start, end, now, tz, Dating::Always)
            )),
            None,
        ),
        IncidentStatus::InProgress | IncidentStatus::Verifying if end > now => (
            Some(format!("Planned to end by {}.", human_time(end, now, tz))),
            w.next_update_at
                .filter(|t| *t != end)
                .map(|t| format!("Next update by {}.", human_time(t, now, tz))),
        ),
        IncidentStatus::InProgress | IncidentStatus::Verifying => (
            Some(format!(
                "It was planned to end by {}; it is running over and a new end time will follow.",
                human_time(end, now, tz)
            )),
            w.next_update_at
                .map(|t| format!("Next update by {}.", human_time(t, now, tz))),
        ),
        _ => (None, None),
    }
}

fn check_window(
    starts: DateTime<Utc>,
    ends: DateTime<Utc>,
    now: DateTime<Utc>,
    started: bool,
) -> Result<(), Invalid> {
    if !started && starts <= now {
        return Err(Invalid::new("starts_at", "must be in the future"));
    }
    if starts > now + MAX_LEAD {
        return Err(Invalid::new("starts_at", "must be within a year"));
    }
    if ends <= starts {
        return Err(Invalid::new("ends_at", "must be after starts_at"));
    }
    if ends - starts > MAX_WINDOW {
        return Err(Invalid::new("ends_at", "a window may last at most 7 days"));
    }
    if started && ends <= now {
        return Err(Invalid::new("ends_at", "must be in the future"));
    }
    Ok(())
}

fn component_map(
    env: &Env,
    list: &[String],
    status: ComponentStatus,
) -> Result<BTreeMap<String, ComponentStatus>, Invalid> {
    let map: BTreeMap<String, ComponentStatus> = list.iter().map(|c| (c.clone(), status)).collect();
    check_components(&env.config, &map)?;
    Ok(map)
}

fn opt_text(field: &str, s: Option<&str>, max: usize) -> Result<Option<String>, Invalid> {
    s.map(|s| check_text(field, s, max)).transpose()
}

/// The standard words of a maintenance notice.
/// What a window's change says: the operator's own words when given, else the notice for `event`.
struct Words<'a> {
    own: Option<String>,
    event: &'a str,
    components: &'a BTreeMap<String, ComponentStatus>,
    extra: minijinja::Value,
}

/// Publishes a window's change on every channel, in the words `words` gives; returns the
/// update's id.
async fn announce(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    w: &Incident,
    kinds: (UpdateKind, MessageKind),
    words: Words<'_>,
    now: DateTime<Utc>,
) -> Result<i64, CommandError> {
    let body = match words.own {
        Some(m) => m,
        None => notice(env, words.event, w, words.components, words.extra, now)?,
    };
    let author = actor.to_string();
    publish_as(env, conn, w, kinds.0, kinds.1, &body, &author, now).await
}

fn notice(
    env: &Env,
    event: &str,
    w: &Incident,
    components: &BTreeMap<String, ComponentStatus>,
    extra: minijinja::Value,
    now: DateTime<Utc>,
) -> Result<String, CommandError> {
    let tz = env.config.site.time_zone;
    let names = super::component_names(
        &env.config,
        &components
            .keys()
            .map(|c| (c.clone(), ComponentStatus::UnderMaintenance))
            .collect(),
    );
    let start = w.scheduled_for.unwrap_or(w.started_at);
    let end = w.eta_at.or(w.scheduled_until).unwrap_or(start);
    Ok(env.renderer.render(
        "messages/maintenance.txt.j2",
        context! {
            event, title => w.title, description => w.description, components => names,
            start_text => human_time(start, now, tz), end_text => human_time(end, start, tz),
            span_text => human_span(start, end, now, tz, Dating::Always),
            duration => human_duration(end - start), extra,
        },
    )?)
}

/// Schedules a window and announces it. Returns its id, or None when `recurrence_key` already
/// has a window at this start (another scheduler materialised it first).
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor)))]
pub async fn schedule_window(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    s: ScheduleWindow,
    recurrence_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Option<i64>, CommandError> {
    let title = check_text("title", &s.title, MAX_TITLE)?;
    let description = opt_text("description", s.description.as_deref(), MAX_MESSAGE)?;
    let message = opt_text("message", s.message.as_deref(), MAX_MESSAGE)?;
    let owner = opt_text("owner", s.owner.as_deref(), 200)?;
    let starts = crate::clock::truncate_ms(s.starts_at);
    let ends = crate::clock::truncate_ms(s.ends_at);
    check_window(starts, ends, now, false)?;
    let components = component_map(env, &s.components, ComponentStatus::Operational)?;
    let Some(id) = incidents::insert_window(
        conn,
        &NewWindow {
            title: &title,
            description: description.as_deref(),
            starts_at: starts,
            ends_at: ends,
            owner: owner.as_deref(),
            recurrence_key,
            now,
        },
    )
    .await?
    else {
        return Ok(None);
    };
    incidents::set_components(conn, id, &components).await?;
    let w = incidents::get(conn, id)
        .await?
        .ok_or(CommandError::NotFound(id))?;
    let words = Words {
        own: message,
        event: "scheduled",
        components: &components,
        extra: context! {},
    };
    let kinds = (UpdateKind::Notice, MessageKind::MaintenanceScheduled);
    let update_id = announce(env, conn, actor, &w, kinds, words, now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "maintenance.schedule",
        Some(id),
        &json!({ "update_id": update_id, "title": title, "starts_at": starts, "ends_at": ends,
                 "components": s.components, "recurrence_key": recurrence_key }),
        now,
    )
    .await?;
    Ok(Some(id))
}

async fn load_window(
    env: &Env,
    conn: &mut Conn,
    id: i64,
    expected: Option<i64>,
) -> Result<Incident, CommandError> {
    let w = incidents::get_for_update(conn, env.backend, id)
        .await?
        .filter(Incident::is_maintenance)
        .ok_or(CommandError::NotFound(id))?;
    w.check_open(expected)?;
    Ok(w)
}

/// Edits a window; on a window that has started only the title, description and end may move,
/// and moving the end later (an extension) needs a reason.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), incident.id = id))]
pub async fn edit_window(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    e: EditWindow,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let title = opt_text("title", e.title.as_deref(), MAX_TITLE)?;
    let description = opt_text("description", e.description.as_deref(), MAX_MESSAGE)?;
    let message = opt_text("message", e.message.as_deref(), MAX_MESSAGE)?;
    let reason = opt_text("reason", e.reason.as_deref(), MAX_REASON)?;
    let before = load_window(env, conn, id, e.expected_version).await?;
    let started = before.window_started();
    let old_start = before.scheduled_for.unwrap_or(before.started_at);
    let old_end = before
        .eta_at
        .or(before.scheduled_until)
        .unwrap_or(old_start);
    if started && e.starts_at.is_some_and(|s| s != old_start) {
        return Err(Invalid::new(
            "starts_at",
            "the window has already started; its start cannot move",
        )
        .into());
    }
    if started && e.components.is_some() {
        return Err(Invalid::new(
            "components",
            "the window has already started; post an incident update or turn it into an incident to change components",
        )
        .into());
    }
    let status = before.window_status_after_edit(e.status)?;
    let verifying = status == IncidentStatus::Verifying && before.status != status;
    let starts = e
        .starts_at
        .map(crate::clock::truncate_ms)
        .unwrap_or(old_start);
    let ends = e.ends_at.map(crate::clock::truncate_ms).unwrap_or(old_end);
    check_window(starts, ends, now, started)?;
    let extended = started && ends != old_end;
    if extended && reason.is_none() {
        return Err(Invalid::new(
            "reason",
            "say why the window's end moves (customers are told)",
        )
        .into());
    }
    if let Some(list) = &e.components {
        let map = component_map(env, list, ComponentStatus::Operational)?;
        incidents::replace_components(conn, id, &map).await?;
    }
    let description = description.or(before.description.clone());
    incidents::set_window(conn, id, description.as_deref(), starts, ends).await?;
    let revision = Revision {
        title: title.as_deref().unwrap_or(&before.title),
        status,
        eta_at: started.then_some(ends),
        // Before the start the next word is the start; after it, the (new) end.
        next_update_at: Some(if started { ends } else { starts }),
        resolved_at: None,
        ..Revision::of(&before, now)
    };
    let after = revise(conn, &revision).await?;
    if !started {
        // The change is itself an announcement: offsets already passed are not sent late.
        incidents::mark_noticed(conn, id, now).await?;
    }
    let components = incidents::components(conn, id).await?;
    let words = Words {
        own: message,
        event: if extended {
            "extended"
        } else if verifying {
            "verifying"
        } else {
            "updated"
        },
        components: &components,
        extra: context! { reason },
    };
    let kinds = (UpdateKind::Notice, MessageKind::MaintenanceUpdated);
    let update_id = announce(env, conn, actor, &after, kinds, words, now).await?;
    if extended {
        incidents::insert_eta_revision(
            conn,
            id,
            update_id,
            Some(old_end),
            Some(ends),
            &actor.to_string(),
            reason.as_deref(),
            now,
        )
        .await?;
    }
    audit::record(
        conn,
        &actor.to_string(),
        if extended {
            "maintenance.extend"
        } else {
            "maintenance.edit"
        },
        Some(id),
        &json!({ "update_id": update_id, "starts_at": starts, "ends_at": ends,
                 "reason": reason, "version": after.version }),
        now,
    )
    .await?;
    Ok(())
}

/// The notice-scheduling view of a window that has not started.
pub fn window_state(w: &Incident) -> Option<WindowState> {
    (w.is_maintenance() && w.status == IncidentStatus::Scheduled).then(|| WindowState {
        status: w.status,
        starts_at: w.scheduled_for.unwrap_or(w.started_at),
        last_notice_at: w.last_notice_at,
    })
}

/// The concrete windows a recurring config entry owes in `(now, now + horizon]`.
pub fn recurring_starts(
    entry: &RecurringWindow,
    now: DateTime<Utc>,
    horizon: std::time::Duration,
) -> Result<Vec<DateTime<Utc>>, Invalid> {
    let schedule = entry.schedule("cron")?;
    let mut starts = crate::domain::maintenance::occurrences(
        &schedule,
        &entry.time_zone,
        now,
        now + to_chrono(horizon),
    );
    // A window every few minutes is a misconfiguration, not maintenance: bound the work.
    starts.truncate(MAX_RECURRING);
    Ok(starts)
}

/// The window a recurring entry gives for one start.
pub fn recurring_window(entry: &RecurringWindow, start: DateTime<Utc>) -> ScheduleWindow {
    ScheduleWindow {
        title: entry.title.clone(),
        description: entry.description.clone(),
        components: entry.components.clone(),
        starts_at: start,
        ends_at: start + to_chrono(entry.duration),
        message: None,
        owner: None,
    }
}

/// The public link to a window (it is an incident page).
pub fn window_url(env: &Env, id: i64) -> String {
    incident_url(&env.config, id)
}
