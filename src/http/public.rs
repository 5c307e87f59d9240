//! The public side: the status page, incident pages, history, feeds and Statuspage-compatible
//! v2 JSON, all answered from the page cache. These routes carry no per-request middleware:
//! they are what everyone refreshes during an outage.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use serde::Deserialize;
use std::sync::Arc;

use crate::app::App;
use crate::http::error::ApiError;
use crate::status_page::on_demand::{self, ASSETS};
use crate::status_page::pages;

pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(cached))
        // The front page's object key on a mirror: a CDN that fails over between Candor and a
        // bucket asks both origins for it.
        .route("/index.html", get(front_page))
        .route("/feed.atom", get(cached))
        .route("/feed.rss", get(cached))
        .route("/maintenance.ics", get(cached))
        .route("/api/v2/{*path}", get(v2).layer(v2_cors()))
        .route("/incidents/{id}", get(incident))
        .route("/history", get(history))
        .route("/history/", get(history))
        .route("/history/{month}", get(history_month))
        .route("/heartbeat.json", get(heartbeat))
        .route("/assets/{name}", get(asset))
        .merge(super::subscribe::public_router())
}

/// A document rendered at the last rebuild.
async fn cached(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    match app.pages.get(uri.path()) {
        Some(asset) => asset.respond(&headers),
        None => not_found_page(&app, "This page does not exist."),
    }
}

async fn front_page(State(app): State<App>, headers: HeaderMap) -> Response {
    match app.pages.get("/") {
        Some(asset) => asset.respond(&headers),
        None => not_found_page(&app, "This page does not exist."),
    }
}

/// Statuspage-compatible JSON. Widgets embedded on customers' own sites fetch it from another
/// origin, so it is readable from any origin, as Statuspage's is (see [`v2_cors`]).
async fn v2(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    match app.pages.get(uri.path()) {
        Some(asset) => asset.respond(&headers),
        None => ApiError::NotFound(format!("nothing at {}", uri.path())).into_response(),
    }
}

/// CORS for the v2 JSON (the Fetch standard's protocol, by tower-http): every answer says
/// `Access-Control-Allow-Origin: *`, and an `OPTIONS` preflight (a widget's `fetch` with a
/// header of its own, `If-None-Match` say) is answered for reading only: GET and HEAD, any
/// request header, no credentials, kept by the browser for a day.
fn v2_cors() -> tower_http::cors::CorsLayer {
    use tower_http::cors::{Any, CorsLayer};
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD])
        .allow_headers(Any)
        .max_age(std::time::Duration::from_secs(24 * 3600))
}

/// The heartbeat a mirror carries (see `src/mirror`): on the live site always now, so the
/// pages' script never calls the live page stale.
async fn heartbeat(State(app): State<App>) -> Response {
    let body = on_demand::heartbeat(app.clock.now(), app.pages.current().snapshot.revision);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(on_demand::HEARTBEAT_CACHE_CONTROL),
            ),
        ],
        body,
    )
        .into_response()
}

async fn asset(State(app): State<App>, Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(on_demand::ASSET_CACHE_CONTROL),
                ),
            ],
            *body,
        )
            .into_response(),
        None => not_found_page(&app, "This page does not exist."),
    }
}

/// An incident page: from the cache for recent incidents, rendered on demand for older ones.
async fn incident(State(app): State<App>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    let Some(id) = raw.parse::<i64>().ok().filter(|i| *i > 0) else {
        return not_found_page(&app, "There is no incident with that number.");
    };
    if let Some(asset) = app.pages.get(&format!("/incidents/{id}")) {
        return asset.respond(&headers);
    }
    let current = app.pages.current();
    // Numbers above the newest incident's do not exist yet: no need to ask the database.
    let snap = &current.snapshot;
    let newest = (snap.recent.iter())
        .chain(&snap.active)
        .chain(&snap.maintenances)
        .map(|s| s.incident.id)
        .max();
    if newest.is_none_or(|n| id > n) {
        return not_found_page(&app, "There is no incident with that number.");
    }
    let key = format!("incident:{id}");
    if let Some(asset) = app.pages.on_demand(current.snapshot.revision, &key) {
        return asset.respond(&headers);
    }
    match app.render_incident(id).await {
        Ok(Some((asset, _))) => {
            let asset = Arc::new(asset);
            app.pages
                .keep(current.snapshot.revision, key, asset.clone());
            asset.respond(&headers)
        }
        Ok(None) => not_found_page(&app, "There is no incident with that number."),
        Err(e) => unavailable_page(&app, &e),
    }
}

#[derive(Deserialize)]
struct HistoryQuery {
    month: Option<String>,
}

/// Past incidents by month: `/history?month=2026-11` (default: this month).
async fn history(
    State(app): State<App>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let month = match query.map(|q| q.0.month) {
        Ok(None) => Some(on_demand::month_of(app.clock.now())),
        Ok(Some(m)) => on_demand::parse_month(m.trim()),
        Err(_) => None,
    };
    history_of(app, month, headers).await
}

/// The same at a path of its own, `/history/2026-11` (what the pages link to: it needs no
/// query string, so a static mirror serves it too).
async fn history_month(
    State(app): State<App>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    history_of(app, on_demand::parse_month(raw.trim()), headers).await
}

/// Only months from the first incident's to this one exist; each is rendered once per change
/// and kept.
async fn history_of(app: App, month: Option<NaiveDate>, headers: HeaderMap) -> Response {
    let now = app.clock.now();
    let this_month = on_demand::month_of(now);
    let Some(month) = month else {
        return page(
            &app,
            StatusCode::BAD_REQUEST,
            "No such month",
            "Name the month like /history/2026-11.",
        );
    };
    let revision = app.pages.current().snapshot.revision;
    let first = match app.first_incident().await {
        Ok(f) => f,
        Err(e) => return unavailable_page(&app, &e),
    };
    let first_month = first
        .map(on_demand::month_of)
        .unwrap_or(this_month)
        .min(this_month);
    if month > this_month {
        return page(
            &app,
            StatusCode::BAD_REQUEST,
            "No such month",
            "Ask for a month no later than this one, like /history/2026-11.",
        );
    }
    if month < first_month {
        return page(
            &app,
            StatusCode::NOT_FOUND,
            "No history for that month",
            &format!(
                "History is kept from {} to {}.",
                first_month.format("%B %Y"),
                this_month.format("%B %Y")
            ),
        );
    }
    match app.history_asset(revision, month, first).await {
        Ok(asset) => asset.respond(&headers),
        Err(e) => unavailable_page(&app, &e),
    }
}

fn page(app: &App, status: StatusCode, title: &str, message: &str) -> Response {
    match pages::error_page(&app.config, &app.renderer, title, message) {
        Ok(body) => (
            status,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Html(body),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "error page template failed");
            (status, message.to_string()).into_response()
        }
    }
}

pub fn not_found_page(app: &App, message: &str) -> Response {
    page(app, StatusCode::NOT_FOUND, "Not found", message)
}

fn unavailable_page(app: &App, e: &anyhow::Error) -> Response {
    tracing::warn!(error = %e, "could not render a page on demand");
    page(
        app,
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "This page cannot be shown right now. The current status is on the home page.",
    )
}
