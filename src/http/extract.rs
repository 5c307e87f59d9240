//! Request parsing that fails with clear errors: bodies, paths and query strings. The API's
//! rejections are JSON ([`ApiError`]); the console wraps [`PathId`] in its own ids
//! (`admin::error::IncidentId` and the like), whose rejection is its problem page.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The body limit (`server.max_body_bytes`), a request extension, so a 413 can name it.
#[derive(Clone, Copy)]
pub struct MaxBodyBytes(pub usize);

/// A JSON body, parsed with errors that name the field, plus its canonical form (sorted keys,
/// no whitespace) for idempotency fingerprints.
pub struct ApiJson<T> {
    pub value: T,
    pub canonical: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the body must be JSON: send `Content-Type: application/json` (got `{}`)",
                    super::api::clip(ct, 80)
                )));
            }
        }
        let limit = req.extensions().get::<MaxBodyBytes>().map(|m| m.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(inner)
                if inner.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                ApiError::PayloadTooLarge(match limit {
                    Some(n) => format!(
                        "the request body is larger than {n} bytes, the limit server.max_body_bytes sets"
                    ),
                    None => "the request body is larger than server.max_body_bytes allows".into(),
                })
            }
            other => ApiError::bad_request(
                "unreadable_body",
                format!("could not read the body: {}", other.body_text()),
            ),
        })?;
        parse_json(&bytes)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<ApiJson<T>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body is empty; send a JSON object",
        ));
    }
    let tree: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    if !tree.is_object() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    let canonical = tree.to_string();
    let value = serde_path_to_error::deserialize(tree).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        };
        ApiError::unprocessable("invalid_field", message)
    })?;
    Ok(ApiJson { value, canonical })
}

/// A path's id: a positive integer, else nothing.
pub fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

/// The `{id}` of a path, parsed once: a positive integer, else 404 naming what was given.
///
/// A type of its own rather than `Path<String>` or `Path<i64>`: utoipa infers a parameter from a
/// `Path` argument, and the operations also declare `id` through `IncidentId`, so the document
/// listed `id` twice (once as a string), which OpenAPI forbids.
pub struct PathId(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound("no incident at this path".into()))?;
        parse_id(&raw).map(PathId).ok_or_else(|| {
            ApiError::NotFound(format!(
                "no incident with id `{}`",
                super::api::clip(&raw, 40)
            ))
        })
    }
}
