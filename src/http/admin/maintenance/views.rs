//! What the maintenance templates get: the list of windows, the scheduling form, and one
//! window's page with its updates, deliveries and forms.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::forms::{WindowDraft, IMPACTS};
use crate::app::App;
use crate::commands::maintenance as cmd;
use crate::domain::IncidentStatus;
use crate::http::admin::error::{ConsoleError, Missing};
use crate::http::admin::incidents::{local_input, updates_view};
use crate::http::admin::session::Signed;
use crate::http::admin::{base, render, see_other};
use crate::render::views;
use crate::store::incidents::{self, Incident};
use crate::store::{deliveries, updates, StoreError};

/// The component checkboxes, `chosen` ticked.
pub fn component_choices(app: &App, chosen: &[String]) -> Vec<Value> {
    app.config
        .components
        .iter()
        .map(|c| json!({ "id": c.id, "name": c.name, "checked": chosen.contains(&c.id) }))
        .collect()
}

/// When the window is planned to end (its estimate, else its scheduled end).
pub fn planned_end(w: &Incident) -> DateTime<Utc> {
    w.eta_at
        .or(w.scheduled_until)
        .unwrap_or(w.scheduled_for.unwrap_or(w.started_at))
}

/// A window as the list and its page show it.
pub fn summary(app: &App, w: &Incident, now: DateTime<Utc>) -> Value {
    let start = w.scheduled_for.unwrap_or(w.started_at);
    let end = planned_end(w);
    json!({
        "id": w.id, "title": w.title, "status": w.status, "owner": w.owner,
        "start": views::time(start, now, app.config.site.time_zone), "end": views::time(end, now, app.config.site.time_zone),
        "overrun": w.is_open() && w.status != IncidentStatus::Scheduled && end <= now,
        "public_url": cmd::window_url(&app.env(), w.id),
    })
}

/// The scheduling form, with the peak hours it overlaps once checked.
pub fn new_page(
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

/// One window's page: a refused form comes back with its words, on the current version.
pub async fn window_page(
    app: &App,
    signed: &Signed,
    id: i64,
    status: StatusCode,
    error: Option<String>,
    draft: Option<&WindowDraft>,
) -> Result<Response, ConsoleError> {
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
    let (w, comps, ups) = loaded?.ok_or(ConsoleError::NotFound(Missing::Window))?;
    if !w.is_maintenance() {
        // Turned into an incident (or never a window): the incident page is where it lives.
        return Ok(see_other(&format!("/admin/incidents/{id}")));
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
                .map(|c| app.config.component_name(c))
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
    Ok(render(app, status, "admin/maintenance.html", ctx))
}
