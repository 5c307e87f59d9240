//! Maintenance windows in the console: the upcoming and active ones, a form to schedule one
//! (with a check step that shows the peak hours it overlaps), and one window's page with its
//! updates and deliveries and forms to edit, extend, complete, cancel or turn it into an
//! incident. Every write goes through [`crate::commands::maintenance`] with the operator as
//! the actor; forms carry the window's version so a stale one is refused.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::incidents::{local_input, local_time, updates_view};
use super::session::Signed;
use super::{base, problem, render, see_other};
use crate::app::App;
use crate::commands::maintenance::{
    self as cmd, Close, EditWindow, ScheduleWindow, ToIncident, MAX_WINDOW,
};
use crate::commands::CommandError;
use crate::domain::{parse_duration, to_chrono, Impact, IncidentStatus, Invalid};
use crate::render::pages;
use crate::store::incidents::{self, Incident, WindowFilter};
use crate::store::{deliveries, updates, StoreError};

/// How many windows of each kind the list shows.
const LISTED: i64 = 100;
const IMPACTS: &[&str] = &["major", "critical", "minor"];

/// A window form as posted (fields absent from a form are empty).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WindowDraft {
    pub title: String,
    pub description: String,
    pub components: Vec<String>,
    /// True when the form carried the component checkboxes (none ticked is then a choice).
    pub has_components: bool,
    /// Local times in the site's zone, as `datetime-local` gives them.
    pub starts_at: String,
    pub ends_at: String,
    /// `duration` or `end`.
    pub end_mode: String,
    pub duration: String,
    pub extend_by: String,
    pub message: String,
    pub owner: String,
    pub reason: String,
    pub impact: String,
    pub action: String,
    /// The fingerprint of the times and components the operator saw the warnings for.
    pub confirm: String,
    pub version: Option<i64>,
    /// What `confirm` must carry to schedule this draft despite its warnings.
    pub fingerprint: String,
}

impl WindowDraft {
    fn from_fields(fields: &[(String, String)]) -> Self {
        let mut d = WindowDraft::default();
        for (k, v) in fields {
            match k.as_str() {
                "title" => d.title = v.clone(),
                "description" => d.description = v.clone(),
                "component" => d.components.push(v.trim().to_string()),
                "has_components" => d.has_components = true,
                "starts_at" => d.starts_at = v.clone(),
                "ends_at" => d.ends_at = v.clone(),
                "end_mode" => d.end_mode = v.clone(),
                "duration" => d.duration = v.clone(),
                "extend_by" => d.extend_by = v.clone(),
                "message" => d.message = v.clone(),
                "owner" => d.owner = v.clone(),
                "reason" => d.reason = v.clone(),
                "impact" => d.impact = v.clone(),
                "action" => d.action = v.clone(),
                "confirm" => d.confirm = v.clone(),
                "version" => d.version = v.trim().parse().ok(),
                _ => {}
            }
        }
        d.fingerprint = [
            d.starts_at.trim(),
            d.end_mode.trim(),
            d.duration.trim(),
            d.ends_at.trim(),
            &d.components.join(","),
        ]
        .join("|");
        d
    }

