//! `GET /api/v1/record`: the public promise record of the last 90 days, as the status page
//! shows it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::json_response;
use crate::app::App;
use crate::domain::record::Record;
use crate::http::error::ApiError;

/// The promise record
///
/// Over the incidents started in the last 90 days (maintenance windows not counted): how many
/// "next update by" promises were kept, how late the late ones were, how many estimates of the
/// fix were given, met, revised in time and missed, the median error of first estimates, and
/// the median time from the first alert (Alertmanager's `startsAt`) to the first public post.
/// Computed from the stored updates and estimate revisions, never entered by hand; the same
/// figures as the status page and the `record` of `/api/v2/summary.json`. Needs no token.
#[utoipa::path(
    get, path = "/record", operation_id = "promiseRecord", tag = "incidents",
    responses(
        (status = 200, description = "The record.", body = Record),
    )
)]
pub async fn get(State(app): State<App>) -> Result<Response, ApiError> {
    // From the status page's snapshot: no database read per request.
    let current = app.pages.current();
    let body = serde_json::to_value(&current.snapshot.record).map_err(ApiError::from)?;
    Ok(json_response(StatusCode::OK, &body))
}
