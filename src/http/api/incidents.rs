//! `/api/v1/incidents`: declare, update, resolve, list and show.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::FutureExt;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::doc::{ReadErrors, WriteErrors};
use super::views::{IncidentDetail, IncidentList, Written};
use super::{expected_version, json_response, views, write, PathId};
use crate::app::App;
use crate::commands::review::{review, Draft};
use crate::commands::{self, Actor, Declare, PostUpdate, Resolve};
use crate::domain::honesty::Warning;
use crate::domain::{parse_duration, ComponentStatus, EtaInput, Impact, IncidentStatus};
use crate::http::auth::{scope, Scoped};
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::store::incidents::{self, StateFilter};

/// A new incident. Give an honest estimate as `eta` (a time) or `eta_in` (a duration), or
/// neither when nobody knows yet; then Candor promises the next update instead.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// What customers see as the headline.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    title: String,
    #[serde(default = "default_impact")]
    #[schema(default = "minor")]
    impact: Impact,
    #[serde(default = "default_status")]
    #[schema(default = "investigating")]
    status: IncidentStatus,
    /// The first public words: what is wrong, in plain language.
    #[schema(min_length = 1, max_length = 5000, pattern = "\\S")]
    message: String,
    /// Affected components (ids from config) and their status.
    #[serde(default)]
    components: BTreeMap<String, ComponentStatus>,
    /// When it will be fixed, RFC 3339 (`2026-11-23T14:30:00Z`), within 30 days.
    #[schema(format = DateTime)]
    eta: Option<String>,
    /// When it will be fixed, as a duration from now (`90m`, `2h`).
    #[schema(example = "2h", pattern = "^ *[0-9]+ *[a-z]+( *[0-9]+ *[a-z]+)* *$")]
    eta_in: Option<String>,
    /// When the next update is promised (`30m`); the impact's policy decides when absent.
    #[schema(example = "30m", pattern = "^ *[0-9]+ *[a-z]+( *[0-9]+ *[a-z]+)* *$")]
    next_update_in: Option<String>,
    /// Who is handling it.
    owner: Option<String>,
}

fn default_impact() -> Impact {
    Impact::Minor
}
fn default_status() -> IncidentStatus {
    IncidentStatus::Investigating
}

/// A public update. Absent fields keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[schema(min_length = 1, max_length = 5000, pattern = "\\S")]
    message: String,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    title: Option<String>,
    status: Option<IncidentStatus>,
    impact: Option<Impact>,
    /// Replaces the affected components and their statuses.
    components: Option<BTreeMap<String, ComponentStatus>>,
    /// A revised estimate, RFC 3339; a later one needs `eta_reason`.
    #[schema(format = DateTime)]
    eta: Option<String>,
    /// A revised estimate as a duration from now.
    #[schema(example = "45m", pattern = "^ *[0-9]+ *[a-z]+( *[0-9]+ *[a-z]+)* *$")]
    eta_in: Option<String>,
    /// Why the estimate moved: required when it moves later, optional when earlier. Kept with
    /// the revision and published with the new estimate on every channel.
    #[schema(min_length = 1, max_length = 1000, pattern = "\\S")]
    eta_reason: Option<String>,
    #[schema(example = "30m", pattern = "^ *[0-9]+ *[a-z]+( *[0-9]+ *[a-z]+)* *$")]
    next_update_in: Option<String>,
    /// The incident's version as last read; the write is refused with 409 if it changed.
    version: Option<i64>,
}

/// The all-clear.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    #[schema(min_length = 1, max_length = 5000, pattern = "\\S")]
    message: String,
    /// The incident's version as last read; the write is refused with 409 if it changed.
    version: Option<i64>,
}

fn next_update_in(raw: Option<&str>) -> Result<Option<std::time::Duration>, ApiError> {
    raw.map(|s| parse_duration("next_update_in", s))
        .transpose()
        .map_err(ApiError::from)
}