    fn start(&self, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, Invalid> {
        local_time("starts_at", &self.starts_at, tz)
    }

    /// The end: a local time, or the start plus a duration.
    fn end(&self, start: DateTime<Utc>, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, Invalid> {
        if self.end_mode == "end" {
            local_time("ends_at", &self.ends_at, tz)
        } else {
            let d = parse_duration("duration", &self.duration)?;
            let d = to_chrono(d);
            if d > MAX_WINDOW {
                return Err(Invalid::new("duration", "a window may last at most 7 days"));
            }
            Ok(start + d)
        }
    }

    fn version(&self) -> Result<i64, Invalid> {
        self.version.ok_or_else(|| {
            Invalid::new(
                "version",
                "the form lost the window's version; reload the page",
            )
        })
    }
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn component_choices(app: &App, chosen: &[String]) -> Vec<Value> {
    app.config
        .components
        .iter()
        .map(|c| json!({ "id": c.id, "name": c.name, "checked": chosen.contains(&c.id) }))
        .collect()
}

fn unavailable(app: &App, signed: &Signed, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    problem(app, Some(&signed.operator), &signed.csrf, StatusCode::SERVICE_UNAVAILABLE, "Database unavailable", "The console cannot reach its database right now. Nothing was posted; try again in a moment.")
}

fn not_found(app: &App, signed: &Signed) -> Response {
    problem(
        app,
        Some(&signed.operator),
        &signed.csrf,
        StatusCode::NOT_FOUND,
        "No such window",
        "There is no maintenance window with that number.",
    )
}

fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|i| *i > 0)
}

fn planned_end(w: &Incident) -> DateTime<Utc> {
    w.eta_at
        .or(w.scheduled_until)
        .unwrap_or(w.scheduled_for.unwrap_or(w.started_at))
}

fn summary(app: &App, w: &Incident, now: DateTime<Utc>) -> Value {
    let start = w.scheduled_for.unwrap_or(w.started_at);
    let end = planned_end(w);
    json!({
        "id": w.id, "title": w.title, "status": w.status, "owner": w.owner,
        "start": pages::time(start, now, app.config.site.time_zone), "end": pages::time(end, now, app.config.site.time_zone),
        "overrun": w.is_open() && w.status != IncidentStatus::Scheduled && end <= now,
        "public_url": cmd::window_url(&app.env(), w.id),
    })
}

/// `GET /admin/maintenance`: upcoming and active windows, and the latest ones.
pub async fn list(State(app): State<App>, signed: Signed) -> Response {
    let loaded = async {
        let mut conn = app.db.pool().acquire().await?;
        let upcoming = incidents::windows(&mut conn, WindowFilter::Upcoming, LISTED).await?;
        let active = incidents::windows(&mut conn, WindowFilter::Active, LISTED).await?;
        let recent = incidents::windows(&mut conn, WindowFilter::All, 20).await?;
        Ok::<_, StoreError>((upcoming, active, recent))
    }
    .await;
    let (upcoming, active, recent) = match loaded {
        Ok(x) => x,
        Err(e) => return unavailable(&app, &signed, e),
    };
    let now = app.clock.now();
    let view = |ws: &[Incident]| ws.iter().map(|w| summary(&app, w, now)).collect::<Vec<_>>();
    let closed: Vec<Incident> = recent.into_iter().filter(|w| !w.is_open()).collect();
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    ctx.insert("upcoming".into(), json!(view(&upcoming)));
    ctx.insert("active".into(), json!(view(&active)));
    ctx.insert("closed".into(), json!(view(&closed)));
    render(&app, StatusCode::OK, "admin/maintenance_list.html", ctx)
}

fn new_page(
    app: &App,
    signed: &Signed,
    status: StatusCode,
    draft: &WindowDraft,
    error: Option<String>,
    warnings: Option<Vec<String>>,
) -> Response {
    let mut ctx = base(app, Some(&signed.operator), &signed.csrf);
    ctx.insert("draft".into(), json!(draft));
    ctx.insert(
        "components".into(),
        json!(component_choices(app, &draft.components)),
    );
    ctx.insert("error".into(), json!(error));
    ctx.insert("warnings".into(), json!(warnings));
    render(app, status, "admin/maintenance_new.html", ctx)
}

/// `GET /admin/maintenance/new`
pub async fn new_form(State(app): State<App>, signed: Signed) -> Response {
    let draft = WindowDraft {
        end_mode: "duration".into(),
        owner: signed.operator.email.clone(),
        ..WindowDraft::default()
    };
    new_page(&app, &signed, StatusCode::OK, &draft, None, None)
}

/// `POST /admin/maintenance/new`: `action=check` shows the peak hours the window overlaps and
/// writes nothing; `action=schedule` schedules it, unless it overlaps peak hours and the
/// operator has not confirmed these times (the "schedule anyway" button carries them).
pub async fn create(
    State(app): State<App>,
    signed: Signed,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let draft = WindowDraft::from_fields(&fields);
    let tz = app.config.site.time_zone;
    let times = draft
        .start(tz)
        .and_then(|s| draft.end(s, tz).map(|e| (s, e)));
    let (starts_at, ends_at) = match times {
        Ok(t) => t,
        Err(e) => {
            return new_page(
                &app,
                &signed,
                StatusCode::UNPROCESSABLE_ENTITY,
                &draft,
                Some(e.to_string()),
                None,
            )
        }
    };
    let env = app.env();
    let warnings = cmd::warnings(&env, &draft.components, starts_at, ends_at);
    if draft.action != "schedule" || (!warnings.is_empty() && draft.confirm != draft.fingerprint) {
        return new_page(&app, &signed, StatusCode::OK, &draft, None, Some(warnings));
    }
    let s = ScheduleWindow {
        title: draft.title.clone(),
        description: opt(&draft.description),
        components: draft.components.clone(),
        starts_at,
        ends_at,
        message: opt(&draft.message),
        owner: opt(&draft.owner),
    };
    let now = app.clock.now();
    let done = async {
        let mut tx = app.db.begin_write().await?;
        let id = cmd::schedule_window(&env, &mut tx, &signed.actor(), s, None, now).await?;
        tx.commit().await?;
        Ok::<_, CommandError>(id)
    }
    .await;
    match done {
        Ok(Some(id)) => {
            app.changed();
            see_other(&format!("/admin/maintenance/{id}"))
        }
        Ok(None) => new_page(
            &app,
            &signed,
            StatusCode::CONFLICT,
            &draft,
            Some("This window already exists.".into()),
            None,
        ),
        Err(CommandError::Invalid(e)) => new_page(
            &app,
            &signed,
            StatusCode::UNPROCESSABLE_ENTITY,
            &draft,
            Some(e.to_string()),
            Some(warnings),
        ),
        Err(e) => unavailable(&app, &signed, e),
    }
}

async fn window_page(
    app: &App,
    signed: &Signed,
    id: i64,
    status: StatusCode,
    error: Option<String>,
    draft: Option<&WindowDraft>,
) -> Response {
    let now = app.clock.now();
    let loaded = async {
        let mut conn = app.db.pool().acquire().await?;
        let Some(w) = incidents::get(&mut conn, id).await? else {
            return Ok(None);
        };
        let comps = incidents::components(&mut conn, id).await?;
        let ups = updates::for_incident(&mut conn, id).await?;
        let dels = deliveries::for_incident(&mut conn, id).await?;
        let ups = updates_view(app, &mut conn, &ups, &dels, now).await?;
        Ok::<_, StoreError>(Some((w, comps, ups)))
    }
    .await;
    let (w, comps, ups) = match loaded {
        Ok(Some(x)) => x,
        Ok(None) => return not_found(app, signed),
        Err(e) => return unavailable(app, signed, e),
    };
    if !w.is_maintenance() {
        // Turned into an incident (or never a window): the incident page is where it lives.
        return see_other(&format!("/admin/incidents/{id}"));
    }
    let tz = app.config.site.time_zone;
    let start = w.scheduled_for.unwrap_or(w.started_at);
    let end = planned_end(&w);
    let comp_ids: Vec<String> = comps.keys().cloned().collect();
    let scheduled = w.status == IncidentStatus::Scheduled;
    let warnings = if scheduled {
        cmd::warnings(&app.env(), &comp_ids, start, end)
    } else {
        Vec::new()
    };
    // A refused form comes back with its words; otherwise the window's own values.
    let form = match draft {
        Some(d) => {
            let mut d = d.clone();
            d.version = Some(w.version);
            d
        }
        None => WindowDraft {
            title: w.title.clone(),
            description: w.description.clone().unwrap_or_default(),
            components: comp_ids.clone(),
            has_components: true,
            starts_at: local_input(start, tz),
            ends_at: local_input(end, tz),
            end_mode: "end".into(),
            impact: "major".into(),
            version: Some(w.version),
            ..WindowDraft::default()
        },
    };
    let mut ctx = base(app, Some(&signed.operator), &signed.csrf);
    let mut window = summary(app, &w, now);
    if let Some(o) = window.as_object_mut() {
        o.insert("description".into(), json!(w.description));
        o.insert("version".into(), json!(w.version));
        o.insert("open".into(), json!(w.is_open()));
        o.insert("scheduled".into(), json!(scheduled));
        o.insert("started".into(), json!(w.is_open() && !scheduled));
        o.insert(
            "components".into(),
            json!(comp_ids
                .iter()
                .map(|c| app
                    .config
                    .component(c)
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| c.clone()))
                .collect::<Vec<_>>()),
        );
    }
    ctx.insert("window".into(), window);
    ctx.insert("updates".into(), json!(ups));
    ctx.insert("form".into(), json!(form));
    ctx.insert(
        "components".into(),
        json!(component_choices(app, &form.components)),
    );
    ctx.insert("impacts".into(), json!(IMPACTS));
    ctx.insert("warnings".into(), json!(warnings));
    ctx.insert("error".into(), json!(error));
    render(app, status, "admin/maintenance.html", ctx)
}

