//! `/admin`: open incidents with countdowns to the next promised update and to the ETA, their
//! owners, and the deliveries that failed or died.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::error::{ConsoleError, IncidentId};
use super::session::Signed;
use super::{base, render, see_other};
use crate::app::App;
use crate::commands::{self, CommandError};
use crate::render::views;
use crate::store::{deliveries, incidents};

pub async fn page(State(app): State<App>, signed: Signed) -> Result<Response, ConsoleError> {
    let now = app.clock.now();
    let loaded = async {
        let mut conn = app.db.pool().acquire().await?;
        let open = incidents::open(&mut conn).await?;
        let mut rows = Vec::new();
        for i in open {
            let comps = incidents::components(&mut conn, i.id).await?;
            rows.push(json!({
                "id": i.id, "title": i.title, "impact": i.impact, "status": i.status,
                "owner": i.owner, "mine": i.owner.as_deref() == Some(signed.operator.email.as_str()),
                "started": views::time(i.started_at, now, app.config.site.time_zone),
                "eta": i.eta_at.map(|t| views::time(t, now, app.config.site.time_zone)),
                "eta_passed": i.eta_at.is_some_and(|t| t <= now),
                "next_update": i.next_update_at.map(|t| views::time(t, now, app.config.site.time_zone)),
                "update_overdue": i.next_update_at.is_some_and(|t| t <= now),
                "components": comps.iter().map(|(id, s)| json!({
                    "name": app.config.component_name(id),
                    "status": s, "label": views::component_label(*s),
                })).collect::<Vec<_>>(),
            }));
        }
        let troubled = deliveries::troubled(&mut conn, 25).await?;
        Ok::<_, crate::store::StoreError>((rows, troubled))
    }
    .await;
    let (rows, troubled) = loaded?;
    let troubled: Vec<_> = troubled
        .into_iter()
        .map(|(incident_id, d)| {
            json!({
                "id": d.id, "incident_id": incident_id, "channel": d.channel, "state": d.state,
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
    Ok(see_other(&format!("/admin/incidents/{id}")))
}
