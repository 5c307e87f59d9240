//! HTTP: the v1 JSON API for incident scripts, health checks, and (in later issues) the public
//! status page and the operator console.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod public;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::App;
use error::ApiError;

pub fn router(app: App) -> Router {
    let limits = &app.config.server;
    let request_id = header::HeaderName::from_static("x-request-id");
    let api = Router::new()
        .nest("/api/v1", api::router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default();
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("http", method = %req.method(), route, request_id = id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    // The public pages go without per-request middleware: they are answered from memory.
    public::router().merge(api).with_state(app)
}

/// Only the health checks: what a worker-only instance serves.
pub fn health_router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(app)
}

async fn not_found(State(app): State<App>, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiError::NotFound(format!("nothing at {}", uri.path())).into_response()
    } else {
        public::not_found_page(&app, "This page does not exist.")
    }
}

/// Alive: the process answers.
async fn healthz() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(json!({ "status": "ok" })),
    )
}

/// Ready: the database answers and its schema is current.
async fn readyz(State(app): State<App>) -> Response {
    let db = tokio::time::timeout(Duration::from_secs(2), app.db.ping()).await;
    let (ok, detail) = match db {
        Ok(Ok(())) => match app.db.migrations_current().await {
            Ok(true) => (true, "ok"),
            _ => (false, "database migrations are not current"),
        },
        Ok(Err(_)) | Err(_) => (false, "database unreachable"),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "status": if ok { "ok" } else { "unavailable" }, "detail": detail })),
    )
        .into_response()
}
