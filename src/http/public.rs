//! The public side: the status page, incident pages, history, feeds and Statuspage-compatible
//! v2 JSON, all answered from the page cache. These routes carry no per-request middleware:
//! they are what everyone refreshes during an outage.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use std::sync::Arc;

use crate::app::App;
use crate::http::error::ApiError;
use crate::status_page::cache::Asset;
use crate::status_page::{pages, snapshot};
use crate::store::incidents;

pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(cached))
        .route("/feed.atom", get(cached))
        .route("/feed.rss", get(cached))
        .route("/maintenance.ics", get(cached))
        .route("/api/v2/{*path}", get(v2).layer(v2_cors()))
        .route("/incidents/{id}", get(incident))
        .route("/history", get(history))
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

/// The pages' scripts, as files (the Content-Security-Policy allows no inline script), and the
/// default mark (favicon and logo): name, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "local-time.js",
        JS,
        include_str!("../../templates/assets/local-time.js"),
    ),
    (
        "countdown.js",
        JS,
        include_str!("../../templates/assets/countdown.js"),
    ),
    (
        "preview.js",
        JS,
        include_str!("../../templates/assets/preview.js"),
    ),
    (
        "mark.svg",
        "image/svg+xml",
        include_str!("../../templates/assets/mark.svg"),
    ),
    (
        "live.js",
        JS,
        include_str!("../../templates/assets/live.js"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";

async fn asset(State(app): State<App>, Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=3600"),
                ),
            ],
            *body,
        )
            .into_response(),
        None => not_found_page(&app, "This page does not exist."),
    }
}

/// Renders (and compresses) a document on a blocking thread, a few at a time, so the async
/// threads stay free to answer from the cache.
async fn render_blocking<F>(app: &App, render: F) -> anyhow::Result<Asset>
where
    F: FnOnce() -> anyhow::Result<Asset> + Send + 'static,
{
    let _slot = app
        .pages
        .render_slots
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("render slots closed: {e}"))?;
    tokio::task::spawn_blocking(render).await?
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
    let rendered = async {
        let mut conn = app.db.pool().acquire().await?;
        let Some(inc) = incidents::get(&mut conn, id).await? else {
            return Ok::<_, anyhow::Error>(None);
        };
        let story = snapshot::story(&mut conn, &app.config, inc).await?;
        drop(conn);
        let (config, renderer, now) = (app.config.clone(), app.renderer.clone(), app.clock.now());
        let asset = render_blocking(&app, move || {
            Ok(pages::incident_page(&story, &config, &renderer, now, None)?)
        })
        .await?;
        Ok(Some(asset))
    }
    .await;
    match rendered {
        Ok(Some(asset)) => {
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

/// `2026-11`: four digits, a dash, two digits, and a real month.
fn parse_month(raw: &str) -> Option<NaiveDate> {
    let b = raw.as_bytes();
    let shape = b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit);
    if !shape {
        return None;
    }
    NaiveDate::from_ymd_opt(raw[..4].parse().ok()?, raw[5..].parse().ok()?, 1)
}

/// Past incidents by month: `/history?month=2026-11` (default: this month). Only months from
/// the first incident's to this one exist; each is rendered once per change and kept.
async fn history(
    State(app): State<App>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let now = app.clock.now();
    let this_month = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).expect("a month");
    let month = match query.map(|q| q.0.month) {
        Ok(None) => Some(this_month),
        Ok(Some(m)) => parse_month(m.trim()),
        Err(_) => None,
    };
    let Some(month) = month else {
        return page(
            &app,
            StatusCode::BAD_REQUEST,
            "No such month",
            "The month parameter must look like ?month=2026-11.",
        );
    };
    let current = app.pages.current();
    let revision = current.snapshot.revision;
    let first = match app.pages.first_incident(revision) {
        Some(f) => f,
        None => {
            let looked_up = async {
                let mut conn = app.db.pool().acquire().await?;
                Ok::<_, anyhow::Error>(incidents::first_started(&mut conn).await?)
            }
            .await;
            match looked_up {
                Ok(f) => {
                    app.pages.keep_first_incident(revision, f);
                    f
                }
                Err(e) => return unavailable_page(&app, &e),
            }
        }
    };
    let first_month = first
        .map(|f| NaiveDate::from_ymd_opt(f.year(), f.month(), 1).expect("a month"))
        .unwrap_or(this_month)
        .min(this_month);
    if month > this_month {
        return page(
            &app,
            StatusCode::BAD_REQUEST,
            "No such month",
            "Ask for a month no later than this one, like ?month=2026-11.",
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
    let key = format!("history:{month}");
    if let Some(asset) = app.pages.on_demand(revision, &key) {
        return asset.respond(&headers);
    }
    let rendered = async {
        let from = month.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        let to = month
            .checked_add_months(chrono::Months::new(1))
            .expect("in range")
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc();
        let list = {
            let mut conn = app.db.pool().acquire().await?;
            incidents::started_between(&mut conn, from, to).await?
        };
        let (config, renderer) = (app.config.clone(), app.renderer.clone());
        render_blocking(&app, move || {
            Ok(pages::history_page(
                month, &list, first, &config, &renderer, now,
            )?)
        })
        .await
    }
    .await;
    match rendered {
        Ok(asset) => {
            let asset = Arc::new(asset);
            app.pages.keep(revision, key, asset.clone());
            asset.respond(&headers)
        }
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
