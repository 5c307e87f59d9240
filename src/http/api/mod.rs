//! The v1 JSON API for incident scripts.

pub mod components;
pub mod incidents;
pub mod views;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::app::App;
use crate::store::tokens::TokenOwner;
use crate::store::{idempotency, tokens, Conn};

pub fn router() -> Router<App> {
    Router::new()
        .route("/incidents", post(incidents::create).get(incidents::list))
        .route("/incidents/{id}", get(incidents::show))
        .route("/incidents/{id}/updates", post(incidents::update))
        .route("/incidents/{id}/resolve", post(incidents::resolve))
        .route("/components", get(components::list))
        .merge(super::subscribe::api_router())
        .method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// Shortens user input before quoting it back in an error.
pub fn clip(s: &str, max: usize) -> String {
    crate::channels::truncate(s, max)
}

/// Parses a numeric id from the path, answering 404 for anything else.
pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no incident with id `{}`", clip(raw, 40))))
}

/// A JSON response; a body with a `version` gets a matching `ETag`.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    if let Some(v) = body.get("version").and_then(|v| v.as_i64()) {
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{v}\"")) {
            resp.headers_mut().insert(header::ETAG, etag);
        }
    }
    if status == StatusCode::CREATED {
        if let Some(id) = body.get("id").and_then(|v| v.as_i64()) {
            if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/incidents/{id}")) {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
        }
    }
    resp
}

/// The version a write expects, from `If-Match` or the body's `version` (which must agree).
pub fn expected_version(
    headers: &HeaderMap,
    body_version: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    let header = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => {
            let raw = v.to_str().unwrap_or("").trim();
            let bare = raw.trim_start_matches("W/").trim_matches('"');
            Some(bare.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid_if_match",
                    format!(
                        "If-Match must be an incident version such as \"3\" (got `{}`)",
                        clip(raw, 40)
                    ),
                )
            })?)
        }
    };
    match (header, body_version) {
        (Some(h), Some(b)) if h != b => Err(ApiError::bad_request(
            "version_mismatch",
            format!("If-Match says version {h} but the body says {b}"),
        )),
        (h, b) => Ok(h.or(b)),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v.to_str().unwrap_or("").trim();
    let ok = !key.is_empty() && key.len() <= 255 && key.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_string()))
}

/// Runs a write in one transaction with its `Idempotency-Key` bookkeeping: a retry with the same
/// key and body gets the saved response and changes nothing; the same key with another body is
/// refused with 422.
pub async fn write<F>(
    app: &App,
    caller: &TokenOwner,
    headers: &HeaderMap,
    request: String,
    op: F,
) -> Result<Response, ApiError>
where
    F: for<'c> FnOnce(
        &'c mut Conn,
    ) -> futures::future::BoxFuture<
        'c,
        Result<(StatusCode, serde_json::Value), ApiError>,
    >,
{
    let key = idempotency_key(headers)?;
    let fingerprint = hex::encode(Sha256::digest(request.as_bytes()));
    let mut tx = app.db.begin_write().await?;
    if let Some(key) = &key {
        if let Some(saved) = idempotency::lookup(&mut tx, caller.id, key).await? {
            return replay(saved, &fingerprint);
        }
    }
    let (status, body) = op(&mut tx).await?;
    let now = app.clock.now();
    tokens::touch(&mut tx, caller.id, now).await?;
    if let Some(key) = &key {
        let saved = idempotency::Saved {
            request_hash: fingerprint.clone(),
            status: status.as_u16(),
            body: body.to_string(),
        };
        if let Err(e) = idempotency::save(&mut tx, caller.id, key, &saved, now).await {
            if e.is_unique_violation("idempotency_keys") {
                // A concurrent request with this key won; answer as it did.
                drop(tx);
                let mut conn = app.db.pool().acquire().await?;
                if let Some(saved) = idempotency::lookup(&mut conn, caller.id, key).await? {
                    return replay(saved, &fingerprint);
                }
            }
            return Err(e.into());
        }
    }
    tx.commit().await?;
    app.changed();
    Ok(json_response(status, &body))
}

fn replay(saved: idempotency::Saved, fingerprint: &str) -> Result<Response, ApiError> {
    if saved.request_hash != fingerprint {
        return Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request; use a new key",
        ));
    }
    let body: serde_json::Value =
        serde_json::from_str(&saved.body).unwrap_or(serde_json::Value::Null);
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let mut resp = json_response(status, &body);
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(resp)
}
