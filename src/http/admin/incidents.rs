//! Declare, show, update, revise the ETA, resolve; preview what each channel will publish;
//! the calibration figures; "retry now" for dead deliveries.
//!
//! Forms carry the incident's version: a form posted after someone else changed the incident is
//! refused (409) with their update shown and the operator's words kept.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::session::Signed;
use super::{base, problem, render, see_other};
use crate::app::App;
use crate::commands::review::{review, Draft as ReviewDraft};
use crate::commands::{self, CommandError, Declare, PostUpdate, Resolve};
use crate::domain::estimates::{self, Estimates};
use crate::domain::honesty::Warning;
use crate::domain::schedule::next_update_after;
use crate::domain::{
    parse_duration, to_chrono, ComponentStatus, EtaInput, Impact, IncidentStatus, Invalid,
};
use crate::render::pages;
use crate::store::incidents::{self, Incident};
use crate::store::{deliveries, history, updates, StoreError};

const IMPACTS: &[&str] = &["minor", "major", "critical", "none"];
const STATUSES: &[&str] = &["investigating", "identified", "monitoring"];
const COMPONENT_STATUSES: &[&str] = &[
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
    "operational",
];
/// Resolved incidents read for the calibration figures.
const HISTORY: i64 = 500;

/// A console form as posted (fields absent from a form are empty).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Draft {
    pub title: String,
    pub impact: String,
    pub status: String,
    pub message: String,
    /// Component id → status (empty: not affected / unchanged).
    pub components: BTreeMap<String, String>,
    /// `in`, `at`, `unknown` (declare) or `keep` (update).
    pub eta_mode: String,
    pub eta_in: String,
    pub eta_at: String,
    pub eta_reason: String,
    pub next_update_in: String,
    pub version: Option<i64>,
    pub action: String,
    pub incident_id: Option<i64>,
    pub resolve: bool,
}

impl Draft {
    pub fn from_fields(fields: &[(String, String)]) -> Self {
        let mut d = Draft::default();
        for (k, v) in fields {
            match k.as_str() {
                "title" => d.title = v.clone(),
                "impact" => d.impact = v.clone(),
                "status" => d.status = v.clone(),
                "message" => d.message = v.clone(),
                "eta_mode" => d.eta_mode = v.clone(),
                "eta_in" => d.eta_in = v.clone(),
                "eta_at" => d.eta_at = v.clone(),
                "eta_reason" => d.eta_reason = v.clone(),
                "next_update_in" => d.next_update_in = v.clone(),
                "version" => d.version = v.trim().parse().ok(),
                "incident_id" => d.incident_id = v.trim().parse().ok(),
                "action" => d.action = v.clone(),
                "resolve" => d.resolve = v == "1",
                other => {
                    if let Some(id) = other.strip_prefix("component.") {
                        d.components.insert(id.to_string(), v.trim().to_string());
                    }
                }
            }
        }
        d
    }

