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
use crate::render::{pages, snapshot};
use crate::store::incidents;

pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(cached))
        .route("/feed.atom", get(cached))
        .route("/feed.rss", get(cached))
        .route("/maintenance.ics", get(cached))
        .route("/api/v2/{*path}", get(v2))
        .route("/incidents/{id}", get(incident))
        .route("/history", get(history))
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
/// origin, so it is readable from any origin, as Statuspage's is.
async fn v2(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    let mut resp = match app.pages.get(uri.path()) {
        Some(asset) => asset.respond(&headers),
        None => ApiError::NotFound(format!("nothing at {}", uri.path())).into_response(),
    };
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
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
        Ok(Some(pages::incident_page(
            &story,
            &app.config,
            &app.renderer,
            app.clock.now(),
            None,
        )?))
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

/// Past incidents by month: `/history?month=2026-11` (default: this month).
async fn history(
    State(app): State<App>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let now = app.clock.now();
    let month = match query.map(|q| q.0.month) {
        Ok(None) => NaiveDate::from_ymd_opt(now.year(), now.month(), 1),
        Ok(Some(m)) => NaiveDate::parse_from_str(&format!("{}-01", m.trim()), "%Y-%m-%d").ok(),
        Err(_) => None,
    };
    let Some(month) = month.filter(|m| *m <= now.date_naive()) else {
        return page(
            &app,
            StatusCode::BAD_REQUEST,
            "No such month",
            "Ask for a month like ?month=2026-11, no later than this one.",
        );
    };
    let current = app.pages.current();
    let key = format!("history:{month}");
    if let Some(asset) = app.pages.on_demand(current.snapshot.revision, &key) {
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
        let mut conn = app.db.pool().acquire().await?;
        let list = incidents::started_between(&mut conn, from, to).await?;
        let first = incidents::first_started(&mut conn).await?;
        Ok::<_, anyhow::Error>(pages::history_page(
            month,
            &list,
            first,
            &app.config,
            &app.renderer,
            now,
        )?)
    }
    .await;
    match rendered {
        Ok(asset) => {
            let asset = Arc::new(asset);
            app.pages
                .keep(current.snapshot.revision, key, asset.clone());
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
