//! The declare and update forms' preview: what each public channel would publish, the honesty
//! check's warnings, and the calibration figures for the estimate entered (also served to the
//! API as `GET /api/v1/estimates`).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::forms::{Draft, IMPACTS};
use crate::app::App;
use crate::commands::review::{review, Draft as ReviewDraft};
use crate::commands::{self, CommandError};
use crate::domain::estimates::{self, Estimates};
use crate::domain::honesty::Warning;
use crate::domain::schedule::next_update_after;
use crate::domain::{parse_duration, to_chrono, EtaInput, Impact, IncidentStatus, Invalid};
use crate::http::admin::error::ConsoleError;
use crate::http::admin::session::Signed;
use crate::store::incidents::{self, Incident};
use crate::store::{history, StoreError};

/// Resolved incidents read for the calibration figures.
const HISTORY: i64 = 500;

fn entered_minutes(eta: Option<EtaInput>, now: DateTime<Utc>) -> Option<f64> {
    match eta? {
        EtaInput::In(d) => Some(d.as_secs_f64() / 60.0),
        EtaInput::At(t) => Some((t - now).num_seconds() as f64 / 60.0),
    }
}

/// The calibration figures for this impact and these components.
pub async fn calibration(
    app: &App,
    impact: Impact,
    components: &[String],
    entered_minutes: Option<f64>,
) -> Result<Estimates, StoreError> {
    let mut conn = app.db.pool().acquire().await?;
    let past = history::resolved(&mut conn, impact, HISTORY).await?;
    Ok(estimates::estimate(
        &past,
        impact,
        components,
        entered_minutes,
    ))
}

/// Every public channel's text, the calibration figures, and the honesty check's warnings.
pub type Previews = (Vec<Value>, Option<Estimates>, Vec<Warning>);

/// What the draft would publish on each public channel, with its warnings and figures.
pub async fn previews(app: &App, draft: &Draft) -> Result<Previews, StoreError> {
    let now = app.clock.now();
    let tz = app.config.site.time_zone;
    let mut conn = app.db.pool().acquire().await?;
    let eta = draft.eta(tz).ok().flatten();
    let eta_at = eta.and_then(|e| e.resolve(now).ok());
    let requested = draft.next_update_in().ok().flatten();
    let mut eta_change = None;
    let (incident, components) = match draft.incident_id {
        Some(id) => {
            let Some(mut inc) = incidents::get(&mut conn, id).await? else {
                return Ok((Vec::new(), None, Vec::new()));
            };
            if let (Some(old), Some(new)) = (inc.eta_at, eta_at) {
                eta_change = (old != new).then(|| commands::EtaChange {
                    old,
                    new,
                    reason: draft.reason(),
                });
            }
            let mut comps = incidents::components(&mut conn, id).await?;
            if let Ok(Some(c)) = draft.components() {
                comps.extend(c);
            }
            if let Ok(Some(i)) = draft.impact() {
                inc.impact = i;
            }
            if let Ok(Some(s)) = draft.status() {
                inc.status = s;
            }
            if eta_at.is_some() {
                inc.eta_at = eta_at;
            }
            let cadence = app.config.policies.for_impact(inc.impact).update_every;
            if draft.resolve {
                inc.status = IncidentStatus::Resolved;
                inc.resolved_at = Some(now);
                inc.next_update_at = None;
                comps.clear();
            } else {
                inc.next_update_at = Some(next_update_after(now, requested, cadence));
            }
            (inc, comps)
        }
        None => {
            let next_id = incidents::next_id(&mut conn).await?;
            let impact = draft.impact().ok().flatten().unwrap_or(Impact::Minor);
            let cadence = app.config.policies.for_impact(impact).update_every;
            let title = draft.title.trim();
            (
                Incident {
                    id: next_id,
                    title: if title.is_empty() {
                        "(title)".into()
                    } else {
                        title.to_string()
                    },
                    impact,
                    status: draft
                        .status()
                        .ok()
                        .flatten()
                        .unwrap_or(IncidentStatus::Investigating),
                    eta_at,
                    next_update_at: Some(next_update_after(now, requested, cadence)),
                    owner: None,
                    started_at: now,
                    resolved_at: None,
                    created_at: now,
                    updated_at: now,
                    version: 1,
                    apologised_eta_at: None,
                    reminded_for_at: None,
                    kind: crate::domain::IncidentKind::Incident,
                    description: None,
                    scheduled_for: None,
                    scheduled_until: None,
                    last_notice_at: None,
                    sequence: 0,
                    recurrence_key: None,
                },
                draft.components().ok().flatten().unwrap_or_default(),
            )
        }
    };
    let env = app.env();
    let warnings = if draft.resolve || draft.message.trim().is_empty() {
        Vec::new()
    } else {
        let comps = draft.components().ok().flatten();
        let d = ReviewDraft {
            incident_id: draft.incident_id,
            message: draft.message.trim(),
            impact: draft.impact().ok().flatten(),
            status: draft.status().ok().flatten(),
            components: comps.as_ref(),
            eta_at,
        };
        match review(&env, &mut conn, &d).await {
            Ok(w) => w,
            Err(CommandError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "honesty check failed in a preview");
                Vec::new()
            }
        }
    };
    drop(conn);
    let msg = commands::draft_message(
        &env,
        &incident,
        &components,
        draft.resolve,
        draft.message.trim(),
        eta_change,
        now,
    );
    let mut out = Vec::new();
    for id in app.config.public_channels() {
        if let Some(p) = app.channels.get(id).and_then(|c| c.preview(&msg)) {
            out.push(json!({
                "channel": id, "kind": p.kind, "text": p.text, "length": p.length,
                "limit": p.limit, "over": p.limit.is_some_and(|l| p.length > l),
            }));
        }
    }
    let comp_ids: Vec<String> = components.keys().cloned().collect();
    let est = if draft.resolve {
        None
    } else {
        Some(calibration(app, incident.impact, &comp_ids, entered_minutes(eta, now)).await?)
    };
    Ok((out, est, warnings))
}