    fn impact(&self) -> Result<Option<Impact>, Invalid> {
        let s = self.impact.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| Invalid::new("impact", format!("expected one of: {}", IMPACTS.join(", "))))
    }

    fn status(&self) -> Result<Option<IncidentStatus>, Invalid> {
        let s = self.status.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(|_| {
            Invalid::new(
                "status",
                format!("expected one of: {}", STATUSES.join(", ")),
            )
        })
    }

    fn components(&self) -> Result<Option<BTreeMap<String, ComponentStatus>>, Invalid> {
        let mut out = BTreeMap::new();
        for (id, s) in &self.components {
            if s.is_empty() {
                continue;
            }
            let status: ComponentStatus = s.parse().map_err(|_| {
                Invalid::new(
                    format!("components.{id}"),
                    format!("expected one of: {}", COMPONENT_STATUSES.join(", ")),
                )
            })?;
            out.insert(id.clone(), status);
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// The estimate entered: a duration, a local time in the site's zone, or none.
    fn eta(&self, tz: chrono_tz::Tz) -> Result<Option<EtaInput>, Invalid> {
        match self.eta_mode.as_str() {
            "in" => parse_duration("eta_in", &self.eta_in).map(|d| Some(EtaInput::In(d))),
            "at" => local_time("eta_at", &self.eta_at, tz).map(|t| Some(EtaInput::At(t))),
            _ => Ok(None),
        }
    }

    fn next_update_in(&self) -> Result<Option<Duration>, Invalid> {
        let s = self.next_update_in.trim();
        if s.is_empty() {
            return Ok(None);
        }
        parse_duration("next_update_in", s).map(Some)
    }

    fn reason(&self) -> Option<String> {
        let r = self.eta_reason.trim();
        (!r.is_empty()).then(|| r.to_string())
    }
}

/// A `datetime-local` field's value, read as a local time in the site's zone `tz`.
pub fn local_time(field: &str, raw: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, Invalid> {
    let raw = raw.trim();
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            Invalid::new(
                field,
                format!(
                    "`{}` is not a date and time like 2026-11-23T14:30",
                    crate::http::api::clip(raw, 40)
                ),
            )
        })?;
    let at = tz
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| Invalid::new(field, "that local time does not exist (a clock change)"))?;
    Ok(at.with_timezone(&Utc))
}

/// The value a `datetime-local` field shows for `t` in the site's zone `tz`.
pub fn local_input(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

/// One delivery as the console shows it; an email delivery says how many subscribers it
/// reached.
pub async fn delivery_view(
    app: &App,
    conn: &mut crate::store::Conn,
    d: &deliveries::Delivery,
    now: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let reach = match app.config.email_channel() {
        Some((email_id, _)) if email_id == d.channel => {
            Some(crate::store::subscribers::reach(conn, d.id).await?)
        }
        _ => None,
    };
    Ok(json!({
        "id": d.id, "channel": d.channel, "state": d.state, "attempts": d.attempts,
        "delivered": d.delivered_at.map(|t| pages::time(t, now, app.config.site.time_zone)),
        "remote_url": crate::http::security::safe_link(d.remote_url.as_deref()), "error": d.last_error,
        "dead": d.state == crate::domain::DeliveryState::Dead,
        "reach": reach,
    }))
}

/// An incident's or window's updates, newest first, each with its deliveries.
pub async fn updates_view(
    app: &App,
    conn: &mut crate::store::Conn,
    ups: &[updates::Update],
    dels: &[deliveries::Delivery],
    now: DateTime<Utc>,
) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::new();
    for u in ups.iter().rev() {
        let mut mine = Vec::new();
        for d in dels.iter().filter(|d| d.update_id == Some(u.id)) {
            mine.push(delivery_view(app, conn, d, now).await?);
        }
        out.push(json!({
            "id": u.id, "kind": u.kind, "status": u.status, "message": u.message,
            "author": u.author, "at": pages::time(u.created_at, now, app.config.site.time_zone),
            "eta": u.eta_at.map(|t| pages::time(t, now, app.config.site.time_zone)), "deliveries": mine,
        }));
    }
    Ok(out)
}

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

fn form_context(app: &App, draft: &Draft) -> Value {
    let components: Vec<Value> = app
        .config
        .components
        .iter()
        .map(|c| {
            json!({ "id": c.id, "name": c.name,
                    "selected": draft.components.get(&c.id).cloned().unwrap_or_default() })
        })
        .collect();
    json!({
        "draft": draft,
        "components": components,
        "impacts": IMPACTS,
        "statuses": STATUSES,
        "component_statuses": COMPONENT_STATUSES.iter().map(|s| json!({
            "id": s,
            "label": s.parse::<ComponentStatus>().map(pages::component_label).unwrap_or(s),
        })).collect::<Vec<_>>(),
    })
}

/// Every public channel's rendering of the draft, and the figures for its estimate.
/// Every public channel's text, the calibration figures, and the honesty check's warnings.
type Previews = (Vec<Value>, Option<Estimates>, Vec<Warning>);

