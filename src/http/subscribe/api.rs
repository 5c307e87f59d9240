//! The JSON API's subscriber handlers: subscribe (public), and for tokens the counts, the
//! list, a delivery's reach, remove, and send the confirmation again. Changes are commands of
//! [`crate::commands::subscribers`], each in one unit of work.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use super::email_channel;
use crate::app::App;
use crate::commands::subscribers as command;
use crate::commands::Actor;
use crate::http::api::doc::{ErrorBody, ReadErrors, WriteErrors};
use crate::http::auth::{scope, Scoped};
use crate::http::client_addr::ClientAddr;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::subscribe_limits::SubscribeLimits;
use crate::store::subscribers;

/// A request to hear about incidents by email.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// Component ids; leave out (or empty) for every component.
    #[serde(default)]
    components: Option<Vec<String>>,
}

/// The answer to a subscription request, the same whatever Candor knows of the address.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// `pending_confirmation`, or `sent` for a confirmation sent again (queued in the outbox).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'static str>,
}

/// A page of subscribers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriberList {
    pub subscribers: Vec<subscribers::SubscriberInfo>,
    /// Pass as `after` for the next page; `null` on the last.
    pub next_after: Option<i64>,
}

/// How far one email delivery got.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReachView {
    pub delivery_id: i64,
    /// Subscribers it was sent to so far.
    pub sent: i64,
    /// Addresses the mail server refused for good.
    pub failed: i64,
}

/// Subscribe to incident mail
///
/// Public, no token. Double opt-in: only a confirmation mail is sent until its link is
/// followed. The answer is the same whether the address is new or known. 404 when the site has
/// no email channel.
#[utoipa::path(
    post, path = "/subscribers", operation_id = "subscribe", tag = "subscribers",
    request_body = SubscribeBody,
    responses(
        (status = 202, description = "A confirmation is on its way (if the address takes mail).", body = Accepted),
        WriteErrors,
        (status = 429, description = "Too many subscription requests; try again later.", body = ErrorBody),
    )
)]
pub async fn subscribe_api(
    State(app): State<App>,
    ClientAddr(client): ClientAddr,
    Extension(limits): Extension<Arc<SubscribeLimits>>,
    ApiJson { value, .. }: ApiJson<SubscribeBody>,
) -> Result<Response, ApiError> {
    super::request(&app, &limits, client, &value.email, value.components).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "pending_confirmation",
            message: Some(super::ACCEPTED),
        }),
    )
        .into_response())
}

/// Count subscribers
///
/// Confirmed, pending and unsubscribed, and confirmed by component.
#[utoipa::path(
    get, path = "/subscribers/counts", operation_id = "subscriberCounts", tag = "subscribers",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The numbers.", body = subscribers::Counts), ReadErrors)
)]
pub async fn counts(
    State(app): State<App>,
    _caller: Scoped<scope::Read>,
) -> Result<Response, ApiError> {
    email_channel(&app)?;
    let ids: Vec<&str> = app
        .config
        .components
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    let mut conn = app.db.pool().acquire().await?;
    let c = subscribers::counts(&mut conn, &ids).await?;
    Ok(Json(c).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only subscribers with a larger id: the previous page's `next_after`.
    #[serde(default)]
    after: Option<i64>,
    /// 1 to 1000 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// List subscribers
///
/// By id, a page at a time (addresses in full: for operators only).
#[utoipa::path(
    get, path = "/subscribers", operation_id = "listSubscribers", tag = "subscribers",
    params(ListQuery),
    security(("bearer" = ["subscribers:read"])),
    responses((status = 200, description = "A page.", body = SubscriberList), ReadErrors)
)]
pub async fn list(
    State(app): State<App>,
    _caller: Scoped<scope::SubscribersRead>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    email_channel(&app)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    let mut conn = app.db.pool().acquire().await?;
    let rows = subscribers::list(&mut conn, q.after.unwrap_or(0), limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(SubscriberList {
        subscribers: rows,
        next_after: next,
    })
    .into_response())
}

/// How many subscribers a delivery reached
///
/// For an email delivery: how many subscribers it has reached so far (`sent`) and how many
/// addresses the server refused for good (`failed`).
#[utoipa::path(
    get, path = "/deliveries/{id}/reach", operation_id = "deliveryReach", tag = "subscribers",
    params(("id" = i64, Path, description = "The delivery's id, as in an update's `deliveries`.")),
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The numbers.", body = ReachView), ReadErrors)
)]
pub async fn reach(
    State(app): State<App>,
    _caller: Scoped<scope::Read>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    email_channel(&app)?;
    let id = raw.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no delivery with id `{}`",
            crate::http::api::clip(&raw, 40)
        ))
    })?;
    let mut conn = app.db.pool().acquire().await?;
    let r = subscribers::reach(&mut conn, id).await?;
    Ok(Json(ReachView {
        delivery_id: id,
        sent: r.sent,
        failed: r.failed,
    })
    .into_response())
}

fn subscriber_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().ok().filter(|i| *i > 0).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no subscriber with id `{}`",
            crate::http::api::clip(raw, 40)
        ))
    })
}

/// Remove a subscriber
///
/// For good; audited.
#[utoipa::path(
    delete, path = "/subscribers/{id}", operation_id = "removeSubscriber", tag = "subscribers",
    params(("id" = i64, Path, description = "The subscriber's id.")),
    security(("bearer" = ["subscribers:write"])),
    responses((status = 204, description = "Removed."), ReadErrors)
)]
pub async fn remove(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::SubscribersWrite>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    email_channel(&app)?;
    let id = subscriber_id(&raw)?;
    let actor = Actor::token(&caller.name);
    let mut unit = app.begin().await?;
    command::remove(&app.env(), unit.tx(), &actor, id, app.clock.now()).await?;
    unit.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Send the confirmation again
///
/// A pending subscriber is sent a new confirmation mail, queued in the outbox and retried
/// until the mail server takes it; its new link replaces the old one once it is sent.
/// Audited.
#[utoipa::path(
    post, path = "/subscribers/{id}/confirmation", operation_id = "resendConfirmation", tag = "subscribers",
    params(("id" = i64, Path, description = "The subscriber's id.")),
    security(("bearer" = ["subscribers:write"])),
    responses(
        (status = 202, description = "Queued to be sent.", body = Accepted),
        (status = 409, description = "Not waiting for confirmation.", body = ErrorBody),
        ReadErrors,
    )
)]
pub async fn resend(
    State(app): State<App>,
    Scoped(caller, _): Scoped<scope::SubscribersWrite>,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    email_channel(&app)?;
    let id = subscriber_id(&raw)?;
    let actor = Actor::token(&caller.name);
    let mut unit = app.begin().await?;
    command::resend_confirmation(&app.env(), unit.tx(), &actor, id, app.clock.now()).await?;
    unit.commit().await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "sent",
            message: None,
        }),
    )
        .into_response())
}
