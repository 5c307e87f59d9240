//! `POST /api/v1/incidents/{id}/updates/{update_id}/corrections`: correct a published update.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::FutureExt;
use serde::Deserialize;
use utoipa::ToSchema;

use super::doc::WriteErrors;
use super::views::IncidentDetail;
use super::write;
use crate::app::App;
use crate::commands::{self, Actor, Correct};
use crate::http::auth::{scope, Scoped};
use crate::http::error::ApiError;
use crate::http::extract::{parse_id, ApiJson};

/// A correction. There is no field for a time: a correction is stamped when it is made, and the
/// update keeps the time it was posted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionBody {
    /// The update's words as they should have read.
    #[schema(min_length = 1, max_length = 5000, pattern = "\\S")]
    message: String,
    /// Why, in a sentence customers will read ("we named the wrong region").
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    reason: String,
    /// True when the meaning changed, not just a slip of the pen: Mastodon then gets a reply
    /// besides the edit.
    #[serde(default)]
    meaning_changed: bool,
}

/// Correct a published update
///
/// Never a silent edit: the update keeps its words and time, and the correction (new words and
/// a reason) is shown under it on the status page, in the v2 JSON and in the feeds, recorded
/// in the audit log, and sent to every channel the original went to (Mastodon edits the post,
/// and replies too when `meaning_changed`; Bluesky, X, Slack and Discord reply in the thread;
/// email mails everyone who got the original, in the same thread; webhooks get
/// `event: update.corrected`).
///
/// Refused with `404` when the path names no incident, `422` when the update is not one of the
/// incident's, is a maintenance notice, or `message` is unchanged, and when `message` or
/// `reason` is blank or holds control characters.
#[utoipa::path(
    post, path = "/incidents/{id}/updates/{update_id}/corrections", operation_id = "correctUpdate",
    tag = "incidents",
    request_body = CorrectionBody,
    params(
        ("id" = i64, Path, description = "The incident."),
        ("update_id" = i64, Path, description = "The update to correct, one of the incident's."),
        super::incidents::IdempotencyKey
    ),
    security(("bearer" = ["incidents:write"])),
    responses(
        (status = 201, description = "Corrected: the incident as it now reads.", body = IncidentDetail),
        WriteErrors,
    )
)]
pub async fn create(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::IncidentsWrite>,
    axum::extract::Path((raw_id, raw_update)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
    body: ApiJson<CorrectionBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw_id).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no incident with id `{}`",
            super::clip(&raw_id, 40)
        ))
    })?;
    let update_id = parse_id(&raw_update).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no update with id `{}`",
            super::clip(&raw_update, 40)
        ))
    })?;
    let b = body.value;
    let fix = Correct {
        message: b.message,
        reason: b.reason,
        meaning_changed: b.meaning_changed,
    };
    let actor = Actor::token(&caller.name);
    let env = app.env();
    let now = app.clock.now();
    let a = app.clone();
    let request = format!(
        "POST /incidents/{id}/updates/{update_id}/corrections {}",
        body.canonical
    );
    write(&app, &caller, &headers, request, move |conn| {
        async move {
            commands::correct(&env, conn, &actor, (id, update_id), fix, now).await?;
            let detail = super::views::incident(conn, &a.config, id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no incident with id {id}")))?;
            let body = serde_json::to_value(detail).map_err(ApiError::from)?;
            Ok((StatusCode::CREATED, body))
        }
        .boxed()
    })
    .await
}
