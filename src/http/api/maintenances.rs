//! `/api/v1/maintenances`: schedule, list, show, edit, extend, complete, cancel, and turn a
//! window into an incident. Scheduling a window that overlaps configured peak hours succeeds
//! with a `warnings` entry saying so.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use futures::FutureExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::doc::{ReadErrors, WriteErrors};
use super::{expected_version, json_response, views, write, PathId};
use crate::app::App;
use crate::commands::maintenance::{self as cmd, Close, EditWindow, ScheduleWindow, ToIncident};
use crate::commands::Actor;
use crate::domain::{parse_duration, to_chrono, Invalid};
use crate::http::auth::{scope, Scoped};
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::store::incidents::{self, Incident, WindowFilter};

/// A new window. Give its end as `ends_at` or as a `duration`.
pub use super::maintenance_types::*;

fn created(mut resp: Response, id: i64) -> Response {
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/maintenances/{id}")) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

/// Schedule a maintenance window
///
/// Announced at once on every channel, then reminded before its start (`maintenance.notices`),
/// started (its components go under maintenance) and, if nobody completes it by its end,
/// apologised for as an overrun. Overlapping configured peak hours gives `warnings`.
///
/// Rules the schema cannot express (a request that breaks one gets `422` naming the field):
/// - give exactly one of `ends_at` (a time) or `duration`;
/// - `starts_at` is in the future and within a year; the end is after the start and at most 7
///   days after it;
/// - every entry of `components` is a component id from `GET /api/v1/components`;
/// - text fields are not blank and hold no control characters other than line breaks and tabs.
#[utoipa::path(
    post, path = "/maintenances", operation_id = "scheduleMaintenance", tag = "maintenance",
    request_body = ScheduleBody, params(super::incidents::IdempotencyKey),
    security(("bearer" = ["maintenance:write"])),
    responses(
        (status = 201, description = "Scheduled and announced.", body = MaintenanceDetail,
         headers(("Location" = String), ("ETag" = String))),
        WriteErrors,
    )
)]
pub async fn create(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::MaintenanceWrite>,
    headers: HeaderMap,
    body: ApiJson<ScheduleBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let starts_at = time("starts_at", &b.starts_at)?;
    let ends_at = match (b.ends_at.as_deref(), b.duration.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::from(Invalid::new(
                "ends_at",
                "give either `ends_at` (a time) or `duration`, not both",
            )))
        }
        (Some(e), None) => time("ends_at", e)?,
        (None, Some(d)) => starts_at + to_chrono(parse_duration("duration", d)?),
        (None, None) => {
            return Err(ApiError::from(Invalid::new(
                "ends_at",
                "say when the window ends: `ends_at` (a time) or `duration` (like `2h`)",
            )))
        }
    };
    let s = ScheduleWindow {
        title: b.title,
        description: b.description,
        components: b.components,
        starts_at,
        ends_at,
        message: b.message,
        owner: b.owner,
    };
    let actor = Actor::token(&caller.name);
    let env = app.env();
    let now = app.clock.now();
    let warnings = cmd::warnings(&env, &s.components, starts_at, ends_at);
    let a = app.clone();
    let resp = write(
        &app,
        &caller,
        &headers,
        format!("POST /maintenances {}", body.canonical),
        move |conn| {
            async move {
                let id = cmd::schedule_window(&env, conn, &actor, s, None, now)
                    .await?
                    .ok_or_else(|| ApiError::Conflict {
                        code: "duplicate_window",
                        message: "this window already exists".into(),
                    })?;
                let v = window_body(conn, &a, id, Some(warnings)).await?;
                Ok((StatusCode::CREATED, v))
            }
            .boxed()
        },
    )
    .await?;
    let id = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
        .and_then(|i| i.parse().ok());
    Ok(match id {
        Some(id) => created(resp, id),
        None => resp,
    })
}

/// Change a maintenance window
///
/// The change is announced; an announced window's `sequence` goes up.
///
/// Rules the schema cannot express (`422` naming the field unless said otherwise):
/// - once the window has started, `starts_at` cannot move and `components` cannot change (post an
///   incident update or turn it into an incident);
/// - moving the end of a started window needs `reason` (customers are told);
/// - the end stays after the start and at most 7 days after it; `starts_at` of a window not yet
///   started stays in the future and within a year; a started window's end stays in the future;
/// - `status` may be `verifying` or `in_progress` only once the window has started;
/// - a completed or cancelled window takes no changes (`409`), nor does a stale
///   `version`/`If-Match` (`409` with the current version).
#[utoipa::path(
    patch, path = "/maintenances/{id}", operation_id = "editMaintenance", tag = "maintenance",
    request_body = EditBody,
    params(super::incidents::IncidentId, super::incidents::IfMatch, super::incidents::IdempotencyKey),
    security(("bearer" = ["maintenance:write"])),
    responses(
        (status = 200, description = "Changed.", body = MaintenanceDetail, headers(("ETag" = String))),
        WriteErrors,
    )
)]
pub async fn edit(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::MaintenanceWrite>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiJson<EditBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let e = EditWindow {
        starts_at: opt_time("starts_at", b.starts_at.as_deref())?,
        ends_at: opt_time("ends_at", b.ends_at.as_deref())?,
        expected_version: expected_version(&headers, b.version)?,
        title: b.title,
        description: b.description,
        components: b.components,
        message: b.message,
        reason: b.reason,
        status: b.status,
    };
    let request = format!(
        "PATCH /maintenances/{id} {} {:?}",
        body.canonical, e.expected_version
    );
    run_edit(app, caller, headers, request, id, e).await
}