/// `GET /admin/maintenance/{id}`
pub async fn show(State(app): State<App>, signed: Signed, Path(raw): Path<String>) -> Response {
    let Some(id) = parse_id(&raw) else {
        return not_found(&app, &signed);
    };
    window_page(&app, &signed, id, StatusCode::OK, None, None).await
}

/// What a window action does inside its transaction.
enum Action {
    Edit(EditWindow),
    Complete(Close),
    Cancel(Close),
    Incident(ToIncident),
}

async fn act(
    app: &App,
    signed: &Signed,
    id: i64,
    draft: &WindowDraft,
    action: Result<Action, Invalid>,
) -> Response {
    let action = match action {
        Ok(a) => a,
        Err(e) => {
            return window_page(
                app,
                signed,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(e.to_string()),
                Some(draft),
            )
            .await
        }
    };
    let env = app.env();
    let actor = signed.actor();
    let now = app.clock.now();
    let done = async {
        let mut tx = app.db.begin_write().await?;
        match action {
            Action::Edit(e) => cmd::edit_window(&env, &mut tx, &actor, id, e, now).await?,
            Action::Complete(c) => cmd::complete_window(&env, &mut tx, &actor, id, c, now).await?,
            Action::Cancel(c) => cmd::cancel_window(&env, &mut tx, &actor, id, c, now).await?,
            Action::Incident(t) => cmd::to_incident(&env, &mut tx, &actor, id, t, now).await?,
        }
        tx.commit().await?;
        Ok::<_, CommandError>(())
    }
    .await;
    let refused =
        |status, msg: String| window_page(app, signed, id, status, Some(msg), Some(draft));
    match done {
        Ok(()) => {
            app.changed();
            see_other(&format!("/admin/maintenance/{id}"))
        }
        Err(CommandError::Stale { .. }) => {
            refused(
                StatusCode::CONFLICT,
                "Someone else changed this window while you were writing; nothing of yours was posted. Read the page again, then post again if it still applies.".into(),
            )
            .await
        }
        Err(CommandError::Invalid(e)) => refused(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).await,
        Err(CommandError::Resolved(_)) => {
            refused(
                StatusCode::CONFLICT,
                "This window is already over (completed or cancelled).".into(),
            )
            .await
        }
        Err(CommandError::NotFound(_)) => not_found(app, signed),
        Err(e) => unavailable(app, signed, e),
    }
}

