//! `/api/v1/incidents`: declare, update, resolve, list and show.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::FutureExt;
use serde::Deserialize;
use serde_json::json;

use super::{expected_version, json_response, parse_id, views, write};
use crate::app::App;
use crate::commands::{self, Actor, Declare, PostUpdate, Resolve};
use crate::domain::{parse_duration, ComponentStatus, EtaInput, Impact, IncidentStatus};
use crate::http::auth::ApiCaller;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::store::incidents::{self, StateFilter};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    title: String,
    #[serde(default = "default_impact")]
    impact: Impact,
    #[serde(default = "default_status")]
    status: IncidentStatus,
    message: String,
    #[serde(default)]
    components: BTreeMap<String, ComponentStatus>,
    eta: Option<String>,
    eta_in: Option<String>,
    next_update_in: Option<String>,
    owner: Option<String>,
}

fn default_impact() -> Impact {
    Impact::Minor
}
fn default_status() -> IncidentStatus {
    IncidentStatus::Investigating
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    message: String,
    title: Option<String>,
    status: Option<IncidentStatus>,
    impact: Option<Impact>,
    components: Option<BTreeMap<String, ComponentStatus>>,
    eta: Option<String>,
    eta_in: Option<String>,
    eta_reason: Option<String>,
    next_update_in: Option<String>,
    version: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    message: String,
    version: Option<i64>,
}

fn invalid(e: crate::domain::Invalid) -> ApiError {
    ApiError::unprocessable("invalid_field", e.to_string())
}

fn next_update_in(raw: Option<&str>) -> Result<Option<std::time::Duration>, ApiError> {
    raw.map(|s| parse_duration("next_update_in", s))
        .transpose()
        .map_err(invalid)
}

async fn incident_body(
    conn: &mut crate::store::Conn,
    app: &App,
    id: i64,
) -> Result<serde_json::Value, ApiError> {
    views::incident(conn, &app.config, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident with id {id}")))
}

/// `POST /api/v1/incidents`
pub async fn create(
    State(app): State<App>,
    ApiCaller(caller): ApiCaller,
    headers: HeaderMap,
    body: ApiJson<CreateBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let declare = Declare {
        eta: EtaInput::parse(b.eta.as_deref(), b.eta_in.as_deref()).map_err(invalid)?,
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
                let id = commands::declare(&env, conn, &actor, declare, now).await?;
                Ok((StatusCode::CREATED, incident_body(conn, &a, id).await?))
            }
            .boxed()
        },
    )
    .await
}

/// `POST /api/v1/incidents/{id}/updates`
pub async fn update(
    State(app): State<App>,
    ApiCaller(caller): ApiCaller,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw_id)?;
    let b = body.value;
    let post = PostUpdate {
        eta: EtaInput::parse(b.eta.as_deref(), b.eta_in.as_deref()).map_err(invalid)?,
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
            commands::post_update(&env, conn, &actor, id, post, now).await?;
            Ok((StatusCode::OK, incident_body(conn, &a, id).await?))
        }
        .boxed()
    })
    .await
}

/// `POST /api/v1/incidents/{id}/resolve`
pub async fn resolve(
    State(app): State<App>,
    ApiCaller(caller): ApiCaller,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<ResolveBody>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw_id)?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
    before: Option<i64>,
}

/// `GET /api/v1/incidents?state=open|resolved|all&limit=50&before=ID`
pub async fn list(
    State(app): State<App>,
    _caller: ApiCaller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let filter = match q.state.as_deref().unwrap_or("open") {
        "open" => StateFilter::Open,
        "resolved" => StateFilter::Resolved,
        "all" => StateFilter::All,
        other => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!(
                    "state: `{}` is not one of open, resolved, all",
                    super::clip(other, 40)
                ),
            ))
        }
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: must be between 1 and 200",
        ));
    }
    let mut conn = app.db.pool().acquire().await?;
    let found = incidents::list(&mut conn, filter, limit, q.before).await?;
    let next_before = (found.len() as i64 == limit)
        .then(|| found.last().map(|i| i.id))
        .flatten();
    let items = views::listing(&mut conn, &app.config, &found).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "incidents": items, "next_before": next_before }),
    ))
}

/// `GET /api/v1/incidents/{id}`
pub async fn show(
    State(app): State<App>,
    _caller: ApiCaller,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&raw_id)?;
    let mut conn = app.db.pool().acquire().await?;
    let body = incident_body(&mut conn, &app, id).await?;
    Ok(json_response(StatusCode::OK, &body))
}
