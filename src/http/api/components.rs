//! `GET /api/v1/components`: each component's current status, the worst across open incidents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::doc::ErrorBody;
use super::json_response;
use crate::app::App;
use crate::domain::ComponentStatus;
use crate::http::error::ApiError;
use crate::store::incidents;

/// A component customers use, with its status now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub group: Option<String>,
    /// The worst status any open incident gives it; `operational` when none does.
    pub status: ComponentStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentList {
    pub components: Vec<ComponentView>,
}

/// List components
///
/// Every configured component and its status now. Needs no token.
#[utoipa::path(
    get, path = "/components", operation_id = "listComponents", tag = "components",
    responses(
        (status = 200, description = "The components, in config order.", body = ComponentList),
        (status = 503, description = "The database is unavailable.", body = ErrorBody),
    )
)]
pub async fn list(State(app): State<App>) -> Result<Response, ApiError> {
    let mut conn = app.db.pool().acquire().await?;
    let open = incidents::open(&mut conn).await?;
    let mut named = Vec::new();
    for i in &open {
        named.extend(incidents::components(&mut conn, i.id).await?);
    }
    let worst = crate::domain::status::current(named);
    let components = app
        .config
        .components
        .iter()
        .map(|c| ComponentView {
            id: c.id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            group: c.group.clone(),
            status: worst
                .get(&c.id)
                .copied()
                .unwrap_or(ComponentStatus::Operational),
        })
        .collect();
    let body = serde_json::to_value(ComponentList { components })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, &body))
}