/// `POST /admin/maintenance/{id}/edit`: before the start anything may change; after it, the
/// title and description.
pub async fn edit(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = parse_id(&raw) else {
        return not_found(&app, &signed);
    };
    let draft = WindowDraft::from_fields(&fields);
    let tz = app.config.site.time_zone;
    let action = (|| {
        let (starts_at, ends_at) = if draft.starts_at.trim().is_empty() {
            (None, None)
        } else {
            let s = draft.start(tz)?;
            (Some(s), Some(draft.end(s, tz)?))
        };
        Ok(Action::Edit(EditWindow {
            title: Some(draft.title.clone()),
            // An empty description leaves it as it is (as in the API).
            description: opt(&draft.description),
            components: draft.has_components.then(|| draft.components.clone()),
            starts_at,
            ends_at,
            message: opt(&draft.message),
            reason: opt(&draft.reason),
            status: None,
            expected_version: Some(draft.version()?),
        }))
    })();
    act(&app, &signed, id, &draft, action).await
}

/// `POST /admin/maintenance/{id}/extend`: a later end (a local time or `extend_by`), with the
/// reason customers are told.
pub async fn extend(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = parse_id(&raw) else {
        return not_found(&app, &signed);
    };
    let draft = WindowDraft::from_fields(&fields);
    let tz = app.config.site.time_zone;
    let current = async {
        let mut conn = app.db.pool().acquire().await?;
        incidents::get(&mut conn, id).await
    }
    .await;
    let w = match current {
        Ok(Some(w)) if w.is_maintenance() => w,
        Ok(_) => return not_found(&app, &signed),
        Err(e) => return unavailable(&app, &signed, e),
    };
    let action = (|| {
        let reason = opt(&draft.reason).ok_or_else(|| {
            Invalid::new(
                "reason",
                "say why the window needs longer; customers are told",
            )
        })?;
        let ends_at = if opt(&draft.extend_by).is_some() {
            planned_end(&w) + to_chrono(parse_duration("extend_by", &draft.extend_by)?)
        } else {
            local_time("ends_at", &draft.ends_at, tz)?
        };
        Ok(Action::Edit(EditWindow {
            ends_at: Some(ends_at),
            reason: Some(reason),
            message: opt(&draft.message),
            expected_version: Some(draft.version()?),
            ..EditWindow::default()
        }))
    })();
    act(&app, &signed, id, &draft, action).await
}