async fn run_edit(
    app: App,
    caller: crate::store::tokens::TokenOwner,
    headers: HeaderMap,
    request: String,
    id: i64,
    e: EditWindow,
) -> Result<Response, ApiError> {
    let actor = Actor::token(&caller.name);
    let env = app.env();
    let now = app.clock.now();
    let a = app.clone();
    let components = e.components.clone();
    write(&app, &caller, &headers, request, move |conn| {
        async move {
            cmd::edit_window(&env, conn, &actor, id, e, now).await?;
            let w = incidents::get(conn, id).await?;
            let warnings = match w {
                Some(w) => {
                    let list = match components {
                        Some(c) => c,
                        None => incidents::components(conn, id).await?.into_keys().collect(),
                    };
                    cmd::warnings(
                        &env,
                        &list,
                        w.scheduled_for.unwrap_or(w.started_at),
                        w.eta_at.or(w.scheduled_until).unwrap_or(w.started_at),
                    )
                }
                None => Vec::new(),
            };
            Ok((
                StatusCode::OK,
                window_body(conn, &a, id, Some(warnings)).await?,
            ))
        }
        .boxed()
    })
    .await
}

/// Extend a maintenance window
///
/// A new end (`ends_at`, or `extend_by` from the current end) with the reason customers are told.
///
/// Give exactly one of `ends_at` or `extend_by` (`422` naming `ends_at` otherwise); the new end
/// stays after the start, at most 7 days after it, and in the future once the window has
/// started. A closed window, or a stale `version`/`If-Match`, gets `409`.
#[utoipa::path(
    post, path = "/maintenances/{id}/extend", operation_id = "extendMaintenance", tag = "maintenance",
    request_body = ExtendBody,
    params(super::incidents::IncidentId, super::incidents::IfMatch, super::incidents::IdempotencyKey),
    security(("bearer" = ["maintenance:write"])),
    responses(
        (status = 200, description = "Extended and announced.", body = MaintenanceDetail, headers(("ETag" = String))),
        WriteErrors,
    )
)]
pub async fn extend(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::MaintenanceWrite>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiJson<ExtendBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let ends_at = match (b.ends_at.as_deref(), b.extend_by.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::from(Invalid::new(
                "ends_at",
                "give either `ends_at` or `extend_by`, not both",
            )))
        }
        (Some(e), None) => time("ends_at", e)?,
        (None, Some(d)) => {
            let by = parse_duration("extend_by", d)?;
            let mut conn = app.db.pool().acquire().await?;
            let w = incidents::get(&mut conn, id)
                .await?
                .filter(Incident::is_maintenance)
                .ok_or_else(|| ApiError::NotFound(format!("no maintenance window with id {id}")))?;
            let end = w.eta_at.or(w.scheduled_until).unwrap_or(w.started_at);
            end + to_chrono(by)
        }
        (None, None) => {
            return Err(ApiError::from(Invalid::new(
                "ends_at",
                "say the new end: `ends_at` (a time) or `extend_by` (like `30m`)",
            )))
        }
    };
    let e = EditWindow {
        ends_at: Some(ends_at),
        reason: Some(b.reason),
        message: b.message,
        expected_version: expected_version(&headers, b.version)?,
        ..EditWindow::default()
    };
    let request = format!(
        "POST /maintenances/{id}/extend {} {:?}",
        body.canonical, e.expected_version
    );
    run_edit(app, caller, headers, request, id, e).await
}

/// `POST /api/v1/maintenances/{id}/complete` and `.../cancel`.
async fn close(
    app: App,
    caller: crate::store::tokens::TokenOwner,
    headers: HeaderMap,
    id: i64,
    body: ApiJson<CloseBody>,
    cancel: bool,
) -> Result<Response, ApiError> {
    let b = body.value;
    let c = Close {
        message: b.message,
        expected_version: expected_version(&headers, b.version)?,
    };
    let actor = Actor::token(&caller.name);
    let env = app.env();
    let now = app.clock.now();
    let a = app.clone();
    let request = format!(
        "POST /maintenances/{id}/{} {} {:?}",
        if cancel { "cancel" } else { "complete" },
        body.canonical,
        c.expected_version
    );
    write(&app, &caller, &headers, request, move |conn| {
        async move {
            if cancel {
                cmd::cancel_window(&env, conn, &actor, id, c, now).await?;
            } else {
                cmd::complete_window(&env, conn, &actor, id, c, now).await?;
            }
            Ok((StatusCode::OK, window_body(conn, &a, id, None).await?))
        }
        .boxed()
    })
    .await
}

