//! HTTP: the public status page and subscription forms, the v1 JSON API for incident scripts
//! (and Alertmanager), the operator console under `/admin`, health checks and metrics.
//!
//! Handlers parse requests and render answers; every write goes through [`crate::commands`] in a
//! [`crate::commands::Unit`] (a test below fails if a handler begins or commits a transaction,
//! wakes the workers or writes SQL itself). Each surface has one error type: [`error::ApiError`]
//! (JSON) and [`admin::error::ConsoleError`] (the console's problem page).

pub mod admin;
pub mod api;
pub mod auth;
pub mod client_addr;
pub mod error;
pub mod extract;
pub mod fast;
pub mod public;
pub mod security;
pub mod server;
pub mod subscribe;
pub mod subscribe_limits;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
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
    let subscribe_limits = Arc::new(match app.config.email_channel() {
        Some((_, email)) => {
            subscribe_limits::SubscribeLimits::new(email.subscribe_per_client_per_minute)
        }
        None => subscribe_limits::SubscribeLimits::new(1),
    });
    let api = Router::new()
        .nest("/api/v1", api::router())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(security::console(admin::router(&app), &app.config))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), track))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(Extension(extract::MaxBodyBytes(limits.max_body_bytes)))
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
    // The public pages go without tracing and request ids: they are answered from memory. Every
    // route has the request timeout and the security headers.
    let router = public::router()
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), track))
        .merge(api)
        .layer(Extension(subscribe_limits))
        .with_state(app.clone())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ));
    security::everywhere(router, &app)
}

/// Only the health checks and metrics: what a worker-only instance serves.
pub fn health_router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

/// `/metrics` in the OpenMetrics text format when the scraper asks for it (Prometheus does), else
/// in the classic Prometheus text format (promtool, curl).
async fn metrics(State(app): State<App>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &app.config.server.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| {
            use sha2::Digest;
            // Compare digests, so the time taken says nothing about the token.
            sha2::Sha256::digest(g.as_bytes()) == sha2::Sha256::digest(token.expose().as_bytes())
        });
        if !ok {
            return ApiError::Unauthorized(
                "send `Authorization: Bearer <server.metrics_token>`".into(),
            )
            .into_response();
        }
    }
    let channels: Vec<String> = (app.config.channels.keys().cloned())
        .chain(app.config.mirrors.targets.iter().map(|t| t.channel()))
        .collect();
    let rendered = async {
        let mut conn = app.db.pool().acquire().await?;
        app.metrics
            .render(&mut conn, &channels, app.clock.now())
            .await
    }
    .await;
    let format = crate::metrics::Format::negotiate(
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
    );
    match rendered {
        Ok(text) => {
            let body = match format {
                crate::metrics::Format::OpenMetrics => text,
                crate::metrics::Format::PrometheusText => crate::metrics::to_prometheus_text(&text),
            };
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(format.content_type()),
                    ),
                    (header::VARY, HeaderValue::from_static("accept")),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Times every request on a matched route (unmatched paths are not labelled, so they cannot
/// blow up the number of series).
async fn track(
    State(app): State<App>,
    matched: axum::extract::MatchedPath,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = req.method().as_str().to_string();
    let started = tokio::time::Instant::now();
    let resp = next.run(req).await;
    app.metrics.http(
        &method,
        matched.as_str(),
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
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

/// Ready: the database answers, takes writes (a one-row heartbeat UPDATE, bounded by a timeout:
/// a full disk still answers SELECT 1) and its schema is current, and no background loop of
/// this instance is down (its last pass failed, or it stopped).
async fn readyz(State(app): State<App>) -> Response {
    let db = tokio::time::timeout(Duration::from_secs(2), app.db.ping()).await;
    let write = crate::store::changes::heartbeat(&app.db, app.clock.now());
    let (ok, detail) = match db {
        Ok(Ok(())) => match app.db.migrations_current().await {
            Ok(true) => match tokio::time::timeout(Duration::from_secs(2), write).await {
                Ok(Ok(())) => match app.loops.down().first() {
                    None => (true, "ok".to_string()),
                    Some((name, why)) => {
                        (false, format!("background loop `{name}` is down: {why}"))
                    }
                },
                Ok(Err(_)) | Err(_) => (false, "database takes no writes".to_string()),
            },
            _ => (false, "database migrations are not current".to_string()),
        },
        Ok(Err(_)) | Err(_) => (false, "database unreachable".to_string()),
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// What `line` does that only `commands` (through a `Unit`) and `store` may do.
    fn bypass(line: &str) -> Option<&'static str> {
        for (needle, what) in [
            ("begin_write", "begins a transaction"),
            ("write_conn", "takes a write connection"),
            (".changed()", "wakes the workers"),
            ("sqlx::query", "runs SQL"),
            ("audit::record", "writes the audit log"),
        ] {
            if line.contains(needle) {
                return Some(what);
            }
        }
        // A unit is committed as `unit.commit()`; any other `.commit()` is a transaction's.
        let mut rest = line;
        while let Some(at) = rest.find(".commit()") {
            let receiver = rest[..at]
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            if receiver != "unit" {
                return Some("commits a transaction");
            }
            rest = &rest[at + 1..];
        }
        None
    }

    /// Handlers (the HTTP surfaces, the command line) parse, call commands in a `Unit` and
    /// answer; they never begin or commit a transaction, wake the workers or write SQL.
    #[test]
    fn no_handler_writes_by_hand() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![root.join("src/main.rs")];
        rust_files(&root.join("src/http"), &mut files);
        rust_files(&root.join("src/cli"), &mut files);
        assert!(files.len() > 20, "found only {files:?}");
        let mut found = Vec::new();
        for path in &files {
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(path).unwrap();
            // Unit tests (at the end of a file) may say what they look for.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                if let Some(what) = bypass(line) {
                    found.push(format!("{name}:{}: {what}: {}", n + 1, line.trim()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "handlers must write through commands::Unit:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn the_check_sees_each_way_around_the_unit() {
        assert_eq!(bypass("let mut unit = app.begin().await?;"), None);
        assert_eq!(bypass("unit.commit().await?;"), None);
        for line in [
            "let mut tx = app.db.begin_write().await?;",
            "tx.commit().await?;",
            "app.changed();",
            "let mut conn = app.db.write_conn().await?;",
            "sqlx::query(\"DELETE FROM subscribers\")",
            "sqlx::query_as(\"SELECT 1\")",
            "audit::record(&mut tx, &actor, \"token.create\", None, &json!({}), now)",
        ] {
            assert!(bypass(line).is_some(), "{line}");
        }
    }
}
