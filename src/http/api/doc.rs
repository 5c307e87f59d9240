//! The OpenAPI 3.1 document of the v1 API, generated from the handlers' `#[utoipa::path]`
//! attributes and the typed views, and served at `/api/v1/openapi.json` (machine) and
//! `/api/v1/docs` (people).

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// The body of every error: a stable machine-readable `code` and a message for people that
/// names what was wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// E.g. `invalid_field`, `stale_version`, `unauthorized`, `not_found`.
    pub code: String,
    pub message: String,
}

/// What a read can answer besides success.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// The query string is not understood; the message names the parameter.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token, or a token that is not valid or has been revoked.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token lacks the scope this operation needs (named in its `security` requirement).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such incident.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The database is unavailable; retry after `Retry-After` seconds.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// What a write can answer besides success.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// The body is not JSON, has an unknown field or a wrong type, or a header is malformed.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token, or a token that is not valid or has been revoked.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token lacks the scope this operation needs (named in its `security` requirement).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such incident.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The incident changed since the given `version` (someone else wrote), or it is resolved.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body is larger than `server.max_body_bytes`.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// A field's value breaks a rule (named in the message), or the `Idempotency-Key` was used
    /// with another request.
    #[response(status = 422)]
    Unprocessable(ErrorBody),
    /// The database is unavailable; retry after `Retry-After` seconds. Safe to retry with the
    /// same `Idempotency-Key`.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `candor token create --name NAME --scope SCOPE`, sent as \
                         `Authorization: Bearer <token>`. Each operation's `security` \
                         requirement names the one scope it needs: `read`, `incidents:write`, \
                         `maintenance:write`, `alerts:write`, `subscribers:read` or \
                         `subscribers:write`; a token without it gets 403.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Candor API",
        description = "Declare, update and resolve incidents with honest estimates. Every write \
                       accepts an `Idempotency-Key` header: a retry with the same key and body \
                       replays the first answer (with `Idempotent-Replayed: true`) and changes \
                       nothing. Writes to an incident take its `version` (or `If-Match`) and are \
                       refused with 409 when someone else wrote in between.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "incidents", description = "Incidents and their updates"),
        (name = "components", description = "What customers use, and its status now"),
        (name = "maintenance", description = "Planned maintenance windows, announced ahead"),
        (name = "subscribers", description = "Email subscribers (double opt-in)"),
        (name = "integrations", description = "Receivers for monitoring systems"),
        (name = "meta", description = "This document and its human-readable page"),
    )
)]
pub struct ApiDoc;

/// The document with every route of `router` under `/api/v1`.
pub fn document(routes: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().nest("/api/v1", routes)
}

/// The OpenAPI document
///
/// This API described in OpenAPI 3.1, for code generators, fuzzers and API explorers.
#[utoipa::path(
    get, path = "/openapi.json", operation_id = "openapiDocument", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json"))
)]
pub async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("public, max-age=300"),
        )],
        axum::Json(&*super::OPENAPI),
    )
        .into_response()
}

/// The API reference for people
///
/// Every operation, its parameters, bodies and answers, as one HTML page.
#[utoipa::path(
    get, path = "/docs", operation_id = "apiReference", tag = "meta",
    responses((status = 200, description = "An HTML page.", content_type = "text/html"))
)]
pub async fn docs_page(
    axum::extract::State(app): axum::extract::State<crate::app::App>,
) -> Result<axum::response::Html<String>, super::ApiError> {
    let doc = serde_json::to_value(&*super::OPENAPI)
        .map_err(|e| super::ApiError::Internal(e.to_string()))?;
    let page = super::docs_page::api_docs_page(&app.config, &app.renderer, &doc)?;
    Ok(axum::response::Html(page))
}