/// Complete a maintenance window
///
/// Early, on time or late: its components return to what they were.
#[utoipa::path(
    post, path = "/maintenances/{id}/complete", operation_id = "completeMaintenance", tag = "maintenance",
    request_body = CloseBody,
    params(super::incidents::IncidentId, super::incidents::IfMatch, super::incidents::IdempotencyKey),
    security(("bearer" = ["maintenance:write"])),
    responses(
        (status = 200, description = "Completed and announced.", body = MaintenanceDetail, headers(("ETag" = String))),
        WriteErrors,
    )
)]
pub async fn complete(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::MaintenanceWrite>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiJson<CloseBody>,
) -> Result<Response, ApiError> {
    close(app, caller, headers, id, body, false).await
}

/// Cancel a maintenance window
///
/// Only before it starts; the cancellation is announced.
#[utoipa::path(
    post, path = "/maintenances/{id}/cancel", operation_id = "cancelMaintenance", tag = "maintenance",
    request_body = CloseBody,
    params(super::incidents::IncidentId, super::incidents::IfMatch, super::incidents::IdempotencyKey),
    security(("bearer" = ["maintenance:write"])),
    responses(
        (status = 200, description = "Cancelled and announced.", body = MaintenanceDetail, headers(("ETag" = String))),
        WriteErrors,
    )
)]
pub async fn cancel(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::MaintenanceWrite>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiJson<CloseBody>,
) -> Result<Response, ApiError> {
    close(app, caller, headers, id, body, true).await
}

/// Turn a maintenance window into an incident
///
/// The window went wrong: from now on it is an incident, with its promises and apologies.
#[utoipa::path(
    post, path = "/maintenances/{id}/incident", operation_id = "maintenanceToIncident", tag = "maintenance",
    request_body = IncidentBody,
    params(super::incidents::IncidentId, super::incidents::IfMatch, super::incidents::IdempotencyKey),
    security(("bearer" = ["incidents:write"])),
    responses(
        (status = 200, description = "It is an incident now.", body = MaintenanceDetail, headers(("ETag" = String))),
        WriteErrors,
    )
)]
pub async fn to_incident(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::IncidentsWrite>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiJson<IncidentBody>,
) -> Result<Response, ApiError> {
    let b = body.value;
    let t = ToIncident {
        message: b.message,
        impact: b.impact,
        status: b.status,
        components: b.components,
        expected_version: expected_version(&headers, b.version)?,
    };
    let actor = Actor::token(&caller.name);
    let env = app.env();
    let now = app.clock.now();
    let a = app.clone();
    let request = format!(
        "POST /maintenances/{id}/incident {} {:?}",
        body.canonical, t.expected_version
    );
    write(&app, &caller, &headers, request, move |conn| {
        async move {
            cmd::to_incident(&env, conn, &actor, id, t, now).await?;
            Ok((StatusCode::OK, window_body(conn, &a, id, None).await?))
        }
        .boxed()
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `upcoming`, `active` or `all` (the default).
    #[param(pattern = "^(upcoming|active|all)$")]
    state: Option<String>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// List maintenance windows
#[utoipa::path(
    get, path = "/maintenances", operation_id = "listMaintenances", tag = "maintenance",
    params(ListQuery),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "Windows, soonest first.", body = MaintenanceList),
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
        "all",
        &[
            ("upcoming", WindowFilter::Upcoming),
            ("active", WindowFilter::Active),
            ("all", WindowFilter::All),
        ],
    )?;
    let limit = super::page_limit(q.limit)?;
    let mut conn = app.db.pool().acquire().await?;
    let found = incidents::windows(&mut conn, filter, limit).await?;
    let items = views::listing(&mut conn, &app.config, &found).await?;
    let list = MaintenanceList {
        maintenances: items
            .into_iter()
            .zip(&found)
            .map(|(incident, w)| MaintenanceSummary {
                incident,
                window: WindowFields::of(w),
            })
            .collect(),
    };
    let body = serde_json::to_value(list).map_err(ApiError::from)?;
    Ok(json_response(StatusCode::OK, &body))
}

/// Show a maintenance window
#[utoipa::path(
    get, path = "/maintenances/{id}", operation_id = "showMaintenance", tag = "maintenance",
    params(super::incidents::IncidentId),
    security(("bearer" = ["read"])),
    responses(
        (status = 200, description = "The window.", body = MaintenanceDetail, headers(("ETag" = String))),
        ReadErrors,
    )
)]
pub async fn show(
    State(app): State<App>,
    _caller: Scoped<scope::Read>,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    let mut conn = app.db.pool().acquire().await?;
    let w = incidents::get(&mut conn, id).await?;
    if !w.is_some_and(|w| w.is_maintenance() || w.scheduled_for.is_some()) {
        return Err(ApiError::NotFound(format!(
            "no maintenance window with id {id}"
        )));
    }
    let body = window_body(&mut conn, &app, id, None).await?;
    Ok(json_response(StatusCode::OK, &body))
}
