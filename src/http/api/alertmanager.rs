//! `POST /api/v1/integrations/alertmanager`: Alertmanager's webhook receiver.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::doc::WriteErrors;
use super::json_response;
use crate::app::App;
use crate::commands::alerts::{self, Outcome};
use crate::commands::Actor;
use crate::domain::alerts::Notification;
use crate::http::auth::{scope, Scoped};
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;

/// Receive Alertmanager notifications
///
/// Point an Alertmanager `webhook_config` here (webhook version 4, with a bearer token). A
/// firing group opens one incident (or joins an open one affecting the same components);
/// repeats and other Alertmanager replicas sending the same group change nothing. A resolved
/// group resolves the incident it opened or asks the team to confirm, as
/// `alertmanager.on_resolved` says. Titles, words, impact and components come from
/// `alertmanager` in config.
#[utoipa::path(
    post, path = "/integrations/alertmanager", operation_id = "alertmanagerWebhook",
    tag = "integrations",
    request_body = Notification,
    security(("bearer" = ["alerts:write"])),
    responses(
        (status = 200, description = "What the notification did.", body = Outcome),
        WriteErrors,
    )
)]
pub async fn receive(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::AlertsWrite>,
    body: ApiJson<Notification>,
) -> Result<Response, ApiError> {
    let actor = Actor::Alertmanager(caller.name.clone());
    let env = app.env();
    // Twice at most: a `None` means a racing replica holds the group key; once it has
    // committed, the second pass sees its incident.
    for _ in 0..2 {
        let now = app.clock.now();
        let mut unit = app.begin().await?;
        if let Some(outcome) = alerts::receive(&env, unit.tx(), &actor, &body.value, now).await? {
            unit.commit().await?;
            tracing::info!(
                group_key = %body.value.group_key,
                action = ?outcome.action,
                incident.id = outcome.incident_id,
                "alertmanager notification"
            );
            let json = serde_json::to_value(&outcome).map_err(ApiError::from)?;
            return Ok(json_response(StatusCode::OK, &json));
        }
    }
    Err(ApiError::Unavailable(
        "another request holds this alert group; retry".into(),
    ))
}
