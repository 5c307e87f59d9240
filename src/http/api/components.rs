//! `GET /api/v1/components`: each component's current status, the worst across open incidents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::json_response;
use crate::app::App;
use crate::domain::ComponentStatus;
use crate::http::error::ApiError;
use crate::store::incidents;

pub async fn list(State(app): State<App>) -> Result<Response, ApiError> {
    let mut conn = app.db.pool().acquire().await?;
    let open = incidents::open(&mut conn).await?;
    let mut named = Vec::new();
    for i in &open {
        named.extend(incidents::components(&mut conn, i.id).await?);
    }
    let worst = crate::domain::status::current(named);
    let components: Vec<_> = app
        .config
        .components
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "description": c.description,
                "group": c.group,
                "status": worst.get(&c.id).copied().unwrap_or(ComponentStatus::Operational),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "components": components }),
    ))
}
