//! `/admin/audit`: who did what and when, from the console, the API and the scheduler alike.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::error::ConsoleError;
use super::session::Signed;
use super::{base, render};
use crate::app::App;
use crate::render::views;
use crate::store::audit;

/// How many entries the page shows.
const SHOWN: i64 = 300;

pub async fn page(State(app): State<App>, signed: Signed) -> Result<Response, ConsoleError> {
    let entries = async {
        let mut conn = app.db.pool().acquire().await?;
        audit::recent(&mut conn, SHOWN).await
    }
    .await;
    let entries = entries?;
    let now = app.clock.now();
    let rows: Vec<_> = entries
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id, "actor": e.actor, "action": e.action, "incident_id": e.incident_id,
                "detail": if e.detail.as_object().is_some_and(|o| o.is_empty()) { String::new() } else { e.detail.to_string() },
                "at": views::time(e.created_at, now, app.config.site.time_zone),
            })
        })
        .collect();
    let mut ctx = base(&app, Some(&signed.operator), &signed.csrf);
    ctx.insert("entries".into(), json!(rows));
    ctx.insert("shown".into(), json!(SHOWN));
    Ok(render(&app, StatusCode::OK, "admin/audit.html", ctx))
}
