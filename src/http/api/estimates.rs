//! `GET /api/v1/estimates?impact=major&components=api,web&eta_in=2h`: what history says about
//! an estimate (the figures the console's declare form shows).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::json_response;
use crate::app::App;
use crate::http::admin::incidents::{calibration, estimates_query};
use crate::http::auth::ApiCaller;
use crate::http::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimatesQuery {
    impact: Option<String>,
    components: Option<String>,
    eta_in: Option<String>,
}

pub async fn get(
    State(app): State<App>,
    _caller: ApiCaller,
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
    let body = serde_json::to_value(figures)
        .map_err(|e| ApiError::Internal(format!("cannot encode the estimates: {e}")))?;
    Ok(json_response(StatusCode::OK, &body))
}