fn close(draft: &WindowDraft) -> Result<Close, Invalid> {
    Ok(Close {
        message: opt(&draft.message),
        expected_version: Some(draft.version()?),
    })
}

/// `POST /admin/maintenance/{id}/complete`
pub async fn complete(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = parse_id(&raw) else {
        return not_found(&app, &signed);
    };
    let draft = WindowDraft::from_fields(&fields);
    let action = close(&draft).map(Action::Complete);
    act(&app, &signed, id, &draft, action).await
}

/// `POST /admin/maintenance/{id}/cancel` (only before the window starts).
pub async fn cancel(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = parse_id(&raw) else {
        return not_found(&app, &signed);
    };
    let draft = WindowDraft::from_fields(&fields);
    let action = close(&draft).map(Action::Cancel);
    act(&app, &signed, id, &draft, action).await
}

/// `POST /admin/maintenance/{id}/incident`: the window went wrong; it continues as an incident.
pub async fn to_incident(
    State(app): State<App>,
    signed: Signed,
    Path(raw): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let Some(id) = parse_id(&raw) else {
        return not_found(&app, &signed);
    };
    let draft = WindowDraft::from_fields(&fields);
    let action = (|| {
        let impact: Impact = draft.impact.trim().parse().map_err(|_| {
            Invalid::new("impact", format!("expected one of: {}", IMPACTS.join(", ")))
        })?;
        Ok(Action::Incident(ToIncident {
            message: draft.message.clone(),
            impact,
            status: IncidentStatus::Investigating,
            components: None,
            expected_version: Some(draft.version()?),
        }))
    })();
    let resp = act(&app, &signed, id, &draft, action).await;
    if resp.status() == StatusCode::SEE_OTHER {
        return see_other(&format!("/admin/incidents/{id}"));
    }
    resp
}
