//! `GET /api/v1/estimates?impact=major&components=api,web&eta_in=2h`: what history says about
//! an estimate (the figures the console's declare form shows).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use utoipa::IntoParams;

use super::doc::ReadErrors;
use super::json_response;
use crate::app::App;
use crate::domain::estimates::Estimates;
use crate::http::admin::incidents::{calibration, estimates_query};
use crate::http::auth::{scope, Scoped};
use crate::http::error::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EstimatesQuery {
    /// `none`, `minor` (the default), `major` or `critical`.
    impact: Option<String>,
    /// Component ids, comma-separated: figures narrow to incidents touching them when there
    /// are enough.
    components: Option<String>,
    /// The estimate you have in mind (`45m`): the suggestion scales it by how far past
    /// estimates were off.
    eta_in: Option<String>,
}

/// What history says about an estimate
///
/// For past incidents of this impact (and these components, where there are enough): the
/// median and 90th-percentile time to resolve, how far first estimates were off (median actual
/// ÷ estimated), and a calibrated estimate with one sentence saying why.
#[utoipa::path(
    get, path = "/estimates", operation_id = "estimates", tag = "incidents",
    params(EstimatesQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The figures.", body = Estimates),
        ReadErrors,
    )
)]
pub async fn get(
    State(app): State<App>,
    _caller: Scoped<scope::Read>,
    query: Result<Query<EstimatesQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let (impact, components, entered) = estimates_query(
        &app,
        q.impact.as_deref(),
        q.components.as_deref(),
        q.eta_in.as_deref(),
    )
    .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?;
    let figures = calibration(&app, impact, &components, entered).await?;
    let body = serde_json::to_value(figures).map_err(ApiError::from)?;
    Ok(json_response(StatusCode::OK, &body))
}