/// `POST /admin/preview`: the form's fields in, every public channel's text and the figures
/// out, as JSON, for the form's script.
pub async fn preview(
    State(app): State<App>,
    signed: Signed,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let _ = &signed;
    let draft = Draft::from_fields(&fields);
    match previews(&app, &draft).await {
        Ok((p, e, w)) => {
            Json(json!({ "previews": p, "estimates": e, "warnings": w })).into_response()
        }
        Err(e) => ConsoleError::from(e).into_json(),
    }
}

#[derive(Debug, Deserialize)]
pub struct EstimatesQuery {
    impact: Option<String>,
    components: Option<String>,
    eta_in: Option<String>,
}

/// Parses the estimates query shared by the console and `GET /api/v1/estimates`.
pub fn estimates_query(
    app: &App,
    impact: Option<&str>,
    components: Option<&str>,
    eta_in: Option<&str>,
) -> Result<(Impact, Vec<String>, Option<f64>), Invalid> {
    let impact: Impact = impact
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| Invalid::new("impact", format!("give one of: {}", IMPACTS.join(", "))))?;
    let mut comps = Vec::new();
    for c in components
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        if app.config.component(c).is_none() {
            let known: Vec<&str> = app
                .config
                .components
                .iter()
                .map(|c| c.id.as_str())
                .collect();
            return Err(Invalid::new(
                "components",
                format!(
                    "unknown component `{}`; expected some of: {}",
                    crate::http::api::clip(c, 40),
                    known.join(", ")
                ),
            ));
        }
        comps.push(c.to_string());
    }
    let entered = eta_in
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_duration("eta_in", s))
        .transpose()?
        .map(|d| to_chrono(d).num_seconds() as f64 / 60.0);
    Ok((impact, comps, entered))
}

/// `GET /admin/estimates?impact=major&components=api,web&eta_in=1h`
pub async fn estimates(
    State(app): State<App>,
    signed: Signed,
    Query(q): Query<EstimatesQuery>,
) -> Response {
    let _ = &signed;
    let (impact, comps, entered) = match estimates_query(
        &app,
        q.impact.as_deref(),
        q.components.as_deref(),
        q.eta_in.as_deref(),
    ) {
        Ok(x) => x,
        Err(e) => return ConsoleError::bad_request(e.to_string()).into_json(),
    };
    match calibration(&app, impact, &comps, entered).await {
        Ok(e) => Json(e).into_response(),
        Err(e) => ConsoleError::from(e).into_json(),
    }
}
