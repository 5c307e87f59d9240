//! `/admin`: open incidents, most urgent first ([`crate::domain::urgency`]), with countdowns to
//! the next promised update and to the ETA, their owners, and the deliveries that failed or
//! died. `/admin/live` is the same list as an HTML fragment: the dashboard's script fetches it
//! every second and swaps it in, so an incident declared by a script appears without a
//! reload (without scripts, the page has a "Reload" link).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Value};

use super::error::{ConsoleError, IncidentId};
use super::session::Signed;
use super::{base, flash, render, see_other};
use crate::app::App;
use crate::commands::{self, CommandError};
use crate::domain::urgency;
use crate::render::views;
use crate::store::{deliveries, incidents};

/// The open incidents, most urgent first, as the templates get them.
async fn open_rows(app: &App, signed: &Signed) -> Result<Vec<Value>, crate::store::StoreError> {
    let now = app.clock.now();
    let tz = app.config.site.time_zone;
    let mut conn = app.db.pool().acquire().await?;
    let mut open = incidents::open(&mut conn).await?;
    urgency::most_urgent_first(&mut open, now);
    let waiting_since = now - crate::domain::to_chrono(app.config.inbox.unclaimed_after);
    let waiting = crate::store::inbox::waiting_by_incident(&mut conn, waiting_since).await?;
    let mut rows = Vec::new();
    for i in open {
        let comps = incidents::components(&mut conn, i.id).await?;
        rows.push(json!({
            "id": i.id, "title": i.title, "impact": i.impact, "status": i.status,
            "owner": i.owner, "mine": i.owner.as_deref() == Some(signed.operator.email.as_str()),
            "started": views::time(i.started_at, now, tz),
            "eta": i.eta_at.map(|t| views::time(t, now, tz)),
            "eta_passed": i.eta_at.is_some_and(|t| t <= now),
            "next_update": i.next_update_at.map(|t| views::time(t, now, tz)),
            "update_overdue": i.next_update_at.is_some_and(|t| t <= now),
            "inbox_waiting": waiting.iter().find(|(id, _)| *id == i.id).map_or(0, |(_, n)| *n),
            "components": comps.iter().map(|(id, s)| json!({
                "name": app.config.component_name(id),
                "status": s, "label": views::component_label(*s),
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(rows)
}

pub async fn page(State(app): State<App>, signed: Signed) -> Result<Response, ConsoleError> {
    let now = app.clock.now();
    let rows = open_rows(&app, &signed).await?;
    let troubled = async {
        let mut conn = app.db.pool().acquire().await?;
        deliveries::troubled(&mut conn, 25).await
    }
    .await?;
    let troubled: Vec<_> = troubled
        .into_iter()
        .map(|(incident_id, d)| {
            // What a delivery of no incident is, by its audience.
            let what = match d.audience {
                crate::domain::Audience::Mirror => "Publish to the mirror",
                crate::domain::Audience::Reply => "Answer to a customer",
                _ => "Confirmation mail",
            };
            json!({
                "id": d.id, "incident_id": incident_id, "what": what, "channel": d.channel, "state": d.state,
                "attempts": d.attempts, "error": d.last_error,
                "at": views::time(d.created_at, now, app.config.site.time_zone),
                "next_attempt": d.next_attempt_at.map(|t| views::time(t, now, app.config.site.time_zone)),
                "dead": d.state == crate::domain::DeliveryState::Dead,
            })
        })
        .collect();
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    ctx.insert("incidents".into(), json!(rows));
    ctx.insert("troubled".into(), json!(troubled));
    Ok(render(&app, StatusCode::OK, "admin/dashboard.html", ctx))
}

/// `GET /admin/live`: the open incidents as the dashboard shows them, an HTML fragment.
pub async fn live(State(app): State<App>, signed: Signed) -> Result<Response, ConsoleError> {
    let rows = open_rows(&app, &signed).await?;
    let ctx = json!({ "incidents": rows, "csrf": signed.csrf });
    let body = app
        .renderer
        .render_page("admin/dashboard_list.html", ctx)
        .map_err(ConsoleError::from)?;
    let mut resp = Html(body).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `POST /admin/incidents/{id}/own`
pub async fn take_ownership(
    State(app): State<App>,
    signed: Signed,
    IncidentId(id): IncidentId,
) -> Result<Response, ConsoleError> {
    let now = app.clock.now();
    let mut unit = app.begin().await?;
    let owner = &signed.operator.email;
    match commands::take_ownership(unit.tx(), &signed.actor(), owner, id, now).await {
        Err(CommandError::Resolved(_)) => {
            return Err(ConsoleError::conflict(
                "Not open",
                "That incident is not open (or does not exist), so it cannot be owned.",
            ))
        }
        done => done?,
    }
    unit.commit().await?;
    flash(&signed.session, format!("You now own incident #{id}.")).await;
    Ok(see_other(&format!("/admin/incidents/{id}")))
}
