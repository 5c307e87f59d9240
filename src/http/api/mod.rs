//! The v1 JSON API for incident scripts.

pub mod alertmanager;
pub mod components;
pub mod corrections;
pub mod doc;
mod docs_page;
pub mod estimates;
pub mod incidents;
mod maintenance_types;
pub mod maintenances;
pub mod record;
pub mod views;

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
pub use super::extract::PathId;
use super::subscribe;
use crate::app::App;
use crate::store::tokens::TokenOwner;
use crate::store::{idempotency, tokens, Conn};

/// Every v1 route, each registered through `routes!` so that it is in the OpenAPI document:
/// a handler without `#[utoipa::path]` does not compile here, and `tests` below fail if a
/// route is added any other way.
fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(incidents::create, incidents::list))
        .routes(routes!(incidents::show))
        .routes(routes!(incidents::update))
        .routes(routes!(incidents::resolve))
        .routes(routes!(corrections::create))
        .routes(routes!(components::list))
        .routes(routes!(estimates::get))
        .routes(routes!(record::get))
        .routes(routes!(alertmanager::receive))
        .routes(routes!(subscribe::subscribe_api, subscribe::list))
        .routes(routes!(subscribe::counts))
        .routes(routes!(subscribe::remove))
        .routes(routes!(subscribe::resend))
        .routes(routes!(subscribe::reach))
        .routes(routes!(maintenances::create, maintenances::list))
        .routes(routes!(maintenances::show, maintenances::edit))
        .routes(routes!(maintenances::extend))
        .routes(routes!(maintenances::complete))
        .routes(routes!(maintenances::cancel))
        .routes(routes!(maintenances::to_incident))
        .routes(routes!(doc::openapi_json))
        .routes(routes!(doc::docs_page))
}

/// The OpenAPI document of the v1 API, with paths as served (under `/api/v1`).
pub static OPENAPI: LazyLock<utoipa::openapi::OpenApi> =
    LazyLock::new(|| doc::document(routes().split_for_parts().1));

/// The v1 router, to be nested under `/api/v1`.
pub fn router() -> Router<App> {
    let (router, _) = routes().split_for_parts();
    router.method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}

/// Shortens user input before quoting it back in an error.
pub fn clip(s: &str, max: usize) -> String {
    crate::channels::truncate(s, max)
}

/// Reads a `state` query parameter: one of `choices` by name, `default` when absent.
pub fn query_choice<T: Copy>(
    raw: Option<&str>,
    default: &str,
    choices: &[(&str, T)],
) -> Result<T, ApiError> {
    let given = raw.unwrap_or(default);
    choices
        .iter()
        .find(|(name, _)| *name == given)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            ApiError::bad_request(
                "invalid_query",
                format!(
                    "state: `{}` is not one of {}",
                    clip(given, 40),
                    names.join(", ")
                ),
            )
        })
}

/// Reads a `limit` query parameter: 1 to 200, 50 when absent.
pub fn page_limit(raw: Option<i64>) -> Result<i64, ApiError> {
    let limit = raw.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: must be between 1 and 200",
        ));
    }
    Ok(limit)
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

/// Runs a write in one [`crate::commands::Unit`] with its `Idempotency-Key` bookkeeping and the
/// token's last use: a retry with the same key and body gets the saved response and changes
/// nothing; the same key with another body is refused with 422.
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
    let mut unit = app.begin().await?;
    if let Some(key) = &key {
        if let Some(saved) = idempotency::lookup(unit.tx(), caller.id, key).await? {
            return replay(saved, &fingerprint);
        }
    }
    let (status, body) = op(unit.tx()).await?;
    let now = app.clock.now();
    tokens::touch(unit.tx(), caller.id, now).await?;
    if let Some(key) = &key {
        let saved = idempotency::Saved {
            request_hash: fingerprint.clone(),
            status: status.as_u16(),
            body: body.to_string(),
        };
        if let Err(e) = idempotency::save(unit.tx(), caller.id, key, &saved, now).await {
            if e.is_unique_violation("idempotency_keys") {
                // A concurrent request with this key won; answer as it did.
                drop(unit);
                let mut conn = app.db.pool().acquire().await?;
                if let Some(saved) = idempotency::lookup(&mut conn, caller.id, key).await? {
                    return replay(saved, &fingerprint);
                }
            }
            return Err(e.into());
        }
    }
    unit.commit().await?;
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

#[cfg(test)]
mod tests {
    #[test]
    fn list_parameters_name_what_was_wrong() {
        let choices = [("open", 1), ("resolved", 2), ("all", 3)];
        assert_eq!(super::query_choice(None, "open", &choices).unwrap(), 1);
        assert_eq!(
            super::query_choice(Some("all"), "open", &choices).unwrap(),
            3
        );
        let e = super::query_choice(Some("closed"), "open", &choices).unwrap_err();
        assert_eq!(
            e.to_string(),
            "state: `closed` is not one of open, resolved, all"
        );
        assert_eq!(super::page_limit(None).unwrap(), 50);
        assert_eq!(super::page_limit(Some(200)).unwrap(), 200);
        for bad in [0, 201, -1] {
            assert_eq!(
                super::page_limit(Some(bad)).unwrap_err().to_string(),
                "limit: must be between 1 and 200"
            );
        }
    }

    /// A route added with plain `.route(...)` would be served but missing from the OpenAPI
    /// document; every v1 route must go through `routes!` in [`super::routes`].
    /// utoipa names a schema after its Rust type, so two request types both called `CreateBody`
    /// became one schema in the document and the declare call pointed at the maintenance body.
    #[test]
    fn no_two_schema_types_share_a_name() {
        let mut seen = std::collections::BTreeMap::<String, String>::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let mut derives_schema = false;
                for line in text.lines().map(str::trim) {
                    if line.starts_with("#[derive(") && line.contains("ToSchema") {
                        derives_schema = true;
                        continue;
                    }
                    if !derives_schema || line.starts_with("#[") || line.starts_with("///") {
                        continue;
                    }
                    let words: Vec<&str> = line.split_whitespace().collect();
                    if let Some(at) = words.iter().position(|w| *w == "struct" || *w == "enum") {
                        let name = words[at + 1]
                            .trim_end_matches(['{', ';', '('])
                            .split('<')
                            .next()
                            .unwrap()
                            .to_string();
                        let here = path.display().to_string();
                        if let Some(first) = seen.insert(name.clone(), here.clone()) {
                            panic!("two schema types named `{name}`: {first} and {here}");
                        }
                    }
                    derives_schema = false;
                }
            }
        }
        assert!(seen.len() > 10, "found only {seen:?}");
    }

    #[test]
    fn every_api_route_is_registered_through_the_openapi_router() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/api");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code: String = text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .collect::<Vec<_>>()
                    .join("\n");
                let bypasses = [".route", ".route_service", ".nest_service", ".merge"]
                    .map(|b| format!("{b}("));
                assert!(
                    !bypasses.iter().any(|b| code.contains(b)),
                    "{} adds a route outside `routes!`, so it would be missing from openapi.json",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 4);
    }
}