async fn previews(app: &App, draft: &Draft) -> Result<Previews, StoreError> {
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
            let next_id: (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM incidents")
                .fetch_one(&mut *conn)
                .await?;
            let impact = draft.impact().ok().flatten().unwrap_or(Impact::Minor);
            let cadence = app.config.policies.for_impact(impact).update_every;
            let title = draft.title.trim();
            (
                Incident {
                    id: next_id.0,
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

fn unavailable(app: &App, signed: &Signed, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    problem(app, Some(&signed.operator), &signed.csrf, StatusCode::SERVICE_UNAVAILABLE, "Database unavailable", "The console cannot reach its database right now. Nothing was posted; try again in a moment.")
}

async fn declare_page(
    app: &App,
    signed: &Signed,
    status: StatusCode,
    draft: &Draft,
    error: Option<String>,
    show_preview: bool,
) -> Response {
    let (previews, est, warnings) = match previews(app, draft).await {
        Ok(x) => x,
        Err(e) => return unavailable(app, signed, e),
    };
    let mut ctx = base(app, Some(&signed.operator), &signed.csrf);
    ctx.insert("form".into(), form_context(app, draft));
    ctx.insert("previews".into(), json!(previews));
    ctx.insert("show_preview".into(), json!(show_preview));
    ctx.insert("estimates".into(), json!(est));
    ctx.insert("warnings".into(), json!(warnings));
    ctx.insert("error".into(), json!(error));
    ctx.insert(
        "templates".into(),
        json!(app
            .config
            .console
            .templates
            .iter()
            .map(|t| json!({ "id": t.id, "name": t.name }))
            .collect::<Vec<_>>()),
    );
    render(app, status, "admin/declare.html", ctx)
}

#[derive(Debug, Deserialize)]
pub struct NewQuery {
    template: Option<String>,
}

/// `GET /admin/incidents/new`, optionally `?template=ID` (from `console.templates`).
pub async fn new_form(
    State(app): State<App>,
    signed: Signed,
    query: Result<Query<NewQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let mut draft = Draft {
        impact: "minor".into(),
        status: "investigating".into(),
        eta_mode: "in".into(),
        ..Draft::default()
    };
    let wanted = query.ok().and_then(|Query(q)| q.template);
    if let Some(id) = wanted {
        let Some(t) = app.config.console.templates.iter().find(|t| t.id == id) else {
            let e = format!(
                "There is no template `{}`.",
                crate::http::api::clip(&id, 40)
            );
            return declare_page(&app, &signed, StatusCode::NOT_FOUND, &draft, Some(e), false)
                .await;
        };
        draft.title = t.title.clone();
        draft.impact = t.impact.as_str().into();
        draft.message = t.message.clone();
        draft.components = t
            .components
            .iter()
            .map(|(c, s)| (c.clone(), s.as_str().to_string()))
            .collect();
        match &t.eta_in {
            Some(eta) => draft.eta_in = eta.clone(),
            None => draft.eta_mode = "unknown".into(),
        }
        draft.next_update_in = t.next_update_in.clone().unwrap_or_default();
    }
    declare_page(&app, &signed, StatusCode::OK, &draft, None, false).await
}

fn to_declare(d: &Draft, tz: chrono_tz::Tz, owner: &str) -> Result<Declare, Invalid> {
    Ok(Declare {
        title: d.title.clone(),
        impact: d.impact()?.unwrap_or(Impact::Minor),
        status: d.status()?.unwrap_or(IncidentStatus::Investigating),
        message: d.message.clone(),
        components: d.components()?.unwrap_or_default(),
        eta: d.eta(tz)?,
        next_update_in: d.next_update_in()?,
        owner: Some(owner.to_string()),
    })
}

/// `POST /admin/incidents/new`: `action=preview` shows the preview step (no script needed);
/// `action=declare` declares.
pub async fn declare(
    State(app): State<App>,
    signed: Signed,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let draft = Draft::from_fields(&fields);
    if draft.action != "declare" {
        return declare_page(&app, &signed, StatusCode::OK, &draft, None, true).await;
    }
    let d = match to_declare(&draft, app.config.site.time_zone, &signed.operator.email) {
        Ok(d) => d,
        Err(e) => {
            return declare_page(
                &app,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                &draft,
                Some(form_error(&e)),
                true,
            )
            .await
        }
    };
    let now = app.clock.now();
    let done = async {
        let mut unit = app.begin().await?;
        let id = commands::declare(&app.env(), unit.tx(), &signed.actor(), d, now).await?;
        unit.commit().await?;
        Ok::<_, CommandError>(id)
    }
    .await;
    match done {
        Ok(id) => see_other(&format!("/admin/incidents/{id}")),
        Err(CommandError::Invalid(e)) => {
            declare_page(
                &app,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                &draft,
                Some(form_error(&e)),
                true,
            )
            .await
        }
        Err(e) => unavailable(&app, &signed, e),
    }
}

/// A refused field as the form names it: "Why the estimate changes: ..." rather than the API's
/// `eta_reason`.
pub fn form_error(e: &Invalid) -> String {
    let label = match e.field.as_str() {
        "eta_reason" => "Why the estimate changes",
        "eta_in" => "Fixed in",
        "eta_at" | "eta" => "Fixed at",
        "message" => "Message",
        "title" => "Title",
        "impact" => "Impact",
        "status" => "Status",
        "next_update_in" => "Next update within",
        "version" => "Version",
        other => match other.strip_prefix("components.") {
            Some(_) => "Affected components",
            None => other,
        },
    };
    format!("{label}: {}", e.message)
}

fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|i| *i > 0)
}

/// What the incident page says above its forms.
enum Notice {
    None,
    Error(String),
    /// Someone else changed the incident after this form was loaded.
    Stale,
}

async fn incident_page(
    app: &App,
    signed: &Signed,
    id: i64,
    status: StatusCode,
    notice: Notice,
    draft: Option<&Draft>,
) -> Response {
    let now = app.clock.now();
    let loaded = async {
        let mut conn = app.db.pool().acquire().await?;
        let Some(inc) = incidents::get(&mut conn, id).await? else {
            return Ok(None);
        };
        let comps = incidents::components(&mut conn, id).await?;
        let ups = updates::for_incident(&mut conn, id).await?;
        let dels = deliveries::for_incident(&mut conn, id).await?;
        let revs = incidents::eta_revisions(&mut conn, id).await?;
        let ups = updates_view(app, &mut conn, &ups, &dels, now).await?;
        Ok::<_, StoreError>(Some((inc, comps, ups, revs)))
    }
    .await;
    let (inc, comps, updates_view, revs) = match loaded {
        Ok(Some(x)) => x,
        Ok(None) => {
            return problem(
                app,
                Some(&signed.operator),
                &signed.csrf,
                StatusCode::NOT_FOUND,
                "No such incident",
                "There is no incident with that number.",
            )
        }
        Err(e) => return unavailable(app, signed, e),
    };
    let latest = updates_view.first().cloned();
    let mut form_draft = draft.cloned().unwrap_or_default();
    // A refused form is shown again on the current version, with its words kept.
    form_draft.version = Some(inc.version);
    if form_draft.eta_mode.is_empty() {
        form_draft.eta_mode = "keep".into();
    }
    let mut ctx = base(app, Some(&signed.operator), &signed.csrf);
    ctx.insert("incident".into(), json!({
        "id": inc.id, "title": inc.title, "impact": inc.impact, "status": inc.status,
        "owner": inc.owner, "open": inc.is_open(), "version": inc.version,
        "started": pages::time(inc.started_at, now, app.config.site.time_zone),
        "resolved": inc.resolved_at.map(|t| pages::time(t, now, app.config.site.time_zone)),
        "eta": inc.eta_at.map(|t| pages::time(t, now, app.config.site.time_zone)),
        "eta_passed": inc.eta_at.is_some_and(|t| t <= now) && inc.is_open(),
        "next_update": inc.next_update_at.filter(|_| inc.is_open()).map(|t| pages::time(t, now, app.config.site.time_zone)),
        "update_overdue": inc.is_open() && inc.next_update_at.is_some_and(|t| t <= now),
        "components": comps.iter().map(|(id, s)| json!({
            "id": id, "status": s, "label": pages::component_label(*s),
            "name": app.config.component(id).map(|c| c.name.clone()).unwrap_or_else(|| id.clone()),
        })).collect::<Vec<_>>(),
        "public_url": commands::incident_url(&app.config, inc.id),
    }));
    ctx.insert("updates".into(), json!(updates_view));
    ctx.insert("revisions".into(), json!(revs.iter().map(|r| json!({
        "old": r.old_eta.map(|t| pages::time(t, now, app.config.site.time_zone)), "new": r.new_eta.map(|t| pages::time(t, now, app.config.site.time_zone)),
        "actor": r.actor, "reason": r.reason, "at": pages::time(r.created_at, now, app.config.site.time_zone),
    })).collect::<Vec<_>>()));
    ctx.insert("form".into(), form_context(app, &form_draft));
    let (error, stale) = match notice {
        Notice::None => (None, None),
        Notice::Error(e) => (Some(e), None),
        Notice::Stale => (None, latest),
    };
    ctx.insert("error".into(), json!(error));
    ctx.insert("stale".into(), json!(stale));
    render(app, status, "admin/incident.html", ctx)
}

/// `GET /admin/incidents/{id}`
pub async fn show(State(app): State<App>, signed: Signed, Path(raw): Path<String>) -> Response {
    let Some(id) = parse_id(&raw) else {
        return problem(
            &app,
            Some(&signed.operator),
            &signed.csrf,
            StatusCode::NOT_FOUND,
            "No such incident",
            "There is no incident with that number.",
        );
    };
    incident_page(&app, &signed, id, StatusCode::OK, Notice::None, None).await
}

fn to_update(d: &Draft, tz: chrono_tz::Tz) -> Result<PostUpdate, Invalid> {
    // A later estimate without a reason is refused by the command, which knows the current one.
    let eta = d.eta(tz)?;
    let version = d.version.ok_or_else(|| {
        Invalid::new(
            "version",
            "the form lost the incident's version; reload the page",
        )
    })?;
    Ok(PostUpdate {
        message: d.message.clone(),
        title: None,
        status: d.status()?,
        impact: d.impact()?,
        components: d.components()?,
        eta,
        eta_reason: d.reason(),
        next_update_in: d.next_update_in()?,
        expected_version: Some(version),
    })
}

async fn after_write(
    app: &App,
    signed: &Signed,
    id: i64,
    draft: &Draft,
    done: Result<(), CommandError>,
) -> Response {
    match done {
        Ok(()) => {
            app.changed();
            see_other(&format!("/admin/incidents/{id}"))
        }
        Err(CommandError::Stale { .. }) => {
            incident_page(
                app,
                signed,
                id,
                StatusCode::CONFLICT,
                Notice::Stale,
                Some(draft),
            )
            .await
        }
        Err(CommandError::Invalid(e)) => {
            incident_page(
                app,
                signed,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Notice::Error(form_error(&e)),
                Some(draft),
            )
            .await
        }
        Err(CommandError::Resolved(_)) => {
            incident_page(
                app,
                signed,
                id,
                StatusCode::CONFLICT,
                Notice::Error("This incident is already resolved.".into()),
                Some(draft),
            )
            .await
        }
        Err(CommandError::NotFound(_)) => problem(
            app,
            Some(&signed.operator),
            &signed.csrf,
            StatusCode::NOT_FOUND,
            "No such incident",
            "There is no incident with that number.",
        ),
        Err(e) => unavailable(app, signed, e),
    }
}

/// `POST /admin/incidents/{id}/update`: a public update, optionally a new ETA (with a reason).
pub async fn update(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = parse_id(&raw) else {
        return problem(
            &app,
            Some(&signed.operator),
            &signed.csrf,
            StatusCode::NOT_FOUND,
            "No such incident",
            "There is no incident with that number.",
        );
    };
    let draft = Draft::from_fields(&fields);
    let u = match to_update(&draft, app.config.site.time_zone) {
        Ok(u) => u,
        Err(e) => {
            return incident_page(
                &app,
                &signed,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Notice::Error(form_error(&e)),
                Some(&draft),
            )
            .await
        }
    };
    let now = app.clock.now();
    let done = async {
        let mut tx = app.db.begin_write().await?;
        commands::post_update(&app.env(), &mut tx, &signed.actor(), id, u, now).await?;
        tx.commit().await?;
        Ok::<_, CommandError>(())
    }
    .await;
    after_write(&app, &signed, id, &draft, done).await
}

/// `POST /admin/incidents/{id}/resolve`
pub async fn resolve(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = parse_id(&raw) else {
        return problem(
            &app,
            Some(&signed.operator),
            &signed.csrf,
            StatusCode::NOT_FOUND,
            "No such incident",
            "There is no incident with that number.",
        );
    };
    let draft = Draft::from_fields(&fields);
    let Some(version) = draft.version else {
        return incident_page(
            &app,
            &signed,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Notice::Error("version: the form lost the incident's version; reload the page".into()),
            Some(&draft),
        )
        .await;
    };
    let r = Resolve {
        message: draft.message.clone(),
        expected_version: Some(version),
    };
    let now = app.clock.now();
    let done = async {
        let mut tx = app.db.begin_write().await?;
        commands::resolve(&app.env(), &mut tx, &signed.actor(), id, r, now).await?;
        tx.commit().await?;
        Ok::<_, CommandError>(())
    }
    .await;
    after_write(&app, &signed, id, &draft, done).await
}

/// `POST /admin/preview`: the form's fields in, every public channel's text and the figures
/// out, as JSON, for the form's script.
pub async fn preview(
    State(app): State<App>,
    signed: Signed,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let draft = Draft::from_fields(&fields);
    match previews(&app, &draft).await {
        Ok((p, e, w)) => {
            Json(json!({ "previews": p, "estimates": e, "warnings": w })).into_response()
        }
        Err(e) => {
            let _ = &signed;
            tracing::error!(error = %e, "cannot build a console preview");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "database unavailable" })),
            )
                .into_response()
        }
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
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": e.to_string() })),
            )
                .into_response()
        }
    };
    match calibration(&app, impact, &comps, entered).await {
        Ok(e) => Json(e).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot compute estimates");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": "database unavailable" })),
            )
                .into_response()
        }
    }
}

/// `POST /admin/deliveries/{id}/retry`: a dead delivery goes back in its lane, due now.
pub async fn retry(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = parse_id(&raw) else {
        return problem(
            &app,
            Some(&signed.operator),
            &signed.csrf,
            StatusCode::NOT_FOUND,
            "No such delivery",
            "There is no delivery with that number.",
        );
    };
    let back = fields
        .iter()
        .find(|(k, _)| k == "back")
        .map(|(_, v)| v.clone())
        .filter(|b| b.starts_with("/admin") && !b.starts_with("//"))
        .unwrap_or_else(|| "/admin".into());
    let now = app.clock.now();
    let done = async {
        let mut tx = app.db.begin_write().await?;
        let ok = commands::retry_delivery(&mut tx, &signed.actor(), id, now).await?;
        tx.commit().await?;
        Ok::<_, CommandError>(ok)
    }
    .await;
    match done {
        Ok(true) => {
            app.changed();
            see_other(&back)
        }
        Ok(false) => problem(&app, Some(&signed.operator), &signed.csrf, StatusCode::CONFLICT, "Not dead", "That delivery is not dead any more (it was delivered or retried meanwhile), so there is nothing to retry."),
        Err(e) => unavailable(&app, &signed, e),
    }
}