/// The incident with the warnings of the check before publishing.
async fn written_body(
    conn: &mut crate::store::Conn,
    app: &App,
    id: i64,
    warnings: Vec<Warning>,
) -> Result<serde_json::Value, ApiError> {
    let incident = views::incident(conn, &app.config, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident with id {id}")))?;
    serde_json::to_value(Written { incident, warnings }).map_err(ApiError::from)
}

async fn incident_body(
    conn: &mut crate::store::Conn,
    app: &App,
    id: i64,
) -> Result<serde_json::Value, ApiError> {
    let detail = views::incident(conn, &app.config, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident with id {id}")))?;
    serde_json::to_value(detail).map_err(ApiError::from)
}

/// Declare an incident
///
/// Writes the incident, its first update and one delivery per channel in one transaction. The
/// answer's `warnings` name words that play down a major or critical incident; they never stop
/// the write.
///
/// Rules the schema cannot express (a request that breaks one gets `422` naming the field):
/// - give `eta` (a time) or `eta_in` (a duration), not both; the estimate must be in the future
///   and within 30 days;
/// - `next_update_in` is between 1m and 24h;
/// - every key of `components` is a component id from `GET /api/v1/components`;
/// - `status` is investigating, identified or monitoring (maintenance statuses belong to
///   windows, and an incident is resolved with `resolveIncident`);
/// - `title` and `message` are not blank after trimming and hold no control characters other
///   than line breaks and tabs.
#[utoipa::path(
    post, path = "/incidents", operation_id = "declareIncident", tag = "incidents",
    request_body = CreateBody,
    params(IdempotencyKey),
    security(("bearer" = ["incidents:write"])),
    responses(
        (status = 201, description = "Declared; `Location` names it.", body = Written,
         headers(("Location" = String), ("ETag" = String))),
        WriteErrors,
    )
)]
pub async fn create(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::IncidentsWrite>,
    headers: HeaderMap,
    body: ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let declare = Declare {
        eta: EtaInput::parse(b.eta.as_deref(), b.eta_in.as_deref())?,
        next_update_in: next_update_in(b.next_update_in.as_deref())?,
        title: b.title,
        impact: b.impact,
        status: b.status,
        message: b.message,
        components: b.components,
        owner: b.owner,
    };
    let actor = Actor::token(&caller.name);
    let env = app.env();
    let now = app.clock.now();
    let a = app.clone();
    write(
        &app,
        &caller,
        &headers,
        format!("POST /incidents {}", body.canonical),
        move |conn| {
            async move {
                let draft = Draft {
                    message: &declare.message,
                    impact: Some(declare.impact),
                    ..Draft::default()
                };
                let warnings = review(&env, conn, &draft).await?;
                let id = commands::declare(&env, conn, &actor, declare, now).await?;
                Ok((
                    StatusCode::CREATED,
                    written_body(conn, &a, id, warnings).await?,
                ))
            }
            .boxed()
        },
    )
    .await
}

/// Post an update
///
/// A new public update, optionally revising the estimate, status, impact or components.
///
/// Moving the estimate later needs `eta_reason`: customers read it with the new estimate ("We
/// now expect 15:00 UTC instead of 14:00: the rollback takes longer than a restart."), and
/// without it the update is refused with `422` naming `eta_reason`. An earlier estimate, or a
/// first one, needs no reason. The answer's `warnings` flag words that play down a major or
/// critical incident, an update with no new fact and nearly the previous update's words, and
/// words repeated from an earlier message; they never stop the write.
///
/// Rules the schema cannot express (`422` naming the field unless said otherwise):
/// - give `eta` or `eta_in`, not both; the estimate must be in the future and within 30 days;
/// - `eta_reason` is required when the new estimate is later than the current one;
/// - `next_update_in` is between 1m and 24h;
/// - every key of `components` is a component id from `GET /api/v1/components`;
/// - `status` is never `resolved` (use `resolveIncident`); on a maintenance window that has
///   started only `in_progress` and `verifying` may be set, and a window that has not started
///   is changed with `editMaintenance`;
/// - text fields are not blank and hold no control characters other than line breaks and tabs;
/// - a resolved incident takes no updates (`409`), and `version` or `If-Match` older than the
///   incident's is refused with `409` and the current version.
#[utoipa::path(
    post, path = "/incidents/{id}/updates", operation_id = "postUpdate", tag = "incidents",
    request_body = UpdateBody,
    params(IncidentId, IfMatch, IdempotencyKey),
    security(("bearer" = ["incidents:write"])),
    responses(
        (status = 200, description = "Posted.", body = Written, headers(("ETag" = String))),
        WriteErrors,
    )
)]
pub async fn update(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::IncidentsWrite>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let post = PostUpdate {
        eta: EtaInput::parse(b.eta.as_deref(), b.eta_in.as_deref())?,
        next_update_in: next_update_in(b.next_update_in.as_deref())?,
        expected_version: expected_version(&headers, b.version)?,
        message: b.message,
        title: b.title,
        status: b.status,
        impact: b.impact,
        components: b.components,
        eta_reason: b.eta_reason,
    };
    let actor = Actor::token(&caller.name);
    let env = app.env();
    let now = app.clock.now();
    let a = app.clone();
    let request = format!(
        "POST /incidents/{id}/updates {} {:?}",
        body.canonical, post.expected_version
    );
    write(&app, &caller, &headers, request, move |conn| {
        async move {
            let eta_at = post.eta.and_then(|e| e.resolve(now).ok());
            let draft = Draft {
                incident_id: Some(id),
                message: &post.message,
                impact: post.impact,
                status: post.status,
                components: post.components.as_ref(),
                eta_at,
            };
            let warnings = review(&env, conn, &draft).await?;
            commands::post_update(&env, conn, &actor, id, post, now).await?;
            Ok((StatusCode::OK, written_body(conn, &a, id, warnings).await?))
        }
        .boxed()
    })
    .await
}

