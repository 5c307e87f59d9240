//! `GET /api/v1/components`: each component's current status, the worst across open incidents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::json_response;
use crate::app::App;
use crate::domain::ComponentStatus;
use crate::http::error::ApiError;

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
/// Every configured component and its status, as the status page shows it (refreshed right
/// after each change, and every `status_page.refresh` for other instances' changes; still
/// answered while the database is down). Needs no token.
#[utoipa::path(
    get, path = "/components", operation_id = "listComponents", tag = "components",
    responses(
        (status = 200, description = "The components, in config order.", body = ComponentList),
    )
)]
pub async fn list(State(app): State<App>) -> Result<Response, ApiError> {
    // From the snapshot the status page is built from: no database read per request, and an
    // answer (the last known state) while the database is down.
    let current = app.pages.current();
    let components = current
        .snapshot
        .components
        .iter()
        .map(|c| ComponentView {
            id: c.id.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            group: c.group.clone(),
            status: c.status,
        })
        .collect();
    let body = serde_json::to_value(ComponentList { components }).map_err(ApiError::from)?;
    Ok(json_response(StatusCode::OK, &body))
}