/// Resolve an incident
///
/// Posts the all-clear and returns the components to operational.
///
/// Refused with `409` when the incident is already resolved or `version`/`If-Match` is older
/// than the incident's, and with `422` when `message` is blank or holds control characters.
#[utoipa::path(
    post, path = "/incidents/{id}/resolve", operation_id = "resolveIncident", tag = "incidents",
    request_body = ResolveBody,
    params(IncidentId, IfMatch, IdempotencyKey),
    security(("bearer" = ["incidents:write"])),
    responses(
        (status = 200, description = "Resolved.", body = IncidentDetail, headers(("ETag" = String))),
        WriteErrors,
    )
)]
pub async fn resolve(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::IncidentsWrite>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiJson<ResolveBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let r = Resolve {
        expected_version: expected_version(&headers, b.version)?,
        message: b.message,
    };
    let actor = Actor::token(&caller.name);
    let env = app.env();
    let now = app.clock.now();
    let a = app.clone();
    let request = format!(
        "POST /incidents/{id}/resolve {} {:?}",
        body.canonical, r.expected_version
    );
    write(&app, &caller, &headers, request, move |conn| {
        async move {
            commands::resolve(&env, conn, &actor, id, r, now).await?;
            Ok((StatusCode::OK, incident_body(conn, &a, id).await?))
        }
        .boxed()
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Which incidents: `open` (the default), `resolved` or `all`.
    #[param(pattern = "^(open|resolved|all)$")]
    state: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// Only incidents with a smaller id: the previous page's `next_before`.
    before: Option<i64>,
}

/// List incidents
///
/// Newest first, a page at a time.
#[utoipa::path(
    get, path = "/incidents", operation_id = "listIncidents", tag = "incidents",
    params(ListQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "A page of incidents.", body = IncidentList),
        ReadErrors,
    )
)]
pub async fn list(
    State(app): State<App>,
    _caller: Scoped<scope::Read>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let filter = super::query_choice(
        q.state.as_deref(),
        "open",
        &[
            ("open", StateFilter::Open),
            ("resolved", StateFilter::Resolved),
            ("all", StateFilter::All),
        ],
    )?;
    let limit = super::page_limit(q.limit)?;
    let mut conn = app.db.pool().acquire().await?;
    let found = incidents::list(&mut conn, filter, limit, q.before).await?;
    let next_before = (found.len() as i64 == limit)
        .then(|| found.last().map(|i| i.id))
        .flatten();
    let list = IncidentList {
        incidents: views::listing(&mut conn, &app.config, &found).await?,
        next_before,
    };
    let body = serde_json::to_value(list).map_err(ApiError::from)?;
    Ok(json_response(StatusCode::OK, &body))
}

/// Show an incident
///
/// With its updates, each update's delivery to every channel, the estimate's revisions and the
/// notices sent to the team.
#[utoipa::path(
    get, path = "/incidents/{id}", operation_id = "showIncident", tag = "incidents",
    params(IncidentId),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The incident.", body = IncidentDetail, headers(("ETag" = String))),
        ReadErrors,
    )
)]
pub async fn show(
    State(app): State<App>,
    _caller: Scoped<scope::Read>,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let mut conn = app.db.pool().acquire().await?;
    let body = incident_body(&mut conn, &app, id).await?;
    Ok(json_response(StatusCode::OK, &body))
}

/// The incident's id, as in its `url` and `Location`.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct IncidentId(i64);

/// Header parameters shared by the writes.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(super) struct IdempotencyKey {
    /// 1-255 visible ASCII characters. A retry with the same key and body replays the first
    /// answer; the same key with another body is refused with 422.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    idempotency_key: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(super) struct IfMatch {
    /// The incident's version as last read (its `ETag`), e.g. `"3"`; must agree with `version`.
    #[param(rename = "If-Match", pattern = "^(W/)?\"?[0-9]+\"?$")]
    if_match: Option<String>,
}
